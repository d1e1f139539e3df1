"""Uploaded files: safe names inside the corpus folder, limits, and no silent overwrite."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from qa.ingest.readers import SUPPORTED_SUFFIXES, scan_corpus
from qa.web.uploads import MAX_NAME_CHARS, UploadError, sanitize_filename, store_uploads

MD = b"# Note\n\nThe islands were discussed again."


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.md", "report.md"),
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\windows\\evil.MD", "evil.md"),
        ("/abs/path/notes.txt", "notes.txt"),
        ("C:\\Users\\x\\page.HTML", "page.html"),
        ("nul\x00byte.md", "nulbyte.md"),
        ("line\nbreak\r.txt", "linebreak.txt"),
        (".hidden.md", "hidden.md"),
        ("...md.md", "md.md"),
        ("-rf.md", "rf.md"),
        ("CON.md", "CON_.md"),
        ("lpt1.txt", "lpt1_.txt"),
        ("NUL.txt", "NUL_.txt"),
        ("nul.tar.md", "nul_.tar.md"),  # Windows reserves a device name whatever follows the dot
        ("CON.backup.md", "CON_.backup.md"),
        ("COM¹.md", "COM¹_.md"),
        ("/etc/passwd.md", "passwd.md"),
        ("\u202egpj.md", "gpj.md"),  # right-to-left override dropped
        ("😀😀.md", "upload.md"),
        ("a<script>alert(1)</script>.md", "script.md"),  # "/" makes "script>.md" the last component
        ('a<b>&"quote" |pipe?.md', "a_b_quote_pipe.md"),
        ("%2e%2e%2fescape.md", "2e_2e_2fescape.md"),
        ("  spaced   out  .md", "spaced out.md"),
        ("naïve café 東京.md", "naïve café 東京.md"),
        ("scan.PDF", "scan.pdf"),
        ("report.v2.htm", "report.v2.htm"),
        ("x" * 400 + ".pdf", "x" * (MAX_NAME_CHARS - 4) + ".pdf"),
    ],
)
def test_sanitize_filename(name, safe):
    result = sanitize_filename(name)
    assert result == safe
    assert "/" not in result and "\\" not in result and "\x00" not in result
    assert not result.startswith(".") and os.path.splitext(result)[1] in SUPPORTED_SUFFIXES


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("run.exe", "unsupported file type '.exe'"),
        ("notes.md.sh", "unsupported file type '.sh'"),
        ("README", "no file type suffix"),
        (".md", "no file type suffix"),
        ("..", "no file type suffix"),
        ("", "no file type suffix"),
    ],
)
def test_unacceptable_names(name, reason):
    with pytest.raises(UploadError, match=reason):
        sanitize_filename(name)


def _received(tmp_path, data: bytes) -> str:
    """Where Gradio would have put the uploaded bytes."""
    path = tmp_path / "received" / f"{uuid.uuid4().hex}.bin"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_store_uploads_statuses(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kept.md").write_bytes(MD)
    results = store_uploads(
        corpus,
        [
            ("../outside.md", _received(tmp_path, b"# Outside\n\nText that tries to escape.")),
            ("kept.md", _received(tmp_path, MD)),
            ("kept.md", _received(tmp_path, b"# Other\n\nOther text.")),
            ("twice.md", _received(tmp_path, b"# One\n\nFirst.")),
            ("twice.md", _received(tmp_path, b"# Two\n\nSecond.")),
            ("indexed-copy.md", _received(tmp_path, b"# Indexed\n\nAlready indexed text.")),
            ("broken.pdf", _received(tmp_path, b"%PDF-1.4 not really a pdf")),
            ("binary.txt", _received(tmp_path, b"\x00\x01\x02 binary")),
        ],
        max_bytes=10_000,
        known_hashes={"elsewhere.md": hashlib.sha256(b"# Indexed\n\nAlready indexed text.").hexdigest()},
    )
    statuses = [(r.name, r.saved_as, r.status) for r in results]
    assert statuses[:5] == [
        ("../outside.md", "outside.md", "added"),
        ("kept.md", "kept.md", "unchanged"),
        ("kept.md", "kept.md", "rejected"),
        ("twice.md", "twice.md", "added"),
        ("twice.md", "twice.md", "rejected"),
    ]
    assert results[4].detail == "another file in this upload has the same name"
    assert results[5].status == "rejected" and "as elsewhere.md" in results[5].detail
    assert results[6].status == "rejected" and "cannot be read" in results[6].detail
    assert results[7].status == "rejected" and "binary content" in results[7].detail
    assert not (tmp_path / "outside.md").exists()
    assert (corpus / "kept.md").read_bytes() == MD
    assert sorted(p.name for p in corpus.iterdir()) == ["kept.md", "outside.md", "twice.md"]  # no temporaries left
    assert [f.source for f in scan_corpus(corpus).files] == ["kept.md", "outside.md", "twice.md"]


def test_replace_only_when_asked(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_bytes(MD)
    new = b"# Note\n\nRevised text."
    [refused] = store_uploads(corpus, [("note.md", _received(tmp_path, new))], max_bytes=10_000)
    assert refused.status == "rejected" and "Replace files with the same name" in refused.detail
    [replaced] = store_uploads(corpus, [("note.md", _received(tmp_path, new))], max_bytes=10_000, replace=True)
    assert replaced.status == "replaced"
    assert (corpus / "note.md").read_bytes() == new


def test_size_limit_and_empty(tmp_path):
    corpus = tmp_path / "corpus"
    big, empty = _received(tmp_path, b"a" * 2001), _received(tmp_path, b" \n ")
    results = store_uploads(corpus, [("big.txt", big), ("empty.txt", empty)], max_bytes=2000)
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "too large" in results[0].detail and "the file is empty" in results[1].detail
    assert list(corpus.iterdir()) == []


def test_symlink_or_folder_in_the_way_is_not_followed(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    outside = tmp_path / "target.md"
    outside.write_bytes(b"# Target\n\nOutside.")
    (corpus / "link.md").symlink_to(outside)
    (corpus / "folder.md").mkdir()
    results = store_uploads(
        corpus,
        [("link.md", _received(tmp_path, MD)), ("folder.md", _received(tmp_path, MD))],
        max_bytes=10_000,
        replace=True,
    )
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "points outside the corpus folder" in results[0].detail
    assert "not a regular file" in results[1].detail
    assert outside.read_bytes() == b"# Target\n\nOutside."


def test_long_multibyte_names_fit_the_file_system(tmp_path):
    """120 characters of CJK text are 360 bytes, over the usual 255-byte limit for a name."""
    name = "東京" * 100 + ".md"
    safe = sanitize_filename(name)
    assert safe.endswith(".md") and safe.startswith("東京") and len(safe.encode("utf-8")) <= 200
    [result] = store_uploads(tmp_path / "corpus", [(name, _received(tmp_path, MD))], max_bytes=10_000)
    assert (result.status, result.saved_as) == ("added", safe)
    assert (tmp_path / "corpus" / safe).read_bytes() == MD


def test_a_file_system_error_rejects_only_that_file(tmp_path, monkeypatch):
    import errno

    import qa.web.uploads

    real = qa.web.uploads._existing

    def existing(target):
        if target.name == "bad.md":
            raise OSError(errno.EIO, "Input/output error")
        return real(target)

    monkeypatch.setattr(qa.web.uploads, "_existing", existing)
    results = store_uploads(
        tmp_path / "corpus",
        [("bad.md", _received(tmp_path, MD)), ("good.md", _received(tmp_path, b"# Good\n\nOther text."))],
        max_bytes=10_000,
    )
    assert [(r.status, r.detail) for r in results] == [
        ("rejected", "could not be saved (Input/output error)"),
        ("added", ""),
    ]
