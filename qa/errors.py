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


def check_text(value: str, what: str, max_chars: int | None = None) -> str:
    """`value` if it is text every store and encoder can take: QAError naming `what` for a lone
    surrogate (no UTF-8 encoding exists for it) or, with `max_chars`, for text longer than that."""
    if not isinstance(value, str):
        raise QAError(f"{what} must be text (got {type(value).__name__})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QAError(f"{what} is not valid text (it holds a lone UTF-16 surrogate); send it as UTF-8") from None
    if max_chars is not None and len(value) > max_chars:
        raise QAError(f"{what} is too long ({len(value)} characters; at most {max_chars})")
    return value
