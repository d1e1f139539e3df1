"""The reader: a tiny training run end to end (data, steps, ONNX export, inference), and the shipped model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from qa.answering import reader as inference
from qa.answering.reader import Context, Reader, pair_text
from qa.errors import QAError

ARTICLES = {
    "Bread": (
        "Bread is a staple food prepared from a dough of flour and water. It is usually baked in an oven.\n\n"
        "Yeast makes the dough rise by producing carbon dioxide. Sourdough uses wild yeast and lactic "
        "bacteria. The oldest known bread was found in Jordan and is about 14,000 years old.\n\n"
        "Wheat flour contains gluten, which gives bread its chewy texture. Rye bread is denser and darker."
    ),
    "Moon": (
        "The Moon is Earth's only natural satellite. It orbits the Earth at an average distance of "
        "384,400 kilometres.\n\n"
        "Neil Armstrong was the first person to walk on the Moon in 1969. The Apollo program landed "
        "twelve astronauts in total.\n\n"
        "The Moon has no atmosphere to speak of. Its surface is covered in craters and dust."
    ),
}
QUESTIONS = [
    {"question": "What makes the dough rise?", "answers": ["Yeast"]},
    {"question": "Where was the oldest known bread found?", "answers": ["Jordan"]},
    {"question": "What gives bread its chewy texture?", "answers": ["gluten"]},
    {"question": "What is bread usually baked in?", "answers": ["an oven"]},
    {"question": "Who was the first person to walk on the Moon?", "answers": ["Neil Armstrong"]},
    {"question": "How far is the Moon from the Earth on average?", "answers": ["384,400 kilometres"]},
    {"question": "How many astronauts did the Apollo program land?", "answers": ["twelve"]},
    {"question": "What covers the surface of the Moon?", "answers": ["craters and dust"]},
]


@pytest.fixture
def tiny(tmp_path):
    training = pytest.importorskip("qa.training.reader")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / f"{name}.md").write_text(f"---\ntitle: {name}\n---\n\n{text}\n", encoding="utf-8")
    articles = training.read_corpus(folder)
    placed = training.place_questions(QUESTIONS, articles)
    return training, articles, placed


def test_questions_are_placed_in_their_paragraph(tiny):
    _, articles, placed = tiny
    assert len(placed) == len(QUESTIONS)
    first = placed[0]
    assert first.article == "Bread" and first.paragraph == 1
    assert [articles["Bread"].sentences[k].text for k in first.positives] == [
        "Yeast makes the dough rise by producing carbon dioxide.",
        "Sourdough uses wild yeast and lactic bacteria.",  # "yeast", matched as SQuAD answers are
    ]


def test_styles_of_asking():
    training = pytest.importorskip("qa.training.reader")
    import random

    assert training.lower_plain("Who was the first person on the Moon?") == "who was the first person on the moon"
    assert training.keywords("Who was the first person on the Moon?") == "first person moon"
    typo = training.typo("what makes the dough rise quickly", random.Random(1))
    assert typo != "what makes the dough rise quickly" and len(typo.split()) == 6


def test_pair_text_marks_the_sentence():
    text, start, end = pair_text(Context("The sentence.", "one two three", "after words here", "Title"))
    assert text[start:end] == "The sentence."
    assert text.startswith("Title | one two three | ")
    text, start, end = pair_text("Alone.")
    assert text[start:end] == "Alone."


@pytest.mark.parametrize("layers", [None, 2])
def test_a_tiny_training_run_learns_exports_and_scores(tiny, tmp_path, layers):
    import torch

    training, articles, placed = tiny
    pairs = training.build_pairs(articles, placed, [], seed=3)
    assert 24 <= len(pairs) <= 120
    assert any(p.label for p in pairs) and not all(p.label for p in pairs)
    answers = {a.lower() for q in QUESTIONS for a in q["answers"]}
    for p in pairs:
        if p.label:
            a, b = p.answer
            assert p.context.sentence[a:b].lower() in answers
    base = training.base_model_path()
    tokenizer = training.load_tokenizer(base / "tokenizer.json")
    subset = pairs[:32]
    torch.manual_seed(0)
    before = training.mean_loss(training.build_model(base, layers), tokenizer, subset)

    log = io.StringIO()
    run = training.Run(tmp_path / "run", seed=3, log=log, layers=layers)
    checkpoint = training.train(run, subset * 3)  # 6 steps over the same 32 pairs
    assert training.finished(checkpoint)
    assert "step 6/6" in log.getvalue()
    model = training.load_trained(checkpoint, base)
    assert len(model.encoder.encoder.layer) == (layers or 6)
    after = training.mean_loss(model, tokenizer, subset)
    assert after < before

    onnx = training.export_onnx(model, tokenizer, tmp_path / "export" / "model.onnx")
    folder = training.model_folder(tmp_path / "reader", onnx, base / "tokenizer.json", {"phrase_threshold": 0.0})
    reader = Reader(folder)
    article = articles["Moon"]
    contexts = [article.context(k) for k in range(len(article.sentences))]
    reading = reader.score("Who walked on the Moon first?", contexts)
    assert reading.relevance.shape == (len(contexts),)
    assert len(reading.phrases) == len(contexts)
    for context, phrase in zip(contexts, reading.phrases, strict=True):
        assert phrase is not None and phrase.shown
        assert context.sentence[phrase.start : phrase.end] == phrase.text and phrase.text
        assert 0.0 < phrase.confidence <= 1.0
    # The ONNX graph computes what the trained model computes.
    encoded = inference.encode_pairs(reader._tokenizer, "Who walked on the Moon first?", contexts)
    with torch.no_grad():
        rel, start, end = model(
            torch.from_numpy(encoded.input_ids),
            torch.from_numpy(encoded.attention_mask),
            torch.from_numpy(encoded.token_type_ids),
        )
    np.testing.assert_allclose(reading.relevance, rel.numpy(), atol=1e-3)
    found = inference.best_span(start[0].numpy(), end[0].numpy(), encoded.sentence_mask[0])
    assert found is not None and abs(found[2] - reading.phrases[0].confidence) < 1e-3


def test_missing_model_files_say_how_to_get_them(tmp_path):
    with pytest.raises(QAError, match="qa fit reader"):
        Reader(tmp_path).score("a question", ["a sentence"])


def test_qa_reader_off(monkeypatch):
    monkeypatch.setenv("QA_READER", "off")
    assert not inference.enabled()
    monkeypatch.setenv("QA_READER", "on")
    assert inference.enabled()
    monkeypatch.setenv("QA_READER", "maybe")
    with pytest.raises(QAError, match="QA_READER"):
        inference.enabled()


SHIPPED = inference.MODEL_DIR


@pytest.mark.skipif(not (SHIPPED / "model.onnx").is_file(), reason="no shipped reader model yet")
def test_the_shipped_reader_ranks_the_answer_first():
    settings = json.loads((SHIPPED / "reader.json").read_text(encoding="utf-8"))
    assert settings["figures"]["held_out"]["reader_p1"] > 0.5
    sentences = [
        Context("The bakery opens at seven in the morning.", title="Bread"),
        Context("Neil Armstrong was the first person to walk on the Moon in 1969.", title="Moon"),
        Context("Rye bread is denser and darker than wheat bread.", title="Bread"),
    ]
    reading = inference.score("who was the first man on the moon", sentences)
    assert int(np.argmax(reading.relevance)) == 1
    phrase = reading.phrases[1]
    assert phrase is not None and "Armstrong" in phrase.text


def test_the_shipped_variant_is_the_fastest_that_keeps_the_figures():
    from qa.training import reader as training

    def result(p1, ms):
        return {"held_out": {"reader_p1": p1, "span_em": 0.5, "span_f1": 0.6}, "ms_per_10_sentences": ms}

    small, big = 20e6, 60e6
    sizes = {"fp32": big, "int8": small, "int8-weights": small}
    # The fast int8 loses figures, the weight-only one keeps them: the weight-only one ships.
    results = {"fp32": result(0.83, 100), "int8": result(0.82, 50), "int8-weights": result(0.829, 95)}
    keep, gaps = training.choose_variant(results, sizes)
    assert keep == "int8-weights" and abs(gaps["int8"]["reader_p1"] - 0.01) < 1e-9
    results["int8"] = result(0.828, 50)
    assert training.choose_variant(results, sizes)[0] == "int8"
    # None keeps them: the closest within the budget.
    results.update(int8=result(0.80, 50), **{"int8-weights": result(0.82, 95)})
    assert training.choose_variant(results, sizes)[0] == "int8-weights"
    # fp32 within the budget and faster than every variant that holds: fp32.
    assert training.choose_variant(results, {**sizes, "fp32": small})[0] == "fp32"
