"""Word error rate and time per page of OCR on scanned pages rendered from known text.

    python -m bench.ocr [--dpi 300 200] [--compare] [--report results/ocr.json]

Each page of tests/scangen.PAGES is rendered with Pillow at each resolution, clean and with
noise and a skew, saved as an image-only PDF (Pillow stores the page as JPEG, as scanners
do) and read by qa's own path: the PDF worker takes the image out, the OCR worker reads it.
Nothing is cached. The word error rate compares words as written (case and punctuation count).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa.ingest.isolation import IsolatedParser
from qa.ingest.ocr import word_error_rate
from qa.ingest.parsing import ParseLimits
from tests.scangen import PAGES, scanned_pdf

CONDITIONS = {"clean": {}, "noisy": {"noise": 0.08, "skew": 0.5}}


def without_binarising(dpi: int) -> float:
    """The word error rate of the same pages read in this process without binarising (for comparison)."""
    import io

    import pypdf

    from qa.ingest.ocr import page_images, recognise

    words = errors = 0.0
    for options in CONDITIONS.values():
        for number, text in enumerate(PAGES, start=1):
            reader = pypdf.PdfReader(io.BytesIO(scanned_pdf([text], dpi, seed=number, **options)))
            scan = page_images(reader.pages[0], 0)
            read = recognise(scan.images, binarise=False) if scan else ""
            words += len(text.split())
            errors += word_error_rate(text, read) * len(text.split())
    return round(errors / words, 4)


def measure(dpis: list[int]) -> list[dict]:
    rows = []
    with IsolatedParser(ParseLimits(ocr=True, seconds=600)) as parser:
        parser.parse("warm-up.pdf", scanned_pdf(PAGES[:1], 150))  # the OCR worker's start is not a page's time
        for dpi in dpis:
            for condition, options in CONDITIONS.items():
                for number, text in enumerate(PAGES, start=1):
                    data = scanned_pdf([text], dpi, seed=number, **options)
                    started = time.perf_counter()
                    doc = parser.parse(f"page-{number}.pdf", data)
                    seconds = time.perf_counter() - started
                    rows.append(
                        {
                            "dpi": dpi,
                            "condition": condition,
                            "page": number,
                            "wer": round(word_error_rate(text, doc.text), 4),
                            "seconds": round(seconds, 2),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for dpi in sorted({r["dpi"] for r in rows}, reverse=True):
        for condition in CONDITIONS:
            part = [r for r in rows if r["dpi"] == dpi and r["condition"] == condition]
            words = sum(len(PAGES[r["page"] - 1].split()) for r in part)
            errors = sum(r["wer"] * len(PAGES[r["page"] - 1].split()) for r in part)
            out.append(
                {
                    "dpi": dpi,
                    "condition": condition,
                    "pages": len(part),
                    "wer": round(errors / words, 4),
                    "seconds_per_page": round(sum(r["seconds"] for r in part) / len(part), 2),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, nargs="+", default=[300, 200])
    parser.add_argument("--report", type=Path, help="write the pages and the summary as JSON")
    parser.add_argument(
        "--compare", action="store_true", help="also read the highest resolution's pages without binarising"
    )
    args = parser.parse_args()
    rows = measure(args.dpi)
    table = summary(rows)
    compared = {}
    if args.compare:
        compared = {"dpi": max(args.dpi), "wer_without_binarising": without_binarising(max(args.dpi))}
        wer = compared["wer_without_binarising"]
        print(f"{compared['dpi']} dpi, clean and noisy, without binarising: WER {wer:.1%}")
    for row in table:
        print(
            f"{row['dpi']} dpi {row['condition']:6} {row['pages']} pages: WER {row['wer']:.1%}, "
            f"{row['seconds_per_page']:.1f} s per page"
        )
    if args.report:
        report = {"summary": table, **({"comparison": compared} if compared else {}), "pages": rows}
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
