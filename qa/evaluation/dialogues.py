"""Dialogue sets: conversations asked turn by turn through the shared `Conversation`, each turn judged.

A dialogue set is JSONL, one conversation a line:

    {"id": "...", "corpus": "seed" | "<folder name>", "article": "...",
     "turns": [{"question": "...", "answers": [...], "spans": [...], "kind": "...", "document": "..."}]}

Each turn is a question as in a question set (answer strings and/or gold spans), with the kind
of follow-up it is (`KINDS`; the first turn is "first") and, optionally, the document that
answers it: given one, an answer string counts only where it occurs in that document, since
short answers ("1969", "2005") occur in other documents too.

A conversation's "corpus" picks the index it is asked of: "seed" is the corpus `qa eval` is
given (--corpus), any other name a question-set folder (its corpus/ indexed in the eval cache,
as `qa eval FOLDER` indexes it).

Every turn goes through one `Conversation` per dialogue (follow-ups carry the earlier turns, as
in the web chat, `qa chat`, REST `history` and MCP) with `ask`'s defaults, and is judged as a
reader would see it: refused ("nothing found"), passage [1] holds the answer, the short answer's
first sentence holds it, the short answer holds it, its length in words, and how many of its
sentences the previous turn's short answer already showed.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import QAError
from qa.evaluation.answers import judge_answer, text_holds
from qa.evaluation.questions import (
    ChunkSpan,
    Judgements,
    Question,
    Skipped,
    Targets,
    json_object,
    judge_questions,
    normalise,
    parse_jsonl,
    question_parts,
    read_lines,
)

KINDS = ("first", "pronoun", "ellipsis", "topic_shift", "catalog_followup", "why_how", "plain")
SEED = "seed"  # the corpus `qa eval` is given
# Question-set folders a dialogue set may name without --dialogue-corpus: the shared data beside the repository.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
KNOWN_FOLDERS = ("squad-dev-a",)
FIGURES = ("turns", "refused", "passage1", "first_sentence", "short_answer", "repeated", "median_words")

# A short answer is sentences each followed by its passage marker(s); a catalog listing joins
# titles with "; " after each marker.
_MARKERS = re.compile(r"\s*(?:\[\d+\]\s*)+[;,]?\s*")


@dataclass(frozen=True)
class DialogueTurn:
    question: Question  # qid "<dialogue id>#<turn>", line: the dialogue's line
    kind: str
    document: str = ""  # doc_id or source of the document that answers; "" for any


@dataclass(frozen=True)
class Dialogue:
    did: str
    corpus: str
    turns: tuple[DialogueTurn, ...]
    line: int
    article: str = ""


# -- parsing ------------------------------------------------------------------------------


def parse_dialogues(lines: Iterable[str], name: str = "dialogues") -> list[Dialogue]:
    """Dialogues from JSONL lines; every bad line is reported, with its number, in one QAError."""
    return parse_jsonl(
        lines,
        _parse_dialogue,
        key=lambda dialogue: dialogue.did,
        name=name,
        shape='a conversation {"id", "corpus", "turns": [{"question", "answers": [...] and/or "spans": [...], '
        '"kind", "document"}]}',
        duplicate="the same id",
        nothing="conversations",
    )


def _parse_dialogue(line: str, number: int) -> Dialogue:
    item = json_object(line)
    did = item.get("id")
    if not isinstance(did, (str, int)) or isinstance(did, bool) or not str(did).strip() or re.search(r"\s", str(did)):
        raise ValueError('"id" must be a string or number without spaces')
    did = str(did)
    corpus = item.get("corpus", SEED)
    if not isinstance(corpus, str) or not corpus.strip():
        raise ValueError(f'"corpus" must be a name: "{SEED}" or a question-set folder\'s')
    article = item.get("article", "")
    if not isinstance(article, str):
        raise ValueError('"article" must be a string')
    raw_turns = item.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise ValueError('"turns" must be a non-empty list')
    turns = []
    for i, raw in enumerate(raw_turns, start=1):
        try:
            turns.append(_parse_turn(raw, i, did, number))
        except ValueError as exc:
            raise ValueError(f"turn {i}: {exc}") from None
    return Dialogue(did, corpus.strip(), tuple(turns), number, article)


def _parse_turn(raw: object, position: int, did: str, number: int) -> DialogueTurn:
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    text, answers, spans = question_parts(raw)
    kind = raw.get("kind", "first" if position == 1 else "plain")
    if kind not in KINDS:
        raise ValueError(f'unknown "kind" {kind!r}; choose from {", ".join(KINDS)}')
    if (kind == "first") != (position == 1):
        raise ValueError('the first turn, and only the first, is of kind "first"')
    document = raw.get("document", "")
    if not isinstance(document, str):
        raise ValueError('"document" must be a doc_id or source')
    return DialogueTurn(Question(f"{did}#{position}", text, answers, spans, number), kind, document.strip())


def load_dialogues(path: str | Path) -> list[Dialogue]:
    path = Path(path).expanduser()
    return parse_dialogues(read_lines(path, "dialogue set", "a .jsonl file"), str(path))


def corpus_folders(given: Sequence[str] = ()) -> dict[str, Path]:
    """Named question-set folders: the shared data's, then NAME=DIR as given (--dialogue-corpus)."""
    folders = {name: SHARED_DATA / name for name in KNOWN_FOLDERS}
    for item in given:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip() or name.strip() == SEED:
            raise QAError(f"--dialogue-corpus takes NAME=DIR (a question-set folder; not {SEED!r}), got {item!r}")
        folders[name.strip()] = Path(folder.strip()).expanduser()
    return folders


def check_corpora(sets: Mapping[str, Sequence[Dialogue]], folders: Mapping[str, Path]) -> None:
    """Every corpus a dialogue names is the seed corpus or a folder with a corpus/ in it."""
    for name, dialogues in sets.items():
        for dialogue in dialogues:
            if dialogue.corpus == SEED:
                continue
            folder = folders.get(dialogue.corpus)
            if folder is None:
                known = ", ".join([SEED, *folders])
                raise QAError(
                    f"{name}: line {dialogue.line}: unknown corpus {dialogue.corpus!r}; known: {known} "
                    "(name another question-set folder with --dialogue-corpus NAME=DIR)"
                )
            if not (folder / "corpus").is_dir():
                raise QAError(
                    f"{name}: line {dialogue.line}: corpus {dialogue.corpus!r} is {folder}, which has no corpus/ "
                    "folder (point at it with --dialogue-corpus NAME=DIR)"
                )


# -- judging ------------------------------------------------------------------------------


def answer_sentences(short_answer: str) -> list[str]:
    """The sentences of a short answer, without their passage markers."""
    return [part.strip() for part in _MARKERS.split(short_answer) if part.strip()]


@dataclass(frozen=True)
class TurnResult:
    dialogue: str
    turn: int  # 1-based
    kind: str
    corpus: str
    question: str
    searched: str
    answer: str
    refused: bool
    passage1: bool
    first_sentence: bool
    short_answer: bool
    words: int
    sentences: int
    repeated: int
    line: int

    def to_dict(self) -> dict:
        return {
            "id": self.dialogue,
            "turn": self.turn,
            "kind": self.kind,
            "corpus": self.corpus,
            "line": self.line,
            "question": self.question,
            "searched": self.searched,
            "answer": self.answer,
            "refused": self.refused,
            "passage1": self.passage1,
            "first_sentence": self.first_sentence,
            "short_answer": self.short_answer,
            "words": self.words,
            "sentences": self.sentences,
            "repeated": self.repeated,
        }


def judge_turn(answer, question: Question, targets: Targets, previous: Sequence[str]) -> dict:
    """One turn's figures; `previous` are the sentences the previous turn's short answer showed."""
    asked, _ = judge_answer(answer, question, targets)
    sentences = answer_sentences(answer.answer) if answer.passages else []
    shown_before = {normalise(s) for s in previous}
    return {
        "refused": bool(asked["nothing_found"]),
        "passage1": bool(asked["hit@1"]),
        "first_sentence": bool(sentences) and text_holds(sentences[0], question, targets),
        "short_answer": bool(asked["short_answer"]),
        "words": sum(len(s.split()) for s in sentences),
        "sentences": len(sentences),
        "repeated": sum(normalise(s) in shown_before for s in sentences),
    }


def figures(results: Sequence[TurnResult]) -> dict[str, float]:
    """A group's figures: shares of turns, repeated sentences as a share of shown ones, median words."""
    n = len(results)
    shown = sum(r.sentences for r in results)
    words = [r.words for r in results if not r.refused]
    return {
        "turns": n,
        "refused": round(sum(r.refused for r in results) / n, 4) if n else 0.0,
        "passage1": round(sum(r.passage1 for r in results) / n, 4) if n else 0.0,
        "first_sentence": round(sum(r.first_sentence for r in results) / n, 4) if n else 0.0,
        "short_answer": round(sum(r.short_answer for r in results) / n, 4) if n else 0.0,
        "repeated": round(sum(r.repeated for r in results) / shown, 4) if shown else 0.0,
        "median_words": float(statistics.median(words)) if words else 0.0,
    }


@dataclass
class DialogueEvaluation:
    """What `qa eval --dialogues FILE` computes for one set."""

    dataset: str
    conversations: int
    results: list[TurnResult]
    skipped: list[Skipped] = field(default_factory=list)
    corpora: dict[str, str] = field(default_factory=dict)  # corpus name -> its index
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def groups(self) -> dict[str, dict[str, float]]:
        """Figures overall, for first turns and follow-ups, per kind, and per corpus when there are several."""
        results = self.results
        out = {
            "all": figures(results),
            "first": figures([r for r in results if r.turn == 1]),
            "follow-up": figures([r for r in results if r.turn > 1]),
        }
        for kind in KINDS[1:]:
            of_kind = [r for r in results if r.kind == kind]
            if of_kind:
                out[kind] = figures(of_kind)
        corpora = list(dict.fromkeys(r.corpus for r in results))
        if len(corpora) > 1:
            for corpus in corpora:
                out[f"corpus {corpus}"] = figures([r for r in results if r.corpus == corpus])
        return out

    def summary(self) -> dict:
        """The --json output."""
        return {
            "dataset": self.dataset,
            "kind": "dialogues",
            "conversations": self.conversations,
            "turns": len(self.results),
            "groups": self.groups(),
            "skipped": [s.to_dict() for s in self.skipped],
            "corpora": self.corpora,
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
            "per_turn": [r.to_dict() for r in self.results],
        }


def judge_dialogues(dialogues: Sequence[Dialogue], reader, chunks: Sequence[ChunkSpan]) -> Judgements:
    """The turns' targets on one index; a turn naming a document is judged on that document's passages."""

    def document(key: str) -> tuple[str, str] | None:
        doc = reader.document(key)
        return (doc.doc_id, doc.text) if doc else None

    by_document: dict[str, list[Question]] = {}
    skipped: list[Skipped] = []
    for dialogue in dialogues:
        for turn in dialogue.turns:
            if not turn.document:
                by_document.setdefault("", []).append(turn.question)
                continue
            found = reader.document(turn.document)
            if found is None:
                reason = f"no document '{turn.document}' in the index of corpus {dialogue.corpus!r}"
                skipped.append(Skipped(turn.question.qid, dialogue.line, reason))
                continue
            by_document.setdefault(found.doc_id, []).append(turn.question)
    merged = Judgements({}, [], skipped, {})
    for doc_id, questions in by_document.items():
        scope = [c for c in chunks if c.doc_id == doc_id] if doc_id else list(chunks)
        judged = judge_questions(questions, scope, document)
        merged.qrels.update(judged.qrels)
        merged.questions.extend(judged.questions)
        merged.skipped.extend(judged.skipped)
        merged.targets.update(judged.targets)
    return merged


def evaluate_dialogues(
    dialogues: Sequence[Dialogue], name: str, engines: Mapping[str, object], progress: bool = False
) -> DialogueEvaluation:
    """Ask every conversation, turn by turn, of its corpus's engine (qa.engine.QA) and judge each turn."""
    from tqdm import tqdm

    from qa.conversation import Conversation
    from qa.evaluation.runner import chunk_table

    started = time.perf_counter()
    targets, skipped = {}, []
    for corpus in dict.fromkeys(d.corpus for d in dialogues):
        reader = engines[corpus].reader
        judged = judge_dialogues([d for d in dialogues if d.corpus == corpus], reader, chunk_table(reader))
        targets.update(judged.targets)
        skipped.extend(judged.skipped)
    results: list[TurnResult] = []
    bar = tqdm(
        total=sum(len(d.turns) for d in dialogues),
        desc="   turn",
        unit="turn",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        for dialogue in dialogues:
            engine = engines[dialogue.corpus]
            conversation = Conversation()
            previous: list[str] = []
            for position, turn in enumerate(dialogue.turns, start=1):
                answer = conversation.ask(engine, turn.question.text, use_context=True)
                bar.update()
                qid = turn.question.qid
                if qid in targets:
                    judged = judge_turn(answer, turn.question, targets[qid], previous)
                    results.append(
                        TurnResult(
                            dialogue=dialogue.did,
                            turn=position,
                            kind=turn.kind,
                            corpus=dialogue.corpus,
                            question=turn.question.text,
                            searched=answer.searched_query or answer.question,
                            answer=answer.answer if answer.passages else "",
                            line=dialogue.line,
                            **judged,
                        )
                    )
                previous = answer_sentences(answer.answer) if answer.passages else []
    skipped.sort(key=lambda s: (s.line, s.qid))
    return DialogueEvaluation(
        dataset=name,
        conversations=len(dialogues),
        results=results,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def run_dialogue_sets(
    sets: Mapping[str, Sequence[Dialogue]],
    settings,
    folders: Mapping[str, Path],
    cache_root: Path | None = None,
    progress: bool = False,
    embedder=None,
) -> list[DialogueEvaluation]:
    """Each set over the indexes its conversations name, each index opened once for all sets."""
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.evaluation.runner import open_question_folder

    check_corpora(sets, folders)
    embedder = embedder or load_embedder(settings.model, settings.backend)
    engines: dict[str, object] = {}
    where: dict[str, str] = {}
    try:
        for corpus in dict.fromkeys(d.corpus for dialogues in sets.values() for d in dialogues):
            if corpus == SEED:
                engines[corpus] = open_index(settings=settings, build=True, progress=progress, embedder=embedder)
                where[corpus] = str(settings.corpus_dir)
            else:
                engines[corpus], _ = open_question_folder(folders[corpus], settings, cache_root, progress, embedder)
                where[corpus] = str(folders[corpus])
        out = []
        for name, dialogues in sets.items():
            result = evaluate_dialogues(dialogues, name, engines, progress)
            result.corpora = {c: where[c] for c in dict.fromkeys(d.corpus for d in dialogues)}
            result.settings = {
                "model": settings.model,
                "backend": settings.backend,
                "chunk_size": settings.chunk_size,
                "min_relevance": settings.min_relevance,
                "use_context": True,
            }
            out.append(result)
        return out
    finally:
        for engine in engines.values():
            engine.snapshot.close()
