"""`qa eval --dialogues`: parsing dialogue sets, judging each turn, the figures, the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.cli import main
from qa.conversation import Conversation
from qa.engine import open_index
from qa.errors import QAError
from qa.evaluation.dialogues import (
    DialogueEvaluation,
    TurnResult,
    answer_sentences,
    check_corpora,
    corpus_folders,
    evaluate_dialogues,
    figures,
    judge_turn,
    parse_dialogues,
)
from qa.evaluation.questions import Question, Targets
from qa.types import Answer, Highlight, Passage
from tests.conftest import DOCS, write_docs


def jsonl(path: Path, items: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items) + "\n")
    return path


KURILS = {
    "id": "kurils",
    "corpus": "seed",
    "turns": [
        {
            "question": "Which air defence system did Russia deploy to the Kuril islands?",
            "answers": ["S-300V4"],
            "kind": "first",
            "document": "kurils.md",
        },
        {
            "question": "how did Japan respond to it",
            "answers": ["diplomatic channels"],
            "kind": "pronoun",
            "document": "kurils.md",
        },
    ],
}
TOKYO = {
    "id": "tokyo",
    "corpus": "seed",
    "turns": [
        {"question": "What plan did Abe propose to Putin?", "answers": ["eight-point economic plan"]},
        {"question": "and the café diplomacy?", "answers": ["Café diplomacy"], "kind": "ellipsis"},
        # "crab" is in fishing.txt, not in the document named: a turn that cannot be judged
        {"question": "what about crab", "answers": ["crab"], "kind": "topic_shift", "document": "tokyo.md"},
    ],
}


# -- parsing ------------------------------------------------------------------------------


def test_dialogues_parse_turns_kinds_and_documents():
    [dialogue] = parse_dialogues([json.dumps(KURILS)])
    assert dialogue.did == "kurils" and dialogue.corpus == "seed" and dialogue.line == 1
    first, second = dialogue.turns
    assert first.question == Question(
        "kurils#1", "Which air defence system did Russia deploy to the Kuril islands?", ("S-300V4",), (), 1
    )
    assert (first.kind, first.document) == ("first", "kurils.md")
    assert (second.question.qid, second.kind) == ("kurils#2", "pronoun")
    # kind defaults to "first" for the first turn, "plain" after; spans as in question sets
    spans = {"question": "q", "spans": [{"doc_id": "kurils", "start": 0, "end": 5}]}
    [plain] = parse_dialogues([json.dumps({"id": 7, "turns": [{"question": "p", "answers": ["a"]}, spans]})])
    assert plain.did == "7" and plain.corpus == "seed"
    assert [t.kind for t in plain.turns] == ["first", "plain"] and plain.turns[1].question.spans[0].end == 5


def test_every_bad_dialogue_line_is_reported_with_its_number():
    lines = [
        json.dumps(KURILS),
        "",
        "{not json",
        json.dumps({"id": "a", "turns": [{"question": "q", "answers": ["x"]}, {"question": "r"}]}),
        json.dumps({"id": "b", "turns": [{"question": "q", "answers": ["x"], "kind": "sideways"}]}),
        json.dumps(
            {
                "id": "c",
                "turns": [{"question": "q", "answers": ["x"]}, {"question": "r", "answers": ["y"], "kind": "first"}],
            }
        ),
        json.dumps({"id": "d", "turns": []}),
        json.dumps({"id": "kurils", "turns": [{"question": "q", "answers": ["x"]}]}),
        json.dumps({"id": "has space", "turns": [{"question": "q", "answers": ["x"]}]}),
    ]
    with pytest.raises(QAError) as caught:
        parse_dialogues(lines, "set.jsonl")
    message = str(caught.value)
    assert message.startswith("set.jsonl: 7 bad line(s)")
    assert "line 3: not valid JSON" in message
    assert 'line 4: turn 2: give "answers" or "spans" (or both)' in message  # a turn without answers
    assert "line 5: turn 1: unknown \"kind\" 'sideways'" in message
    assert 'line 6: turn 2: the first turn, and only the first, is of kind "first"' in message
    assert 'line 7: "turns" must be a non-empty list' in message
    assert "line 8: the same id as line 1" in message
    assert 'line 9: "id" must be' in message
    with pytest.raises(QAError, match="holds no conversations"):
        parse_dialogues(["", "  "], "empty.jsonl")


def test_unknown_corpus_names_and_folders_without_a_corpus(tmp_path):
    dialogues = parse_dialogues([json.dumps(KURILS), json.dumps({**TOKYO, "corpus": "elsewhere"})])
    with pytest.raises(QAError, match=r"set: line 2: unknown corpus 'elsewhere'; known: seed, squad-dev-a"):
        check_corpora({"set": dialogues}, corpus_folders())
    (tmp_path / "empty").mkdir()
    with pytest.raises(QAError, match="has no corpus/ folder"):
        check_corpora({"set": dialogues}, corpus_folders([f"elsewhere={tmp_path / 'empty'}"]))
    write_docs(tmp_path / "own" / "corpus", {"tokyo.md": DOCS["tokyo.md"]})
    check_corpora({"set": dialogues}, corpus_folders([f"elsewhere={tmp_path / 'own'}"]))
    for bad in ("elsewhere", "=dir", "seed=dir"):
        with pytest.raises(QAError, match="NAME=DIR"):
            corpus_folders([bad])


# -- judging ------------------------------------------------------------------------------


def test_answer_sentences_split_on_the_markers():
    assert answer_sentences("One thing. [1] Another, said «she». [2]") == ["One thing.", "Another, said «she»."]
    assert answer_sentences("Both agree. [1] [3]") == ["Both agree."]
    assert answer_sentences("First title [1]; Second title [2]") == ["First title", "Second title"]  # a catalog list
    assert answer_sentences("") == []


TEXT = "Intro words here. The S-300V4 went to the islands. Japan protested."


def answer(short: str, start: int = 18, end: int = 50) -> Answer:
    highlight = Highlight(start, end, TEXT[start:end])
    passage = Passage(1, 0.9, TEXT[start:end], "kurils", "t", "", "kurils.md", start, end, None, highlight)
    return Answer("q", short, (passage,))


QUESTION = Question("d#2", "which system", ("S-300V4",))
TARGETS = Targets({"kurils": [(22, 29)]}, {})


def test_a_turn_is_judged_as_a_reader_sees_it():
    # the answer leads with it: every figure holds
    leading = judge_turn(answer("The S-300V4 went to the islands. [1] Japan protested. [1]"), QUESTION, TARGETS, [])
    assert leading == {
        "refused": False,
        "passage1": True,
        "first_sentence": True,
        "short_answer": True,
        "words": 8,
        "sentences": 2,
        "repeated": 0,
    }
    # held by the short answer, but not by its first sentence; passage [1] elsewhere in the document
    later = judge_turn(
        answer("Intro words here. [1] The  s-300v4 went to the islands. [2]", 0, 17), QUESTION, TARGETS, []
    )
    assert (later["passage1"], later["first_sentence"], later["short_answer"]) == (False, False, True)
    # a sentence the previous answer showed is counted (case and spacing aside), a new one is not
    previous = answer_sentences("Intro words  HERE. [1] Something else. [2]")
    repeated = judge_turn(answer("Intro words here. [1] Japan protested. [1]"), QUESTION, TARGETS, previous)
    assert (repeated["sentences"], repeated["repeated"], repeated["short_answer"]) == (2, 1, False)
    # refused: nothing found
    refused = judge_turn(Answer("q", "Nothing found.", ()), QUESTION, TARGETS, previous)
    assert refused == {
        "refused": True,
        "passage1": False,
        "first_sentence": False,
        "short_answer": False,
        "words": 0,
        "sentences": 0,
        "repeated": 0,
    }
    # gold spans: the span's text held by the sentence
    by_span = Targets({}, {"kurils": [(22, 29)]}, ("S-300V4",))
    spanned = judge_turn(answer("The S-300V4 went. [1]"), Question("s", "q", spans=()), by_span, [])
    assert spanned["first_sentence"] and spanned["passage1"]


def result(turn: int, kind: str, **figures) -> TurnResult:
    base = {
        "refused": False,
        "passage1": True,
        "first_sentence": True,
        "short_answer": True,
        "words": 10,
        "sentences": 1,
        "repeated": 0,
    }
    return TurnResult("d", turn, kind, "seed", "q", "q", "a", line=1, **{**base, **figures})


def test_figures_per_group():
    results = [
        result(1, "first", words=30, sentences=2),
        result(2, "pronoun", first_sentence=False, words=20, sentences=2, repeated=1),
        result(
            3, "pronoun", refused=True, passage1=False, first_sentence=False, short_answer=False, words=0, sentences=0
        ),
        result(4, "why_how", passage1=False, words=11, sentences=4, repeated=2),
    ]
    assert figures(results) == {
        "turns": 4,
        "refused": 0.25,
        "passage1": 0.5,
        "first_sentence": 0.5,
        "short_answer": 0.75,
        "repeated": 0.375,  # 3 of the 8 sentences shown
        "median_words": 20.0,  # of the three answers given
    }
    groups = DialogueEvaluation("set", 1, results).groups()
    assert list(groups) == ["all", "first", "follow-up", "pronoun", "why_how"]
    assert groups["follow-up"]["turns"] == 3 and groups["follow-up"]["repeated"] == 0.5
    assert groups["pronoun"]["first_sentence"] == 0.0 and groups["first"]["median_words"] == 30.0
    assert figures([])["turns"] == 0


# -- through Conversation, on an index ----------------------------------------------------


def test_dialogues_go_through_the_shared_conversation(settings):
    engine = open_index(settings=settings)
    dialogues = parse_dialogues([json.dumps(KURILS), json.dumps(TOKYO)])
    evaluation = evaluate_dialogues(dialogues, "set", {"seed": engine})
    assert [(r.dialogue, r.turn, r.kind) for r in evaluation.results] == [
        ("kurils", 1, "first"),
        ("kurils", 2, "pronoun"),
        ("tokyo", 1, "first"),
        ("tokyo", 2, "ellipsis"),
    ]
    [skipped] = evaluation.skipped
    assert skipped.qid == "tokyo#3" and skipped.line == 2 and "none of the answers" in skipped.reason
    # the same answers as a chat of the same questions, follow-ups carrying the earlier turns
    for dialogue in dialogues:
        chat = Conversation()
        asked = [chat.ask(engine, turn.question.text) for turn in dialogue.turns]
        for got in [r for r in evaluation.results if r.dialogue == dialogue.did]:
            assert got.answer == asked[got.turn - 1].answer
            assert got.searched == (asked[got.turn - 1].searched_query or asked[got.turn - 1].question)
    second = evaluation.results[1]
    assert second.searched != second.question  # "it" searched with the first turn's words
    first = evaluation.results[0]
    assert first.short_answer and first.words == sum(len(s.split()) for s in answer_sentences(first.answer))
    assert evaluation.groups()["all"]["turns"] == 4 and evaluation.groups()["all"]["refused"] == 0.0


def test_a_named_document_that_is_not_indexed_skips_the_turn(settings):
    engine = open_index(settings=settings)
    lost = {"id": "lost", "turns": [{"question": "q", "answers": ["crab"], "document": "nowhere.md"}]}
    evaluation = evaluate_dialogues(parse_dialogues([json.dumps(lost)]), "set", {"seed": engine})
    assert evaluation.results == []
    assert evaluation.skipped[0].reason == "no document 'nowhere.md' in the index of corpus 'seed'"


# -- the command --------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("QA_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", "hash")
    monkeypatch.setenv("QA_CHUNK_SIZE", "48")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "8")
    monkeypatch.setenv("QA_MIN_RELEVANCE", "0")
    monkeypatch.setenv("QA_EVAL_CACHE", str(tmp_path / "eval-cache"))
    return settings


def test_cli_eval_dialogues_over_two_corpora(cli_env, tmp_path, capsys):
    own = tmp_path / "own-set"  # a question-set folder's corpus, indexed in the eval cache
    write_docs(own / "corpus", {"fishing.txt": DOCS["fishing.txt"]})
    fishing = {
        "id": "fish",
        "corpus": "own",
        "turns": [
            {"question": "What do Japanese trawlers depend on?", "answers": ["quotas for crab and salmon"]},
            {"question": "who inspects them", "answers": ["border guards"], "kind": "pronoun"},
        ],
    }
    path = jsonl(tmp_path / "talks.jsonl", [KURILS, fishing])
    argv = ["eval", "--dialogues", str(path), "--dialogue-corpus", f"own={own}", "--quiet"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["dataset"], data["kind"], data["conversations"], data["turns"]) == ("talks.jsonl", "dialogues", 2, 4)
    assert list(data["groups"]) == ["all", "first", "follow-up", "pronoun", "corpus seed", "corpus own"]
    assert set(data["groups"]["all"]) == {
        "turns",
        "refused",
        "passage1",
        "first_sentence",
        "short_answer",
        "repeated",
        "median_words",
    }
    assert data["corpora"] == {"seed": str(cli_env.corpus_dir), "own": str(own)}
    assert [(t["id"], t["turn"], t["corpus"]) for t in data["per_turn"]] == [
        ("kurils", 1, "seed"),
        ("kurils", 2, "seed"),
        ("fish", 1, "own"),
        ("fish", 2, "own"),
    ]
    assert data["per_turn"][2]["short_answer"] and data["settings"]["use_context"] is True
    assert any(p.name.startswith("own-set-") for p in (tmp_path / "eval-cache").iterdir())

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("talks.jsonl: 2 conversations, 4 turns judged")
    header = next(line for line in out.splitlines() if line.startswith("turns of")).split()
    assert header[2:] == ["turns", "Refused", "Passage[1]", "FirstSentence", "ShortAnswer", "Repeated", "MedianWords"]
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in (["all"], ["first"])}
    assert rows["all"][0] == "4" and rows["first"][0] == "2"


def test_cli_eval_dialogues_beside_a_question_set(cli_env, tmp_path, capsys):
    questions = jsonl(tmp_path / "q.jsonl", [{"question": "Which system?", "answers": ["S-300V4"]}])
    path = jsonl(tmp_path / "talks.jsonl", [KURILS])
    assert main(["eval", str(questions), "--dialogues", str(path), "--json", "--quiet", "--mode", "lexical"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["dataset"] for e in data["evaluations"]] == ["q.jsonl"]
    assert [d["dataset"] for d in data["dialogues"]] == ["talks.jsonl"]


@pytest.mark.parametrize(
    ("lines", "extra", "message"),
    [
        (["{oops", json.dumps(KURILS)], [], "line 1: not valid JSON"),
        ([json.dumps({"id": "x", "turns": [{"question": "q"}]})], [], 'line 1: turn 1: give "answers" or "spans"'),
        ([json.dumps(KURILS), json.dumps({**TOKYO, "corpus": "mars"})], [], "line 2: unknown corpus 'mars'"),
        ([json.dumps(KURILS)], ["--save", "out.json"], "--save goes with question sets or --beir"),
        ([json.dumps(KURILS)], ["--dialogue-corpus", "nothing"], "--dialogue-corpus takes NAME=DIR"),
        ([json.dumps(KURILS)], ["--compare", "a.json", "b.json"], "or --compare A B, not both"),
    ],
)
def test_cli_eval_dialogue_errors(cli_env, tmp_path, capsys, lines, extra, message):
    path = jsonl(tmp_path / "talks.jsonl", lines)
    assert main(["eval", "--dialogues", str(path), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_eval_dialogue_file_missing(cli_env, capsys):
    assert main(["eval", "--dialogues", "nowhere.jsonl"]) == 1
    assert "dialogue set nowhere.jsonl not found" in capsys.readouterr().err
