"""From passages to an answer: the highlighted sentence, the short answer, follow-up questions,
a conversation as Markdown, and replies to small talk."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "build_answer": "qa.answering.answer",
    "NOTHING_FOUND": "qa.answering.answer",
    "followup_query": "qa.answering.followup",
    "is_followup": "qa.answering.followup",
    "to_markdown": "qa.answering.transcript",
    "small_talk": "qa.answering.smalltalk",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
