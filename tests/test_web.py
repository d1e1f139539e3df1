"""Handlers of the web chat, called as plain functions (hash model, tiny corpus, no server)."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from html import unescape

import pytest

from qa.answering.answer import NOTHING_FOUND
from qa.config import Settings
from qa.embedding.models import HashEmbedder
from qa.engine import open_index
from qa.storage.local.snapshot import IndexLayout
from qa.types import Answer, Highlight, Passage
from qa.web.app import AdminGate, ChatHandlers, new_context
from qa.web.render import render_reply
from tests.web_helpers import assert_inert, parse_html
from tests.web_helpers import web_settings as make_web_settings

QUESTION = "What did Russia deploy to the Kuril islands?"


@pytest.fixture
def web_settings(tmp_path) -> Settings:
    return make_web_settings(tmp_path)


@pytest.fixture
def engine(web_settings):
    return open_index(settings=web_settings)


@pytest.fixture
def handlers(engine):
    return ChatHandlers(engine)


def ask(handlers, question, history=None, context=None, **options):
    return handlers.respond(question, history or [], context or new_context(), **options)


def last(history) -> str:
    return history[-1]["content"]


# -- a chat turn ------------------------------------------------------------------------------
def test_reply_shows_answer_with_linked_markers_and_cards(handlers):
    history, box, context, summary = ask(handlers, QUESTION)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert box == ""
    assert [turn.question for turn in context.turns] == [QUESTION]
    assert context.recent_queries() == [QUESTION]
    reply = last(history)
    parsed = assert_inert(reply)
    cards = [attrs for tag, attrs in parsed.tags if tag == "article"]
    assert cards and cards[0]["id"] == "qa-t1-p1"
    cites = [attrs["href"] for tag, attrs in parsed.tags if tag == "a" and "qa-cite" in attrs.get("class", "")]
    assert cites and set(cites) <= {f"#{attrs['id']}" for attrs in cards}
    # Each card: rank, title, author and date, score, highlighted sentence, open link.
    assert "[1]</span>" in reply and "Deployments on the Kuril islands" in reply
    assert "Anna Petrova" in reply and "2020-12-10" in reply and re.search(r"score \d\.\d{4}", reply)
    assert re.search(r'<mark class="qa-hl">[^<]*S-300V4', reply) or re.search(r'<mark class="qa-hl">[^<]*Kuril', reply)
    opens = [attrs["href"] for tag, attrs in parsed.tags if tag == "a" and "qa-open" in attrs.get("class", "")]
    assert len(opens) == len(cards) and all(h.startswith("#qa-open?doc=") for h in opens)
    assert "documents" in summary


def test_answer_matches_engine_and_markers_point_to_cards(handlers, engine):
    answer = engine.ask(QUESTION, k=3)
    html = render_reply(answer, 7)
    for rank in {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}:
        assert f'href="#qa-t7-p{rank}"' in html and f'id="qa-t7-p{rank}"' in html
    assert handlers.ask_json(QUESTION, 3) == answer.to_dict()


def test_question_and_document_markup_is_escaped(handlers):
    question = "garrison Bastion launchers <script>alert(1)</script> <img src=x onerror=alert(2)>"
    history, *_ = ask(handlers, question)
    user, reply = history[-2]["content"], history[-1]["content"]
    assert_inert(user)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in user
    parsed = assert_inert(reply)
    text = "".join(parsed.text)
    # The planted document's markup shows as text, in the title, the author and the passage.
    assert "<script>window.__xss = 1; alert('xss')</script>" in text
    assert "Planted <script>window.__xss_title = 1</script> garrison note" in text
    assert "Eve <img src=x onerror='window.__xss_author = 1'>" in text
    assert "<script" not in reply and "<img" not in reply


def test_non_ascii_question_and_text(handlers):
    history, *_ = ask(handlers, "What did Abe propose in Nagato? «東京»")
    assert "«東京»" in history[-2]["content"]
    reply = last(history)
    assert "東京の外交 — Tokyo&#x27;s diplomacy" in reply and "Kenji Watanabe" in reply


def test_follow_up_is_searched_with_the_previous_questions_terms(handlers):
    history, _, context, _ = ask(handlers, QUESTION)
    history, _, context, _ = ask(handlers, "and how did Japan respond?", history, context)
    reply = last(history)
    searched = re.search(r'<p class="qa-searched">.*?<q>(.*?)</q>', reply)
    assert searched, reply
    assert searched.group(1).startswith("how did Japan respond?")
    assert {"Russia", "deploy", "Kuril"} <= set(searched.group(1).split())
    assert "qa-card" in reply
    assert len(context.turns) == 2 and unescape(searched.group(1)) == context.recent_queries()[-1]


def test_follow_up_context_can_be_switched_off(handlers):
    history, _, context, _ = ask(handlers, QUESTION)
    history, *_ = ask(handlers, "and how did Japan respond?", history, context, use_context=False)
    assert "qa-searched" not in last(history)


def test_standalone_question_is_searched_as_typed(handlers):
    history, _, context, _ = ask(handlers, QUESTION)
    history, *_ = ask(handlers, "Which quotas do Japanese trawlers depend on for crab and salmon?", history, context)
    assert "qa-searched" not in last(history)


def test_nothing_found_is_said_plainly(web_settings):
    gated = ChatHandlers(open_index(settings=replace(web_settings, min_relevance=None)))  # the fitted gate
    history, *_ = ask(gated, "zebra quantum pancake")
    reply = last(history)
    assert NOTHING_FOUND in reply and "qa-card" not in reply


def test_empty_question_gets_a_hint_not_a_bubble(handlers):
    history, box, context, _ = ask(handlers, "   \n ")
    assert len(history) == 1 and history[0]["role"] == "assistant"
    assert "Type a question first" in last(history)
    assert context.turns == [] and box == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "bogus"}, "Unknown retrieval mode"),
        ({"k": 0}, "between 1 and 20"),
        ({"k": 2.5}, "whole number"),
        ({"k": float("nan")}, "whole number"),
        ({"k": "5"}, "whole number"),
        ({"date_from": "2020-13"}, "must look like 2020"),
        ({"date_to": "last year"}, "must look like 2020"),
    ],
)
def test_bad_input_is_a_message_in_the_chat(handlers, options, message):
    history, box, context, _ = ask(handlers, QUESTION, **options)
    reply = last(history)
    assert "qa-error" in reply and message in reply and "Traceback" not in reply
    assert box == QUESTION  # kept, to fix and ask again
    assert context.turns == []


def test_an_unexpected_error_is_logged_not_shown(handlers, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(handlers.engine, "ask", broken)
    history, box, *_ = ask(handlers, QUESTION)
    assert "Something went wrong while answering" in last(history) and "disk on fire" not in last(history)
    assert box == QUESTION
    assert "disk on fire" in caplog.text


@pytest.mark.parametrize(
    ("question", "filters", "source"),
    [
        ("islands Kuril deployed Abe Nagato", {"docs": ["tokyo"]}, "tokyo.md"),
        ("islands Kuril deployed Abe Nagato", {"author": "petrova"}, "kurils.md"),
        ("garrison winter exercise Iturup Kuril deployed", {"date_from": "2021"}, "planted.md"),
        ("islands Kuril deployed Abe Nagato", {"date_to": "2016-12"}, "tokyo.md"),
    ],
)
def test_filters_restrict_the_sources(handlers, question, filters, source):
    unfiltered = last(ask(handlers, question, k=10)[0])
    assert len(set(re.findall(r'<span class="qa-where">([^,]+)', unfiltered))) > 1
    history, *_ = ask(handlers, question, k=10, **filters)
    reply = last(history)
    sources = set(re.findall(r'<span class="qa-where">([^,]+)', reply))
    assert sources == {source}, reply


def test_k_limits_the_cards(handlers):
    history, *_ = ask(handlers, "islands Kuril deployed garrison", k=1)
    assert last(history).count('<article class="qa-card"') == 1


# -- the document viewer ----------------------------------------------------------------------
def test_open_document_highlights_the_cited_span(handlers, engine):
    answer = engine.ask("garrison Iturup Bastion launchers", k=1)
    passage = answer.passages[0]
    assert passage.source == "planted.md"
    html = handlers.open_document(
        {
            "doc": passage.doc_id,
            "start": passage.start,
            "end": passage.end,
            "hl_start": passage.highlight.start,
            "hl_end": passage.highlight.end,
        }
    )
    parsed = assert_inert(html)
    text = "".join(parsed.text)
    doc = engine.document(passage.doc_id)
    assert doc.text in text  # the whole document, as text
    span = re.search(r'<mark class="qa-span" id="qa-doc-span">(.*?)</mark>\s*(.*?)</div>', html, flags=re.S)
    assert span
    sentence = re.search(r"<mark class='qa-sentence'>(.*?)</mark>", html, flags=re.S)
    assert sentence and "Bastion launchers &lt;script&gt;" in sentence.group(1)
    assert "<script" not in html and "<img" not in html


@pytest.mark.parametrize(
    "request_",
    [
        None,
        {},
        {"doc": 5},
        {"doc": "no/such/doc", "start": 0, "end": 5},
        {"doc": "kurils", "start": "abc", "end": None},
        {"doc": "kurils", "start": 10, "end": 10**9},
        {"doc": "kurils", "start": -5, "end": 3, "hl_start": 7, "hl_end": 2},
    ],
)
def test_open_document_survives_any_request(handlers, request_):
    html = handlers.open_document(request_)
    assert_inert(html)
    assert "qa-doc" in html


def test_large_document_is_shown_around_the_span(handlers, engine, monkeypatch):
    import qa.web.render

    monkeypatch.setattr(qa.web.render, "VIEWER_WINDOW_CHARS", 300)
    doc = engine.document("planted")
    start = doc.text.index("The garrison")
    html = handlers.open_document({"doc": "planted", "start": start, "end": start + 40})
    assert "characters before this window are not shown" in html and "qa-span" in html
    assert len("".join(parse_html(html).text)) < 1000


# -- corpus summary ---------------------------------------------------------------------------
def test_summary_lists_documents_escaped(handlers):
    summary = handlers.summary()
    parsed = assert_inert(summary)
    text = "".join(parsed.text)
    assert "4 documents" in text.replace("\xa0", " ")
    assert re.search(r"\d+ chunks", text) and re.search(r"index updated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", text)
    assert "Planted <script>window.__xss_title = 1</script> garrison note" in text
    choices = dict((value, label) for label, value in handlers.document_choices())
    assert set(choices) == {"fishing", "kurils", "planted", "tokyo"}


# -- analysts ---------------------------------------------------------------------------------
def test_admin_gate_checks_and_locks_out():
    now = [0.0]
    gate = AdminGate("s3cret", max_failures=3, window=60, lockout=30, clock=lambda: now[0])
    assert gate.check("s3cret")[0]
    assert gate.check("nope") == (False, "Wrong password.")
    assert not gate.check(None)[0]
    ok, message = gate.check("wrong again")
    assert not ok and "locked for 30 s" in message
    ok, message = gate.check("s3cret")  # even the right password waits out the lockout
    assert not ok and "try again in" in message
    now[0] = 31.0
    assert gate.check("s3cret")[0]


def test_without_password_there_is_no_admin(handlers, tmp_path):
    assert not handlers.admin_enabled
    assert handlers.unlock("")[0] is False
    upload = tmp_path / "new.md"
    upload.write_text("Sakhalin gas exports grew.", encoding="utf-8")
    assert "Unlock the Index tab" in handlers.add_uploads(True, [str(upload)])
    assert "Unlock the Index tab" in handlers.update_index(True)


def test_admin_actions_need_the_unlocked_session(engine, tmp_path):
    admin = ChatHandlers(engine, admin_password="s3cret")
    upload = tmp_path / "new.md"
    upload.write_text("Sakhalin gas exports grew.", encoding="utf-8")
    assert "Unlock the Index tab" in admin.add_uploads(False, [str(upload)])
    assert "Unlock the Index tab" in admin.add_uploads("true", [str(upload)])  # only the server's True counts
    assert "Unlock the Index tab" in admin.update_index(False)
    assert not (engine.settings.corpus_dir / "new.md").exists()
    assert admin.unlock("s3cret")[0]


def _upload(tmp_path, name, text):
    folder = tmp_path / "uploads" / str(len(list((tmp_path).glob("uploads/*"))))
    folder.mkdir(parents=True)
    path = folder / "received.bin"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return {"path": str(path), "orig_name": name}


def test_upload_then_update_makes_new_text_searchable(engine, tmp_path):
    admin = ChatHandlers(engine, admin_password="s3cret")
    corpus = engine.settings.corpus_dir
    files = [
        _upload(tmp_path, "../../sakhalin gas.md", "# Sakhalin gas\n\nSakhalin LNG exports to Japan grew in 2019."),
        _upload(tmp_path, "notes.exe", "not a document"),
        _upload(tmp_path, "empty.txt", "   "),
        _upload(tmp_path, "kurils.md", "A different text under a taken name."),
        _upload(tmp_path, "copy-of-kurils.md", (corpus / "kurils.md").read_text(encoding="utf-8")),
    ]
    report = admin.add_uploads(True, files)
    parsed = assert_inert(report)
    rows = [r for r in "".join(parsed.text).split("\n") if r]
    text = " ".join(rows)
    assert "1 of 5 file(s) saved" in text
    assert "../../sakhalin gas.md → sakhalin gas.md" in text
    assert "unsupported file type '.exe'" in text and "the file is empty" in text
    assert "a different file with this name is already in the corpus" in text
    assert "the same content is already in the corpus as kurils.md" in text
    assert (corpus / "sakhalin gas.md").is_file()
    assert not (tmp_path / "sakhalin gas.md").exists() and not (corpus.parent.parent / "sakhalin gas.md").exists()
    assert "Sakhalin" not in (corpus / "kurils.md").read_text(encoding="utf-8")
    assert "sakhalin gas.md" in admin.admin_status(True)

    calls = []
    report = admin.update_index(True, progress=lambda *a, **k: calls.append((a, k)))
    assert calls, "the progress callback was used"
    assert_inert(report)
    assert "1 added, 0 changed, 0 removed, 4 unchanged, 0 failed" in report
    assert engine.stats()["documents"] == 5
    history, *_ = admin.respond("Sakhalin LNG exports to Japan", [], new_context())
    assert "sakhalin gas.md" in last(history)
    assert "matches the corpus" in admin.admin_status(True)


def test_replacing_needs_consent_and_is_reported(engine, tmp_path):
    admin = ChatHandlers(engine, admin_password="s3cret")
    corpus = engine.settings.corpus_dir
    same = _upload(tmp_path, "fishing.txt", (corpus / "fishing.txt").read_text(encoding="utf-8"))
    changed = _upload(tmp_path, "fishing.txt", "Fishing\n\nCrab quotas were cut in 2021.")
    assert "unchanged" in admin.add_uploads(True, [same])
    assert "rejected" in admin.add_uploads(True, [changed])
    report = admin.add_uploads(True, [changed], replace=True)
    assert "replaced" in report and "stays indexed until the index is updated" in report
    assert "Crab quotas were cut" in (corpus / "fishing.txt").read_text(encoding="utf-8")


def test_upload_size_limit(engine, tmp_path):
    admin = ChatHandlers(engine, admin_password="s3cret", max_upload_mb=0.001)
    report = admin.add_uploads(True, [_upload(tmp_path, "big.txt", "word " * 400)])
    assert "too large" in report and "limit is 0.001 MB" in report
    assert not (engine.settings.corpus_dir / "big.txt").exists()


def test_update_reports_a_concurrent_writer(engine):
    admin = ChatHandlers(engine, admin_password="s3cret")
    with IndexLayout(engine.settings.index_dir).writer_lock():
        report = admin.update_index(True)
    assert "Another process is updating the index right now" in report and "qa-error" in report


class GatedEmbedder(HashEmbedder):
    """Blocks the index update's embedding (not the readers') until released."""

    def __init__(self) -> None:
        super().__init__()
        self.updating: threading.Thread | None = None
        self.started = threading.Event()
        self.release = threading.Event()

    def encode(self, texts):
        if threading.current_thread() is self.updating:
            self.started.set()
            assert self.release.wait(30), "the test never released the update"
        return super().encode(texts)


def test_readers_keep_answering_during_an_update(web_settings, tmp_path):
    embedder = GatedEmbedder()
    engine = open_index(settings=web_settings, embedder=embedder)
    admin = ChatHandlers(engine, admin_password="s3cret")
    admin.add_uploads(True, [_upload(tmp_path, "sakhalin.md", "# Sakhalin\n\nSakhalin LNG exports to Japan grew.")])
    results: list[str] = []
    embedder.updating = threading.Thread(target=lambda: results.append(admin.update_index(True)))
    embedder.updating.start()
    try:
        assert embedder.started.wait(30)
        # Mid-update: answers still come, from the index as it was.
        history, *_ = admin.respond(QUESTION, [], new_context())
        assert "qa-card" in last(history)
        assert engine.stats()["documents"] == 4
        assert "already running" in admin.update_index(True)
    finally:
        embedder.release.set()
        embedder.updating.join(30)
    assert "1 added" in results[0]
    assert engine.stats()["documents"] == 5


# -- rendering details ------------------------------------------------------------------------
def _passage(rank: int, sentence: str, text: str | None = None) -> Passage:
    text = text or f"Intro. {sentence} Outro."
    start = text.index(sentence)
    return Passage(
        rank=rank,
        score=0.5 / rank,
        text=text,
        doc_id=f"d{rank}",
        title=f"Doc {rank}",
        author="",
        source=f"d{rank}.md",
        start=0,
        end=len(text),
        page=None,
        highlight=Highlight(start, start + len(sentence), sentence),
    )


def test_only_real_markers_become_links():
    first, second = _passage(1, "See note [2] on the islands."), _passage(2, "Treaty talks stalled.")
    answer = Answer("q", "See note [2] on the islands. [1] Treaty talks stalled. [2]", (first, second))
    html = render_reply(answer, 3)
    assert 'See note [2] on the islands. <a class="qa-cite" href="#qa-t3-p1"' in html
    assert html.count('class="qa-cite"') == 2
    assert "author unknown" in html and "date unknown" in html


def test_template_syntax_is_neutralised():
    passage = _passage(1, "Costs ${alert(1)} and {{constructor}} rose.")
    html = render_reply(Answer("q", "Costs ${alert(1)} and {{constructor}} rose. [1]", (passage,)), 1)
    assert "${" not in html and "{{" not in html
    assert "".join(parse_html(html).text).count("${alert(1)}") == 2  # still shown as text


# -- saving the chat ----------------------------------------------------------------------------
def test_save_writes_the_conversation_as_markdown_with_its_citations(handlers, engine, tmp_path):
    handlers.export_dir = tmp_path / "exports"
    assert handlers.export(new_context()) is None and handlers.export(None) is None  # nothing to save yet
    history, _, context, _ = ask(handlers, QUESTION)
    history, _, context, _ = ask(handlers, "and how did Japan respond?", history, context)
    _, _, context, _ = ask(handlers, QUESTION, history, context, mode="bogus")  # an error: no turn
    path = handlers.export(context)
    assert path and path.startswith(str(tmp_path / "exports")) and re.search(r"qa-chat-\d{8}-\d{6}\.md$", path)
    with open(path, encoding="utf-8") as saved:
        markdown = saved.read()
    assert "## 1. What did Russia deploy to the Kuril islands?" in markdown
    assert "## 2. and how did Japan respond?" in markdown and "## 3." not in markdown
    for turn in context.turns:
        for passage in turn.answer.passages:
            assert f"`{passage.source}`, characters {passage.start}–{passage.end}" in markdown
            assert f"`qa show {passage.doc_id} --span {passage.start}:{passage.end}`" in markdown
    assert re.findall(r"\[\d\]", context.turns[0].answer.answer)[0] in markdown
    assert handlers.export(context) != path  # each save is its own file
