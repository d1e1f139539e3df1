"""qa: question answering over a document corpus, with passages that cite their source."""

from __future__ import annotations

from qa.errors import QAError
from qa.versions import __version__

__all__ = ["QAError", "__version__", "open_index"]


def open_index(index_dir=None, corpus_dir=None, **kwargs):
    """Open (building if needed) the index; returns a `qa.engine.QA` with `.ask()`."""
    from qa.engine import open_index as _open

    return _open(index_dir=index_dir, corpus_dir=corpus_dir, **kwargs)
