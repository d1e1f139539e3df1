"""Make small text PDFs for tests without extra dependencies."""

from __future__ import annotations


def make_pdf(pages: list[str], info: dict[str, str] | None = None, headings: list[str] | None = None) -> bytes:
    """A valid PDF with one line of 12 pt Helvetica text per page.

    `info` fills the document information dictionary ({"Title": ..., "Producer": ...});
    `headings` puts a 24 pt line above the text of the first pages.
    """
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font_id = 3 + 2 * n
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 20 100 Td ({_escape(text)}) Tj ET".encode()
        if headings and i < len(headings) and headings[i]:
            content = f"BT /F1 24 Tf 20 160 Td ({_escape(headings[i])}) Tj ET\n".encode() + content
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info_ref = ""
    if info:
        entries = " ".join(f"/{key} <{_utf16(value)}>" for key, value in info.items())
        objects.append(f"<< {entries} >>".encode())
        info_ref = f" /Info {len(objects)} 0 R"
    return _assemble(objects, info_ref)


def _assemble(objects: list[bytes], trailer_extra: str = "") -> bytes:
    """A PDF file of these numbered objects (the first one the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _utf16(text: str) -> str:
    """A PDF text string as hex UTF-16BE with its byte order mark: any Unicode text."""
    return (b"\xfe\xff" + text.encode("utf-16-be")).hex().upper()


def make_bomb_pdf(pages: int, mb_per_page: int = 70) -> bytes:
    """A decompression bomb: `pages` pages whose content streams each inflate to `mb_per_page`
    MB of spaces (after one line of text), from a file of a few hundred KB."""
    import zlib

    content = b"BT /F1 12 Tf 20 100 Td (Bomb page) Tj ET\n" + b" " * (mb_per_page * 1_000_000)
    packed = zlib.compress(content, 9)
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font_id = 3 + 2 * pages
    for i in range(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return _assemble(objects)
