"""`qa eval`: question sets, relevance judging, BEIR folders, metrics, saved results, plots (hash embedder)."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from qa import evaluation as ev
from qa.cli import main
from qa.embedding.models import load_embedder
from qa.engine import open_index
from qa.errors import QAError
from qa.evaluation.beir import load_beir, read_qrels
from qa.evaluation.cache import index_folder
from qa.evaluation.metrics import RESULT_FORMAT, metric_names, recall_curve
from qa.evaluation.questions import (
    ChunkSpan,
    Question,
    SpanRef,
    answer_spans,
    load_questions,
    normalise,
    parse_questions,
    question_id,
    relevant_chunks,
)
from qa.retrieval.fusion import min_max

PNG = b"\x89PNG\r\n\x1a\n"


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows))
    return path


# -- question files -------------------------------------------------------------------------


def test_questions_parse_answers_spans_and_ids():
    questions = parse_questions(
        [
            json.dumps({"question": "  Who   met Putin? ", "answers": ["Abe"]}),
            "",
            json.dumps(
                {"id": "k1", "question": "What was deployed?", "spans": [{"doc_id": "kurils", "start": 3, "end": 9}]}
            ),
            json.dumps(
                {"question": "Where?", "answers": ["islands"], "spans": [{"source": "kurils.md", "start": 0, "end": 4}]}
            ),
        ]
    )
    assert [q.line for q in questions] == [1, 3, 4]
    assert questions[0].text == "Who met Putin?" and questions[0].answers == ("Abe",)
    assert questions[0].qid == question_id("who met putin?")  # derived from the text: stable under reordering
    assert questions[1].qid == "k1" and questions[1].spans == (SpanRef("kurils", 3, 9),)
    assert questions[2].spans[0].doc == "kurils.md"


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    path = jsonl(
        tmp_path / "q.jsonl",
        [
            {"question": "fine", "answers": ["x"]},
            "{not json",
            {"answers": ["x"]},
            {"question": "no labels"},
            {"question": "bad span", "spans": [{"doc_id": "a", "start": 5, "end": 2}]},
            {"question": "bad answers", "answers": "x"},
            {"question": "fine", "answers": ["y"]},
            ["a", "list"],
        ],
    )
    with pytest.raises(QAError) as caught:
        load_questions(path)
    message = str(caught.value)
    assert "7 bad line(s)" in message
    for number, fragment in [
        (2, "not valid JSON"),
        (3, '"question" must be'),
        (4, 'give "answers" or "spans"'),
        (5, "span 1 needs integer offsets"),
        (6, '"answers" must be a list'),
        (7, "the same question (or id) as line 1"),
        (8, "expected a JSON object"),
    ]:
        assert f"line {number}: {fragment}" in message
    assert "line 1:" not in message


def test_missing_question_file(tmp_path):
    with pytest.raises(QAError, match="not found"):
        load_questions(tmp_path / "none.jsonl")


# -- judging --------------------------------------------------------------------------------


def test_answers_match_ignoring_case_and_whitespace():
    text = "Russia deployed an S-300V4\n   air  defence system. Café  Diplomacy; s-300v4 again."
    spans = answer_spans(text, ["s-300v4 AIR defence", "café diplomacy", "absent"])
    assert [text[s:e] for s, e in spans] == ["S-300V4\n   air  defence", "Café  Diplomacy"]
    assert [text[s:e] for s, e in answer_spans(text, ["S-300V4"])] == ["S-300V4", "s-300v4"]
    assert normalise("  Ünïcode\tTEXT \n") == "ünïcode text"


def test_contained_answers_and_overlapping_spans():
    chunks = [ChunkSpan(0, "d", 0, 100), ChunkSpan(1, "d", 80, 180), ChunkSpan(2, "d", 160, 260)]
    chunks.append(ChunkSpan(3, "other", 0, 100))
    # An answer occurrence must lie inside a chunk: 85-95 is in chunks 0 and 1; 170-190 straddles 1|2 only partly.
    inside = relevant_chunks(chunks, {"d": [(85, 95)]}, {})
    assert [c.id for c in inside] == [0, 1]
    assert relevant_chunks(chunks, {"d": [(175, 185)]}, {}) == [chunks[2]]
    assert relevant_chunks(chunks, {"d": [(95, 165)]}, {}) == [chunks[1]]
    # A gold span only has to share one character; touching is not overlapping.
    assert [c.id for c in relevant_chunks(chunks, {}, {"d": [(99, 161)]})] == [0, 1, 2]
    assert [c.id for c in relevant_chunks(chunks, {}, {"d": [(180, 200)]})] == [2]
    assert relevant_chunks(chunks, {}, {"d": [(260, 300)]}) == []
    assert chunks[0].passage_id == "d:0-100"
    assert ChunkSpan(9, "a folder/x y", 1, 2).passage_id == "a%20folder/x%20y:1-2"


def _engine(settings):
    return open_index(settings=settings)


def test_judging_on_an_index_skips_what_cannot_be_judged(settings):
    engine = _engine(settings)
    kurils = engine.document("kurils").text
    start = kurils.index("S-300V4")
    questions = parse_questions(
        json.dumps(row)
        for row in [
            {"id": "a", "question": "air defence", "answers": ["s-300v4  AIR defence"]},
            {"id": "b", "question": "span", "spans": [{"source": "kurils.md", "start": start, "end": start + 7}]},
            {"id": "c", "question": "crab", "answers": ["crab and SALMON", "Café diplomacy"]},
            {"id": "d", "question": "nowhere", "answers": ["chocolate cake"]},
            {"id": "e", "question": "missing doc", "spans": [{"doc_id": "nothing", "start": 0, "end": 5}]},
            {"id": "f", "question": "out of range", "spans": [{"doc_id": "kurils", "start": 0, "end": 10**6}]},
            {"id": "g", "question": "changed", "spans": [{"doc_id": "kurils", "start": 0, "end": 4, "text": "Nope"}]},
            {
                "id": "h",
                "question": "checked",
                "spans": [{"doc_id": "kurils", "start": start, "end": start + 7, "text": "s-300V4"}],
            },
        ]
    )
    chunks = ev.chunk_table(engine.snapshot.catalog)

    def document(key):
        doc = engine.snapshot.catalog.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judged = ev.judge_questions(questions, chunks, document)
    assert [q.qid for q in judged.questions] == ["a", "b", "c", "h"]
    reasons = {s.qid: (s.line, s.reason) for s in judged.skipped}
    assert reasons["d"] == (4, "none of the answers occurs within a passage of the indexed corpus")
    assert "no document 'nothing'" in reasons["e"][1] and reasons["e"][0] == 5
    assert "outside 'kurils'" in reasons["f"][1]
    assert "no longer has the given text" in reasons["g"][1]
    by_id = {c.passage_id: c for c in chunks}
    for passage in judged.qrels["a"]:
        chunk = by_id[passage]
        assert "s-300v4 air defence" in normalise(kurils[chunk.start : chunk.end])
    assert {by_id[p].doc_id for p in judged.qrels["c"]} == {"fishing", "tokyo"}
    assert judged.qrels["b"] == judged.qrels["h"]


def test_gold_spans_stay_valid_when_the_chunking_changes(settings, tmp_path):
    text_span = None
    found = []
    for size, overlap in ((48, 8), (20, 4)):
        engine = _engine(settings.with_(index_dir=tmp_path / f"index-{size}", chunk_size=size, chunk_overlap=overlap))
        doc = engine.document("tokyo")
        start = doc.text.index("eight-point")
        text_span = (start, start + len("eight-point economic plan"))
        question = Question("q", "plan", spans=(SpanRef("tokyo", *text_span),), line=1)
        chunks = ev.chunk_table(engine.snapshot.catalog)
        judged = ev.judge_questions([question], chunks, lambda k, e=engine: (k, e.document(k).text))
        relevant = [c for c in chunks if c.passage_id in judged.qrels["q"]]
        assert relevant and all(c.start < text_span[1] and text_span[0] < c.end for c in relevant)
        found.append({(c.start, c.end) for c in relevant})
    assert found[0] != found[1]  # other chunks, the same gold span


# -- runs and metrics -----------------------------------------------------------------------


def test_metrics_match_a_hand_computed_example():
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}, "q3": {"d": 1}}
    run = {"q1": {"a": 0.9, "x": 0.8, "b": 0.7}, "q2": {"x": 0.5, "c": 0.4}, "q3": {}}
    names = metric_names(passages=True)
    scores = ev.evaluate_run(qrels, run, names)
    assert scores["ndcg@10"]["q1"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert scores["ndcg@10"]["q2"] == pytest.approx(1 / math.log2(3))
    assert scores["recall@1"] == {"q1": 0.5, "q2": 0.0, "q3": 0.0}
    assert scores["recall@5"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    assert scores["mrr@10"] == {"q1": 1.0, "q2": 0.5, "q3": 0.0}
    assert scores["map@100"]["q1"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["hit@1"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert scores["hit@5"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    assert ev.mean(scores["mrr@10"]) == pytest.approx(0.5)
    curve = recall_curve(qrels, run)
    assert (
        len(curve) == 100
        and curve[0] == pytest.approx(0.5 / 3, abs=1e-6)
        and curve[2] == pytest.approx(2 / 3, abs=1e-6)
    )
    assert "hit@5" not in metric_names(passages=False)


def test_document_run_takes_each_documents_best_chunk_and_breaks_ties():
    doc_of = {1: "A", 2: "B", 3: "A", 4: "C", 5: "D"}
    run = ev.document_run([2, 1, 3, 4, 5, 99], [0.9, 0.5, 0.5, 0.5, 0.1, 0.05], doc_of)
    assert list(run) == ["B", "A", "C", "D"]  # chunk 3 adds nothing to A; 99 has no document
    assert run["B"] == 0.9 and run["A"] == 0.5
    assert all(x > y for x, y in itertools.pairwise(run.values()))  # the tie A/C is ordered, not left to chance
    assert list(ev.document_run([1, 2, 4, 5], [4, 3, 2, 1], doc_of, k=2)) == ["A", "B"]


# -- BEIR -----------------------------------------------------------------------------------

BEIR_DOCS = [
    {"_id": "d1", "title": "Crab quotas", "text": "Japanese trawlers fish for crab under yearly quotas."},
    {"_id": "d2", "title": "Air defence", "text": "An S-300V4 battery was put on combat duty on the islands."},
    {"_id": "d3", "title": "", "text": "Abe met Putin on 20 November and proposed an eight-point plan."},
    {"_id": "d4", "title": "東京の外交", "text": "Café diplomacy and naïve hopes that the islands return."},
    {"_id": "d5", "title": "Copy", "text": "Identical text in two documents."},
    {"_id": "d6", "title": "Copy", "text": "Identical text in two documents."},
]


def make_beir(root: Path) -> Path:
    folder = root / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    jsonl(folder / "corpus.jsonl", BEIR_DOCS)
    jsonl(
        folder / "queries.jsonl",
        [
            {"_id": "1", "text": "crab quotas for trawlers"},
            {"_id": "2", "text": "S-300V4 combat duty"},
            {"_id": "3", "text": "eight-point plan Abe Putin"},
            {"_id": "4", "text": "unjudged query"},
        ],
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n3\td3\t2\n3\td4\t0\n")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n4\td5\t1\n")
    return folder


def test_beir_loading(tmp_path):
    folder = make_beir(tmp_path)
    data = load_beir(folder)
    assert list(data.queries) == ["1", "2", "3"]  # only judged queries
    assert data.qrels == {"1": {"d1": 1}, "2": {"d2": 1}, "3": {"d3": 2}}  # grade 0 dropped
    assert load_beir(folder, "train").qrels == {"4": {"d5": 1}}
    with pytest.raises(QAError, match=r"dev\.tsv not found \(this folder has: test, train\)"):
        load_beir(folder, "dev")
    (folder / "qrels" / "bad.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\n2 d2 x\n")
    with pytest.raises(QAError, match=r"line 2: expected.*line 3: expected"):
        read_qrels(folder / "qrels" / "bad.tsv")


def test_beir_bad_corpus_lines_are_numbered(tmp_path, settings):
    folder = make_beir(tmp_path)
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"title": "no id"}\n{broken\n')
    with pytest.raises(QAError, match=r"corpus\.jsonl: line 7: expected an object.*line 8: not valid JSON"):
        ev.evaluate_beir(folder, settings, cache_root=tmp_path / "cache")


def test_beir_evaluation_is_cached_and_document_level(tmp_path, settings):
    folder = make_beir(tmp_path)
    cache = tmp_path / "cache"
    first = ev.evaluate_beir(folder, settings, cache_root=cache)
    assert first.level == "document" and len(first.queries) == 3
    assert first.settings["documents"] == 6  # equal texts are not merged as duplicates
    assert first.settings["chunks_embedded"] > 0
    assert first.runs["lexical"]["1"] and next(iter(first.runs["lexical"]["1"])) == "d1"
    assert set(first.runs["hybrid"]["2"]) <= {d["_id"] for d in BEIR_DOCS}
    assert first.modes["lexical"]["ndcg@10"] == pytest.approx(1.0)
    for metrics in first.modes.values():
        assert set(metrics) == set(metric_names(passages=False))
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    second = ev.evaluate_beir(folder, settings, cache_root=cache)
    assert second.settings["chunks_embedded"] == 0
    assert second.settings["index"] == first.settings["index"]
    assert second.modes == first.modes
    # Another chunker gets its own folder.
    embedder = load_embedder("hash")
    assert index_folder(folder, settings, embedder, cache) != index_folder(
        folder, settings.with_(chunk_size=64), embedder, cache
    )
    doc = Path(first.settings["index"])
    assert json.loads((doc / "dataset.json").read_text())["dataset"] == str(folder.resolve())


# -- the command ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("QA_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", "hash")
    monkeypatch.setenv("QA_CHUNK_SIZE", "48")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "8")
    monkeypatch.setenv("QA_MIN_RELEVANCE", "0")  # the fitted gate judges the real model, not the hash embedder
    monkeypatch.setenv("QA_EVAL_CACHE", str(tmp_path / "eval-cache"))
    return settings


QUESTIONS = [
    {"id": "s300", "question": "Which air defence system was put on combat duty?", "answers": ["S-300V4"]},
    {"id": "crab", "question": "What do trawlers need quotas for?", "answers": ["crab and salmon"]},
    {"id": "plan", "question": "What plan did Abe propose?", "answers": ["eight-point economic plan"]},
    {"id": "cafe", "question": "Which kind of diplomacy?", "answers": ["CAFÉ   diplomacy"]},
    {"id": "gone", "question": "What about chocolate?", "answers": ["chocolate"]},
]


def test_cli_eval_json_shape(cli_env, tmp_path, capsys):
    path = jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    assert main(["eval", str(path), "--json", "--quiet"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dataset"] == "questions.jsonl" and data["queries"] == 4
    assert set(data["modes"]) == {"hybrid", "dense", "lexical", "ask"}
    for mode, metrics in data["modes"].items():
        if mode == "ask":  # answers through `ask`: every question, gate included
            assert set(metrics) == {"nothing_found", "hit@1", "hit@5", "highlight", "short_answer", "p50_ms"}
            assert metrics["p50_ms"] > 0 and metrics["nothing_found"] == 0.0  # the tests' gate answers all
            metrics = {k: v for k, v in metrics.items() if k != "p50_ms"}
        else:
            expected = {"ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr@10", "map@100", "hit@5"}
            assert expected <= set(metrics)
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert [(s["id"], s["line"]) for s in data["skipped"]] == [("gone", 5)]
    assert "none of the answers" in data["skipped"][0]["reason"]
    assert data["seconds"] >= 0
    assert data["modes"]["lexical"]["hit@10"] == 1.0  # every answer is a literal phrase of the corpus


def test_cli_eval_text_save_runs_and_plot(cli_env, tmp_path, capsys):
    import ir_measures

    path = jsonl(tmp_path / "questions.jsonl", QUESTIONS[:4])
    saved, runs, plot = tmp_path / "out" / "a.json", tmp_path / "runs", tmp_path / "recall.png"
    argv = ["eval", str(path), "--save", str(saved), "--runs", str(runs), "--plot", str(plot), "--quiet"]
    assert main([*argv, "--mode", "lexical", "--mode", "hybrid"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[2].split()
    assert header == ["metric", "lexical", "hybrid", "ask"]  # modes side by side, then answers through `ask`
    assert "nDCG@10" in out and "Hit@5" in out
    assert plot.read_bytes().startswith(PNG) and plot.stat().st_size > 10_000
    data = json.loads(saved.read_text())
    assert len(data["per_query"]) == 4 and data["per_query"][0]["line"] == 1
    assert set(data["per_query"][0]) >= {"id", "question", "relevant", "hybrid", "lexical"}
    assert len(data["curves"]["hybrid"]) == 100
    # The run files are valid TREC files: scoring them again gives the printed numbers.
    qrels = list(ir_measures.read_trec_qrels(str(runs / "questions.qrels")))
    run = list(ir_measures.read_trec_run(str(runs / "questions.hybrid.trec")))
    again = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
    assert again == pytest.approx(data["modes"]["hybrid"]["ndcg@10"], abs=1e-4)


def test_cli_eval_reports_bad_lines(cli_env, tmp_path, capsys):
    path = jsonl(tmp_path / "q.jsonl", [{"question": "ok", "answers": ["crab"]}, "nonsense", {"question": ""}])
    assert main(["eval", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2: not valid JSON" in err and 'line 3: "question" must be' in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval"], "give one of"),
        (["eval", "q.jsonl", "--compare", "a.json", "b.json"], "not both"),
        (["eval", "--compare", "a.json", "b.json", "--save", "c.json"], "go with an evaluation"),
        (["eval", "--beir", "nowhere"], "BEIR folder nowhere not found"),
        (["eval", "missing.jsonl", "--beir", "nowhere"], "question set missing.jsonl not found"),
        (["eval", "."], "is a folder without questions.jsonl and corpus/"),
    ],
)
def test_cli_eval_usage_errors(cli_env, capsys, argv, message):
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_cli_eval_beir(cli_env, tmp_path, capsys):
    folder = make_beir(tmp_path)
    assert main(["eval", "--beir", str(folder), "--json", "--quiet", "--mode", "lexical"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dataset"] == "tiny-beir" and data["split"] == "test" and data["level"] == "document"
    assert list(data["modes"]) == ["lexical"] and data["modes"]["lexical"]["recall@100"] == 1.0
    assert Path(data["settings"]["index"]).parent == tmp_path / "eval-cache"


def test_cli_eval_several_collections_in_one_run(cli_env, tmp_path, capsys):
    from tests.conftest import DOCS, write_docs

    beir = make_beir(tmp_path)
    own = tmp_path / "own-set"  # a question-set folder: questions over its own corpus
    write_docs(own / "corpus", {"kurils.md": DOCS["kurils.md"], "tokyo.md": DOCS["tokyo.md"]})
    jsonl(own / "questions.jsonl", [QUESTIONS[0], QUESTIONS[2]])
    seed = jsonl(tmp_path / "seed.jsonl", QUESTIONS[:4])
    argv = ["eval", "--beir", str(beir), str(own), str(seed), "--quiet"]
    assert main([*argv, "--json", "--mode", "lexical", "--mode", "hybrid"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(e["dataset"], e["level"], e["queries"]) for e in data["evaluations"]] == [
        ("tiny-beir", "document", 3),
        ("own-set", "passage", 2),
        ("seed.jsonl", "passage", 4),
    ]
    assert list(data["evaluations"][0]["modes"]) == ["lexical", "hybrid"]  # BEIR: rankings only
    assert all(list(e["modes"]) == ["lexical", "hybrid", "ask"] for e in data["evaluations"][1:])
    own_index = Path(data["evaluations"][1]["settings"]["index"])
    assert own_index.parent == tmp_path / "eval-cache" and own_index != cli_env.index_dir
    assert data["evaluations"][1]["modes"]["lexical"]["hit@10"] == 1.0

    saved = tmp_path / "out" / "run.json"
    assert main([*argv, "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("collection") :].splitlines()
    assert table[0].split()[:4] == ["collection", "mode", "nDCG@10", "Recall@1"] and table[0].split()[-1] == "Hit@10"
    rows = [re.match(r"(.+?)\s{2,}(\w+)((?:\s+[\d.]+)+)\s*$", line).groups() for line in table[2:11]]
    names = ("tiny-beir (test)", "own-set", "seed.jsonl")
    assert [r[:2] for r in rows] == [(name, mode) for name in names for mode in ("lexical", "dense", "hybrid")]
    assert [len(r[2].split()) for r in rows] == [7] * 3 + [10] * 6  # Hit@k only for question sets
    # Then the answers through `ask`, for the question sets only.
    answers = table[table.index("answers through `ask` (its defaults, relevance gate included):") + 1 :]
    assert answers[0].split()[:4] == ["collection", "mode", "NothingFound", "Hit@1"]
    assert [line.split()[:2] for line in answers[2:4]] == [["own-set", "ask"], ["seed.jsonl", "ask"]]
    for name in ("tiny-beir", "own-set", "seed"):
        assert ev.load_saved(tmp_path / "out" / f"run-{name}.json")["per_query"]


# -- comparing ------------------------------------------------------------------------------


def saved_result(path: Path, values: dict[str, float], recall: float) -> Path:
    per_query = [
        {
            "id": qid,
            "question": f"question {qid}",
            "relevant": ["x"],
            "hybrid": {"metrics": {"ndcg@10": v}, "first_relevant": 1 if v else None, "top": []},
            "dense": {"metrics": {"ndcg@10": v / 2}, "first_relevant": None, "top": []},
        }
        for qid, v in values.items()
    ]
    modes = {
        m: {"ndcg@10": sum(q[m]["metrics"]["ndcg@10"] for q in per_query) / len(per_query)} for m in ("hybrid", "dense")
    }
    data = {"format": RESULT_FORMAT, "dataset": "d", "modes": modes, "per_query": per_query}
    data["curves"] = {"hybrid": [recall] * 100, "dense": [recall / 2] * 100}
    path.write_text(json.dumps(data))
    return path


def test_compare_lists_worse_queries_first(tmp_path, capsys):
    a = saved_result(tmp_path / "a.json", {"q1": 1.0, "q2": 0.5, "q3": 0.2, "q4": 0.7, "only-a": 1.0}, 0.6)
    b = saved_result(tmp_path / "b.json", {"q1": 0.4, "q2": 0.9, "q3": 0.1, "q4": 0.7, "only-b": 0.0}, 0.7)
    comparison = ev.compare(ev.load_saved(a), ev.load_saved(b))
    assert [c.qid for c in comparison.changes] == ["q1", "q3", "q4", "q2"]
    assert [c.qid for c in comparison.worse] == ["q1", "q3"] and [c.qid for c in comparison.better] == ["q2"]
    assert comparison.only_a == 1 and comparison.only_b == 1
    assert comparison.modes["hybrid"]["ndcg@10"] == pytest.approx((0.68, 0.42))

    plot = tmp_path / "compare.png"
    assert main(["eval", "--compare", str(a), str(b), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert out.index("worse in B") < out.index("better in B")
    assert out.index("q1") < out.index("q3") < out.index("q2")
    assert "2 worse, 1 better, 1 unchanged" in out
    assert plot.read_bytes().startswith(PNG)

    assert main(["eval", "--compare", str(a), str(b), "--json", "--mode", "dense"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "dense" and [q["id"] for q in data["per_query"]][:2] == ["q1", "q3"]
    assert data["per_query"][0]["delta"] == pytest.approx(-0.3)

    assert main(["eval", "--compare", str(a), str(b), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "2 worse, 1 better, 1 unchanged" in out and "worse in B" not in out and "q1" not in out
    assert main(["eval", "--compare", str(a), str(b), "--top", "-1"]) != 0
    assert "--top must be 0 (the counts alone) or more" in capsys.readouterr().err


def test_compare_refuses_unrelated_files(tmp_path):
    a = saved_result(tmp_path / "a.json", {"q1": 1.0}, 0.5)
    b = saved_result(tmp_path / "b.json", {"z9": 1.0}, 0.5)
    with pytest.raises(QAError, match="share no query ids"):
        ev.compare(ev.load_saved(a), ev.load_saved(b))
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(QAError, match="not a result saved by"):
        ev.load_saved(tmp_path / "c.json")
    with pytest.raises(QAError, match="metric 'recall@7'"):
        ev.compare(ev.load_saved(a), ev.load_saved(a), metric="recall@7")


# -- the fusion defaults that evaluation chose ----------------------------------------------


def test_hybrid_fusion_setting(settings, monkeypatch):
    from qa.config import Settings
    from qa.retrieval.search import Searcher

    assert (Settings().fusion, Settings().lexical_weight, Settings().candidates) == ("convex", 0.5, 300)
    engine = _engine(settings)
    rankings = {}
    for fusion in ("convex", "rrf"):
        searcher = Searcher(engine.snapshot, engine.embedder, settings.with_(fusion=fusion, rerank_depth=0))
        ranking = searcher.rank("S-300V4 deployed to the islands", "hybrid", depth=50)
        assert all(a > b for a, b in itertools.pairwise(ranking.scores))
        assert set(ranking.ids) == set(ranking.dense) | set(ranking.lexical)
        rankings[fusion] = ranking
    # Convex: 0.5 * min-max(cosine) + 0.5 * min-max(BM25), an absent score counting 0.
    convex = rankings["convex"]
    dense = dict(zip(convex.dense, min_max(list(convex.dense.values()))))
    lexical = dict(zip(convex.lexical, min_max(list(convex.lexical.values()))))
    for chunk, score in zip(convex.ids, convex.scores):
        assert score == pytest.approx(0.5 * dense.get(chunk, 0) + 0.5 * lexical.get(chunk, 0), abs=1e-6)
    # RRF: the sum of 1 / (60 + rank) over the retrievers that found the chunk.
    rrf = rankings["rrf"]
    ranks = [{c: r for r, c in enumerate(run, 1)} for run in (rrf.dense, rrf.lexical)]
    for chunk, score in zip(rrf.ids, rrf.scores):
        assert score == pytest.approx(sum(1 / (60 + r[chunk]) for r in ranks if chunk in r), abs=1e-6)
    monkeypatch.setenv("QA_FUSION", "max")
    with pytest.raises(QAError, match="QA_FUSION must be convex or rrf"):
        Settings.from_env()
    monkeypatch.setenv("QA_FUSION", "rrf")
    monkeypatch.setenv("QA_LEXICAL_WEIGHT", "1.5")
    with pytest.raises(QAError, match="QA_LEXICAL_WEIGHT must be between 0 and 1"):
        Settings.from_env()


# -- answers through ask ----------------------------------------------------------------------
def test_cli_eval_asks_every_question_and_the_off_topic_ones(cli_env, tmp_path, capsys):
    path = jsonl(tmp_path / "questions.jsonl", QUESTIONS[:4])
    offtopic = tmp_path / "offtopic.txt"
    offtopic.write_text("# comment\nWhat is the boiling point of mercury?\n\nchocolate cake recipe\n", encoding="utf-8")
    assert main(["eval", str(path), "--json", "--quiet", "--unanswerable", str(offtopic), "--mode", "hybrid"]) == 0
    ask = json.loads(capsys.readouterr().out)["modes"]["ask"]
    assert ask["offtopic_refused"] == 0.0  # the tests' settings answer every question (QA_MIN_RELEVANCE=0)
    assert ask["hit@5"] == 1.0 and ask["nothing_found"] == 0.0
    saved = tmp_path / "a.json"
    assert main(["eval", str(path), "--quiet", "--unanswerable", str(offtopic), "--save", str(saved)]) == 0
    data = ev.load_saved(saved)
    assert data["offtopic"]["questions"] == 2 and set(data["offtopic"]["per_query"]) == {
        "What is the boiling point of mercury?",
        "chocolate cake recipe",
    }
    assert all("ask" in q and "short_answer" in q["ask"]["metrics"] for q in data["per_query"])
    # --compare works on the answers too.
    assert main(["eval", "--compare", str(saved), str(saved), "--mode", "ask", "--metric", "short_answer"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--unanswerable", "missing.txt"], "off-topic question file missing.txt not found"),
        (["--unanswerable", "folder"], "is a folder; give a text file with one question a line"),
        (["--unanswerable", "empty.txt"], "holds no question"),
        (["--unanswerable", "empty.txt", "--no-answers"], "leave out --no-answers"),
    ],
)
def test_cli_eval_bad_unanswerable_files(cli_env, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.txt").write_text("# only a comment\n\n", encoding="utf-8")
    path = jsonl(tmp_path / "questions.jsonl", QUESTIONS[:2])
    assert main(["eval", str(path), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


HARBOURS = {
    "arden": "The harbour of Arden shelters forty trawlers and a lifeboat station beside the old quay.",
    "brill": "Brill's harbour was dredged in 1911 so that steamers could reach the granary wharf.",
    "corvo": "Corvo has no harbour; its boats land on a shingle beach, as the trawlers of Arden once did.",
}
WITHHELD_QUESTIONS = [
    {"id": "arden", "question": "How many boats does the Arden harbour shelter?", "answers": ["forty trawlers"]},
    {"id": "brill", "question": "When was the harbour at Brill dredged?", "answers": ["1911"]},
    {"id": "corvo", "question": "Where do the boats of Corvo land?", "answers": ["shingle beach"]},
    # Two documents hold "trawlers": withholding one leaves the answer in the other.
    {"id": "both", "question": "What kind of boats does Arden have?", "answers": ["trawlers"]},
    # Judged by a gold span alone: another document may answer it in other words.
    {"id": "span", "question": "What was dredged?", "spans": [{"doc_id": "brill", "start": 0, "end": 20}]},
]


@pytest.mark.parametrize(("min_relevance", "refused"), [("0", 0.0), ("1", 1.0)])
def test_cli_eval_withheld_asks_what_one_document_answers_without_it(
    tmp_path, capsys, monkeypatch, min_relevance, refused
):
    from qa.engine import QA

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in HARBOURS.items():
        (corpus / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n", encoding="utf-8")
    for key, value in {"QA_CORPUS": corpus, "QA_INDEX": tmp_path / "index", "QA_MODEL": "hash"}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("QA_MIN_RELEVANCE", min_relevance)
    asked: list[tuple[str, int, set[str]]] = []
    real_ask = QA.ask

    def spy(self, question, *args, **kwargs):
        answer = real_ask(self, question, *args, **kwargs)
        asked.append((question, len(self.documents()), {p.doc_id for p in answer.passages}))
        return answer

    monkeypatch.setattr(QA, "ask", spy)
    path = jsonl(tmp_path / "questions.jsonl", WITHHELD_QUESTIONS)
    saved = tmp_path / "saved.json"
    assert main(["eval", str(path), "--mode", "hybrid", "--withheld", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "WithheldRefused" in out
    assert "withheld: 3 questions, each asked without the one document holding its answer (3 documents" in out
    data = ev.load_saved(saved)
    assert data["modes"]["ask"]["withheld_refused"] == refused
    withheld = data["withheld"]
    assert (withheld["documents"], withheld["questions"]) == (3, 3)
    assert withheld["per_query"] == {"arden": refused, "brill": refused, "corvo": refused}
    # Each was asked of the two other documents, whose passages alone could be shown.
    again = {q: docs for q, n, docs in asked if n == 2}
    assert set(again) == {q["question"] for q in WITHHELD_QUESTIONS[:3]}
    for question, docs in again.items():
        owner = next(q["id"] for q in WITHHELD_QUESTIONS if q["question"] == question)
        assert owner not in docs and (docs or refused == 1.0)
    # The index evaluated is left as it was: every document still answers.
    assert len(open_index(build=False).documents()) == 3


def test_cli_eval_withheld_needs_a_question_set_asked_of_a_local_index(cli_env, tmp_path, capsys):
    path = jsonl(tmp_path / "questions.jsonl", QUESTIONS[:2])
    for argv, message in [
        ([str(path), "--withheld", "--no-answers"], "leave out --no-answers"),
        (["--beir", str(tmp_path), "--withheld"], "--withheld goes with a question set"),
        ([str(path), "--withheld", "--store", "postgres", "--dsn", "host=nowhere"], "use --store local"),
    ]:
        assert main(["eval", *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_a_corpus_of_one_document_has_nothing_to_withhold(tmp_path):
    from qa.config import Settings
    from qa.evaluation.questions import Targets
    from qa.evaluation.withheld import evaluate_withheld, sole_documents

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "arden.md").write_text(f"# Arden\n\n{HARBOURS['arden']}\n", encoding="utf-8")
    engine = open_index(settings=Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hash"))
    questions = parse_questions([json.dumps(WITHHELD_QUESTIONS[0])])
    targets = {questions[0].qid: Targets({"arden": [(23, 37)]}, {})}
    assert set(sole_documents(questions, targets)) == {"arden"}
    assert evaluate_withheld(engine, questions, targets) == {}


def test_judge_answer_reads_passages_highlight_and_short_answer():
    from qa.evaluation.answers import judge_answer
    from qa.evaluation.questions import Question, Targets
    from qa.types import Answer, Highlight, Passage

    def passage(rank, start, end, highlight):
        return Passage(rank, 0.5, "", "d", "", "", "d.md", start, end, None, Highlight(*highlight, ""))

    targets = Targets({"d": [(40, 47)]}, {})
    question = Question("q", "Which system?", ("S-300V4",))
    answer = Answer(
        "Which system?", "An S-300V4 was deployed. [2]", (passage(1, 0, 30, (0, 30)), passage(2, 30, 90, (35, 60)))
    )
    metrics, first = judge_answer(answer, question, targets)
    assert metrics == {"nothing_found": 0.0, "hit@1": 0.0, "hit@5": 1.0, "highlight": 0.0, "short_answer": 1.0}
    assert first == 2
    nothing, first = judge_answer(Answer("Which system?", "No relevant passage found", ()), question, targets)
    assert nothing["nothing_found"] == 1.0 and first is None


def test_compare_tests_each_difference_with_scipy_and_holm(tmp_path, capsys):
    """The p-values and intervals are scipy's (sign-flip randomisation, percentile bootstrap), Holm by statsmodels."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    from qa.evaluation import significance

    rng = np.random.default_rng(7)
    ids = [f"q{i}" for i in range(40)]
    before = {q: float(v) for q, v in zip(ids, rng.uniform(0.2, 0.6, len(ids)))}
    after = {q: v + 0.3 if i % 4 else v for i, (q, v) in enumerate(before.items())}  # hybrid clearly better
    a = saved_result(tmp_path / "a.json", before, 0.5)
    b = saved_result(tmp_path / "b.json", after, 0.5)
    # dense (v / 2 in the fixture) moves up and down at random: not significant.
    data = json.loads(b.read_text())
    for entry, noise in zip(data["per_query"], rng.normal(0, 0.05, len(ids))):
        entry["dense"]["metrics"]["ndcg@10"] = before[entry["id"]] / 2 + float(noise)
    b.write_text(json.dumps(data))
    comparison = ev.compare(ev.load_saved(a), ev.load_saved(b))

    expected = {}
    for mode in ("hybrid", "dense"):
        values_b = {q["id"]: q[mode]["metrics"]["ndcg@10"] for q in data["per_query"]}
        values_a = {q: (v if mode == "hybrid" else v / 2) for q, v in before.items()}
        diff = np.array([values_b[q] - values_a[q] for q in ids])
        rng_seed = significance.SEED
        test = stats.permutation_test(
            (diff,), np.mean, permutation_type="samples", n_resamples=significance.RESAMPLES,
            random_state=np.random.default_rng(rng_seed),
        )  # fmt: skip
        ci = stats.bootstrap(
            (diff,), np.mean, n_resamples=significance.RESAMPLES, method="percentile",
            random_state=np.random.default_rng(rng_seed),
        ).confidence_interval  # fmt: skip
        expected[mode] = (diff.mean(), test.pvalue, ci.low, ci.high)
    holm = multipletests([expected["hybrid"][1], expected["dense"][1]], method="holm")[1]
    for mode, p_holm in zip(("hybrid", "dense"), holm):
        got = comparison.differences[(mode, "ndcg@10")]
        delta, p, low, high = expected[mode]
        assert got.queries == 40
        assert (got.delta, got.p, got.low, got.high, got.p_holm) == pytest.approx((delta, p, low, high, p_holm))
    assert comparison.differences[("hybrid", "ndcg@10")].significant
    assert not comparison.differences[("dense", "ndcg@10")].significant

    assert main(["eval", "--compare", str(a), str(b)]) == 0
    rows = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith(("hybrid", "dense"))
    }
    assert rows["dense"].endswith("n.s.") and not rows["hybrid"].endswith("n.s.")
    assert "<0.001" in rows["hybrid"]
    assert main(["eval", "--compare", str(a), str(b), "--json"]) == 0
    test = json.loads(capsys.readouterr().out)["modes"]["hybrid"]["ndcg@10"]["test"]
    assert test["significant"] and test["ci"][0] > 0 and test["queries"] == 40


def test_compare_tests_the_answer_metrics_and_off_topic_questions():
    from qa.evaluation.report import _per_query_values

    saved = {
        "modes": {"ask": {"hit@1": 0.5}},
        "per_query": [
            {"id": "q1", "ask": {"metrics": {"hit@1": 1.0}}},
            {"id": "q2", "ask": {"metrics": {"hit@1": 0.0}}},
        ],
        "offtopic": {"per_query": {"cake?": 1, "weather?": 0}},
    }
    values = _per_query_values(saved)
    assert values == {"ask": {"hit@1": {"q1": 1.0, "q2": 0.0}, "offtopic_refused": {"cake?": 1, "weather?": 0}}}
    from qa.evaluation.significance import paired_differences

    same = paired_differences(values, values)
    assert all(d.p == 1.0 and not d.tested and (d.low, d.high) == (0.0, 0.0) for d in same.values())
