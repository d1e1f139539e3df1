"""The one exception type that user-caused problems raise."""

from __future__ import annotations


class QAError(Exception):
    """A problem the user can fix; the message says how.

    The CLI prints it as one line without a traceback and exits non-zero;
    the web chat shows it in the conversation.
    """


class IndexMissingError(QAError):
    """There is no index in the index folder yet."""


class IndexMismatchError(QAError):
    """The index was built with other settings (model, chunker, format)."""


class IndexLockedError(QAError):
    """Another process is updating the index."""


class IndexCorruptError(QAError):
    """The index on disk cannot be read."""
