"""The JSON shapes of the REST API and the MCP tools, as pydantic models (for OpenAPI and
for MCP's input and output schemas). Answers are `qa ask --json`; documents `qa docs --json`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.config import MODES
from qa.conversation import MAX_HISTORY
from qa.engine import MAX_K

Mode = Literal[MODES]  # type: ignore[valid-type]  # qa.config.MODES, as a type pydantic checks
DATE_HELP = "YYYY, YYYY-MM or YYYY-MM-DD; keeps only documents with a known date"


class AskRequest(BaseModel):
    """A question, with optional search settings and the conversation so far."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "what did Russia deploy to the Kurils?"},
                {
                    "question": "and how did Japan respond?",
                    "history": ["what did Russia deploy to the Kurils?"],
                    "k": 3,
                },
            ]
        },
    )

    question: str = Field(description="The question, in plain words (cut to its first 2000 characters).")
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="How many passages at most.")
    mode: Mode = Field("hybrid", description="hybrid: meaning + words; dense: meaning; lexical: words (BM25).")
    doc: str | list[str] | None = Field(None, description="Only these documents (ids from /documents).")
    author: str | None = Field(None, description="Only documents whose author contains this text.")
    date_from: str | None = Field(None, description=f"Only documents dated on or after this date ({DATE_HELP}).")
    date_to: str | None = Field(None, description=f"Only documents dated on or before this date ({DATE_HELP}).")
    history: list[str] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="The conversation's earlier questions, oldest first: a follow-up such as "
        '"and how did Japan respond?" is searched with the key terms they carry.',
    )


class _Open(BaseModel):
    # Answers may gain fields; the API passes them on as `qa ask --json` prints them.
    model_config = ConfigDict(extra="allow")


class AnswerPhrase(_Open):
    start: int = Field(description="Offset of the answering words in the document's text.")
    end: int
    text: str


class Highlight(_Open):
    start: int = Field(description="Offset of the best sentence in the document's text.")
    end: int
    text: str
    answer: AnswerPhrase | None = Field(
        None, description="The words of the sentence that answer, when the reader marked them with confidence."
    )


class Passage(_Open):
    rank: int = Field(description="The number of the citation marker [rank] in the answer.")
    score: float
    text: str
    doc_id: str
    title: str
    author: str
    date: str
    source: str = Field(description="The corpus-relative path of the document.")
    start: int = Field(description="The passage is the document's text[start:end] (see /documents/{doc_id}).")
    end: int
    page: int | None = Field(None, description="The page, for PDFs.")
    locator: str = Field(
        "", description='Where the passage lies: "page 4", "slide 7", "chapter 3", "sheet Budget, rows 12–18".'
    )
    highlight: Highlight
    scores: dict[str, float] = Field(default_factory=dict, description="Per-retriever scores.")
    url: str | None = Field(
        None,
        description="The original file on this server, from its root, with the same token; a PDF at the "
        "passage's page (`/corpus/report.pdf#page=4`).",
    )


class Answer(_Open):
    """The extractive answer with citation markers [n], and the cited passages."""

    question: str
    answer: str
    more: str = Field(
        "", description="Further sentences that bear on the question, with their markers, kept out of the short answer."
    )
    passages: list[Passage]
    mode: Mode
    searched_query: str = Field(
        description="What was searched: the question, or a follow-up with its context; misspelt words corrected."
    )
    notes: list[str]


class _DocumentMetadata(_Open):
    doc_id: str
    source: str = Field(description="The corpus-relative path of the file.")
    title: str
    author: str
    publisher: str
    date: str = Field(description="YYYY, YYYY-MM or YYYY-MM-DD, or empty when unknown.")
    url: str


class DocumentInfo(_DocumentMetadata):
    content_hash: str = Field(description="sha256 of the file's bytes.")
    chunks: int
    chars: int


class Document(_DocumentMetadata):
    """A document's metadata and its text, or text[start:end]."""

    length: int = Field(description="The length of the document's whole text, in characters.")
    start: int
    end: int
    page: int | None = Field(None, description="The page holding `start`, for PDFs.")
    locator: str = Field("", description='The page, slides, chapter or rows the span lies on ("" if none).')
    original_url: str | None = Field(
        None,
        description="The original file on this server, from its root (`/corpus/report.pdf#page=4` for "
        "a PDF: at the page holding `start`), with the same token.",
    )
    text: str


class Health(_Open):
    status: Literal["ok"]
    snapshot: str = Field(description="The index version that answers (a snapshot, or a database generation).")
    store: str = Field(description="Where the index lives: local or postgres.")
    documents: int
    chunks: int
    model: str
    updated: str = Field(description="When the index was built (ISO 8601).")


class ShownPassage(BaseModel):
    """A passage as the answer showed it (copy doc_id, start, end and rank from the answer's passages)."""

    model_config = ConfigDict(extra="ignore")  # a whole passage of the answer may be sent back

    doc_id: str
    start: int = Field(ge=0, strict=True)
    end: int = Field(ge=0, strict=True)
    rank: int = Field(ge=1, strict=True)


class FeedbackRequest(BaseModel):
    """A reader's verdict on an answer of /ask: send back what was asked and shown, and the verdict."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "and how did Japan respond?",
                    "history": ["what did Russia deploy to the Kurils?"],
                    "searched_query": "Japan respond Russia deploy Kurils",
                    "answer": "Japan protested [1].",
                    "passages": [{"doc_id": "kurils-2016", "start": 120, "end": 480, "rank": 1}],
                    "verdict": "answered",
                    "rank": 1,
                }
            ]
        },
    )

    question: str = Field(description="The question as asked (the answer's `question`).")
    verdict: Literal["good", "bad", "answered"] = Field(
        description="good or bad: the answer as a whole; answered: the passage `rank` answered the question."
    )
    rank: int | None = Field(None, ge=1, strict=True, description="With `answered`: the rank of that passage.")
    answer: str = Field("", description="The answer's text.")
    searched_query: str = Field("", description="The answer's `searched_query`.")
    history: list[str] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="The earlier questions sent with /ask."
    )
    passages: list[ShownPassage] = Field(
        default_factory=list, max_length=100, description="The answer's passages (doc_id, start, end, rank)."
    )


class FeedbackRecord(BaseModel):
    """The record kept: what was asked and shown, the verdict, the index version and the time (UTC)."""

    id: int
    kind: Literal["good", "bad", "answered"]
    time: str = Field(description="ISO 8601, UTC.")
    channel: str
    question: str
    searched: str
    history: list[str]
    passages: list[ShownPassage]
    answer: str
    rank: int | None
    index_version: str = Field(description="The index version (snapshot) that answers now.")


class Error(BaseModel):
    error: str = Field(description="What went wrong, and how to fix it.")
