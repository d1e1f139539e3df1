from __future__ import annotations

import io

import pytest

from qa.ingest.metadata import normalise_date
from qa.ingest.parsing import ReadError
from qa.ingest.readers import parse_document, scan_corpus


def test_markdown_front_matter_and_verbatim_body():
    data = "---\ntitle: T\nauthor: [A, B]\ndate: 2020-12-08\n---\n\nBody “quoted” text.\n".encode()
    doc = parse_document("sub/a.md", data)
    assert doc.doc_id == "sub/a"
    assert doc.title == "T"
    assert doc.author == "A, B"
    assert doc.date == "2020-12-08"
    assert doc.text == "Body “quoted” text.\n"


def test_title_falls_back_to_heading_then_file_name():
    assert parse_document("x.md", b"intro\n\n## The Heading ##\n\ntext").title == "The Heading"
    assert parse_document("my_file-name.txt", b"no heading here").title == "my file name"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        (b"caf\xe9 latin-1", "UTF-8"),
        (b"---\ntitle: [unclosed\n---\ntext", "front matter"),
        (b"---\n- a list\n---\ntext", "mapping"),
    ],
)
def test_unreadable_text_files_give_reasons(data, reason):
    with pytest.raises(ReadError, match=reason):
        parse_document("bad.md", data)


def test_html_main_text_without_scripts():
    html = b"""<html><head><title>Page title</title><script>alert('x')</script></head>
    <body><nav>Home | About | Contact</nav><article><h1>Islands</h1>
    <p>Russia deployed anti-ship missiles to the disputed islands, provoking a sharp response from Japan.
    The Kremlin was quick to reassure Tokyo that the December talks were still on the agenda.</p>
    <p>The same type of missile system was concurrently moved into Kaliningrad.</p></article>
    <footer>Copyright 2016</footer></body></html>"""
    doc = parse_document("page.html", html)
    assert "anti-ship missiles" in doc.text
    assert "alert(" not in doc.text
    assert doc.title


def test_unreadable_pdfs_give_reasons():
    import pypdf

    from tests.pdfgen import make_pdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    blank = io.BytesIO()
    writer.write(blank)
    with pytest.raises(ReadError, match="no extractable text"):
        parse_document("blank.pdf", blank.getvalue())
    with pytest.raises(ReadError, match="corrupt or unreadable PDF"):
        parse_document("corrupt.pdf", b"%PDF-1.4 garbage that is not a pdf")
    locked = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["secret text"]))))
    locked.encrypt("password")
    encrypted = io.BytesIO()
    locked.write(encrypted)
    with pytest.raises(ReadError, match="encrypted"):
        parse_document("locked.pdf", encrypted.getvalue())


def test_pdf_with_text_has_page_offsets():
    from tests.pdfgen import make_pdf

    doc = parse_document("two.pdf", make_pdf(["First page about fishing.", "Second page about tanks."]))
    assert len(doc.page_starts) == 2
    assert doc.page_at(doc.text.index("tanks")) == 2
    assert doc.page_at(doc.text.index("fishing")) == 1


def test_scan_skips_hidden_and_reports_unsupported(tmp_path):
    (tmp_path / "a.md").write_text("x")
    (tmp_path / ".hidden.md").write_text("x")
    (tmp_path / "b.doc").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path)  # a folder symlink loop is not followed
    scan = scan_corpus(tmp_path)
    assert [f.source for f in scan.files] == ["a.md"]
    assert scan.skipped[0][0] == "b.doc" and "unsupported" in scan.skipped[0][1]
    assert "save it as .docx" in scan.skipped[0][1]


def test_symlink_outside_corpus_is_refused(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "link.txt").symlink_to(outside)
    scan = scan_corpus(corpus)
    assert not scan.files
    assert "outside" in scan.skipped[0][1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2020-12-08", "2020-12-08"), ("2020-12", "2020-12"), ("2016", "2016"), ("December 2020", ""), (None, "")],
)
def test_dates_normalise_to_iso_prefixes(value, expected):
    assert normalise_date(value) == expected


def test_scan_attaches_sidecars_and_reports_orphans(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "a.pdf.yaml").write_text("title: A\n")
    (tmp_path / "b.md").write_text("x")
    (tmp_path / "b.md.yml").write_text("title: B\n")
    (tmp_path / "b.md.yaml").write_text("title: B again\n")
    (tmp_path / "gone.html.yaml").write_text("title: nobody\n")
    (tmp_path / "config.yaml").write_text("x: 1\n")
    scan = scan_corpus(tmp_path)
    files = {f.source: f.sidecar.name if f.sidecar else None for f in scan.files}
    assert files == {"a.pdf": "a.pdf.yaml", "b.md": "b.md.yaml"}
    reasons = dict(scan.skipped)
    assert "second metadata sidecar for b.md" in reasons["b.md.yml"]
    assert "sidecar for gone.html, which is not in this folder" in reasons["gone.html.yaml"]
    assert "unsupported file type '.yaml'" in reasons["config.yaml"]
    assert "a.pdf.yaml" not in reasons


def test_sidecar_symlinked_out_of_the_corpus_is_refused(tmp_path):
    outside = tmp_path / "meta.yaml"
    outside.write_text("title: secret\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("text")
    (corpus / "a.md.yaml").symlink_to(outside)
    scan = scan_corpus(corpus)
    assert [(f.source, f.sidecar) for f in scan.files] == [("a.md", None)]
    assert dict(scan.skipped)["a.md.yaml"] == "symlink points outside the corpus folder"


def test_missing_html_package_is_named_as_the_cause(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_trafilatura(name, *args, **kwargs):
        if name == "trafilatura":
            raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trafilatura)
    with pytest.raises(ReadError, match=r"HTML reader is missing a package .*lxml_html_clean"):
        parse_document("kenya.html", b"<html><body><p>Kenya</p></body></html>")
