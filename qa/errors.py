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


class EncoderRevisedError(IndexMismatchError):
    """The index's vectors were made by an earlier version of the same model and backend.

    `qa index` embeds every chunk again on its own; nothing the user chose differs.
    """


class SplitterRevisedError(EncoderRevisedError):
    """The index's sentences were split by an earlier version of qa: its sentence vectors are
    made again (`qa index` does so on its own; cached chunk vectors are reused)."""


class IndexLockedError(QAError):
    """Another process is updating the index."""


class IndexCorruptError(QAError):
    """The index on disk cannot be read."""
