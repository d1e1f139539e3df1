"""`qa chat`: answers with citations, follow-ups, /sources, /open N, /save FILE, /new, /quit;
in process (hash model), through piped input, and in a real terminal (readline history)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from qa.answering.answer import answer_sentences, sentence_key
from qa.chat import PROMPT, TerminalChat
from qa.engine import open_index
from tests.web_helpers import REPO, app_env, web_settings

QUESTION = "What did Russia deploy to the Kuril islands?"
FOLLOW_UP = "and how did Japan respond?"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return open_index(settings=web_settings(tmp_path_factory.mktemp("chat")))


@pytest.fixture
def chat(engine):
    return TerminalChat(engine, {"k": 3}, out=io.StringIO(), err=io.StringIO(), width=90)


def said(chat: TerminalChat) -> str:
    text = chat.out.getvalue()
    chat.out.seek(0)
    chat.out.truncate()
    return text


def errors(chat: TerminalChat) -> str:
    text = chat.err.getvalue()
    chat.err.seek(0)
    chat.err.truncate()
    return text


def test_a_question_and_its_follow_up(chat, engine):
    answer = chat.ask(QUESTION)
    reply = said(chat)
    assert answer.passages and answer.answer.split()[0] in reply
    for passage in answer.passages:
        assert f"[{passage.rank}] {passage.title}" in reply
        assert f"characters {passage.start}–{passage.end}" in " ".join(reply.split())
    assert "/sources" in reply  # the hint, once
    follow = chat.ask(FOLLOW_UP)
    reply = said(chat)
    assert follow.searched_query.startswith("how did Japan respond?") and "Kuril" in follow.searched_query
    assert f"(searched for: {follow.searched_query})" in " ".join(reply.split())
    assert "/sources" not in reply
    # The chat's answer is the engine's, less the sentences the previous answer showed.
    shown = [sentence_key(s) for s in answer_sentences(answer)]
    again = engine.ask(FOLLOW_UP, k=3, searched_query=follow.searched_query, shown_before=shown)
    assert follow.to_dict() == again.to_dict()


def test_sources_and_open(chat, engine):
    chat.handle(QUESTION)
    answer = chat.conversation.turns[-1].answer
    said(chat)
    chat.handle("/sources")
    sources = said(chat)
    for passage in answer.passages:
        assert f"qa show {passage.doc_id} --span {passage.start}:{passage.end}" in sources
        assert "best sentence" in sources
    chat.handle("/open 1")
    opened = said(chat)
    first = answer.passages[0]
    doc = engine.document(first.doc_id)
    assert f"{doc.source}: characters {first.start}–{first.end} of {len(doc.text)}" in opened
    marked = re.search(r">>>(.*?)<<<", opened, flags=re.S)
    assert marked and " ".join(marked.group(1).split()) == " ".join(doc.text[first.start : first.end].split())


def test_open_in_colour_marks_the_span_and_the_best_sentence(engine):
    chat = TerminalChat(engine, {"k": 1}, out=io.StringIO(), err=io.StringIO(), color=True)
    chat.handle(QUESTION)
    chat.handle("/open 1")
    text = chat.out.getvalue()
    assert "\x1b[1m" in text and "\x1b[4m" in text and ">>>" not in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/open 0", "/open takes a passage number of the last answer, 1 to 3 (got '0')"),
        ("/open 9", "1 to 3 (got '9')"),
        ("/open x", "(got 'x')"),
        ("/open", "(got '')"),
        ("/frobnicate", "unknown command /frobnicate; /help lists the commands"),
        ("/save", "/save needs a file name"),
    ],
)
def test_bad_commands_say_what_to_do(chat, line, message):
    chat.handle(QUESTION)
    assert chat.handle(line) is True  # the chat goes on
    assert message in errors(chat)


def test_more_shows_what_the_short_answer_left_out(chat):
    answer = chat.ask(QUESTION)
    said(chat)
    assert answer.more  # the headline question's sources say more than its short answer
    chat.handle("/more")
    assert " ".join(said(chat).split()) == " ".join(answer.more.split())
    chat.conversation.turns[-1] = replace(chat.conversation.turns[-1], answer=replace(answer, more=""))
    chat.handle("/more")
    assert "nothing more" in said(chat)


def test_commands_before_any_answer(chat, tmp_path):
    chat.handle("/sources")
    assert "no passages yet: ask a question first" in errors(chat)
    chat.handle("/more")
    assert "no passages yet: ask a question first" in errors(chat)
    chat.handle(f"/save {tmp_path / 'chat.md'}")
    assert "nothing to save yet" in errors(chat) and not (tmp_path / "chat.md").exists()


def test_a_bad_question_is_an_error_and_the_chat_goes_on(engine):
    chat = TerminalChat(engine, {"mode": "bogus"}, out=io.StringIO(), err=io.StringIO())
    assert chat.handle(QUESTION) is True
    assert "qa: error: unknown retrieval mode 'bogus'" in chat.err.getvalue()
    assert chat.conversation.turns == []


def test_save_writes_markdown_and_never_overwrites_unasked(chat, tmp_path):
    chat.handle(QUESTION)
    chat.handle(FOLLOW_UP)
    said(chat)
    target = tmp_path / "chat.md"
    chat.handle(f"/save {target}")
    assert f"saved 2 answers with their cited passages to {target}" in said(chat)
    markdown = target.read_text(encoding="utf-8")
    assert f"## 1. {QUESTION}" in markdown and f"## 2. {FOLLOW_UP}" in markdown
    for turn in chat.conversation.turns:
        for passage in turn.answer.passages:
            assert f"`qa show {passage.doc_id} --span {passage.start}:{passage.end}`" in markdown
    chat.handle("zebra quantum pancake")  # a third answer, that finds nothing
    chat.handle(f"/save {target}")
    assert f"{target} exists: choose another name, or /save! {target} to replace it" in errors(chat)
    assert target.read_text(encoding="utf-8") == markdown
    chat.handle(f"/save! {target}")
    assert "## 3. zebra quantum pancake" in target.read_text(encoding="utf-8")
    chat.handle(f"/save {tmp_path}")
    assert "is a folder" in errors(chat)
    chat.handle(f"/save {tmp_path / 'missing' / 'chat.md'}")
    assert "there is no folder" in errors(chat)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.md"]  # no temporary file left


def test_new_starts_afresh_and_quit_ends(chat):
    chat.handle(QUESTION)
    chat.handle("/new")
    assert chat.conversation.turns == []
    chat.handle(FOLLOW_UP)
    assert chat.conversation.turns[-1].answer.searched_query == ""
    assert chat.handle("/quit") is False and chat.handle("/exit") is False


# -- the command --------------------------------------------------------------------------------
def _env(engine, tmp_path) -> dict[str, str]:
    settings = engine.settings
    return app_env(
        settings.corpus_dir,
        settings.index_dir,
        QA_CHUNK_SIZE=str(settings.chunk_size),
        QA_CHUNK_OVERLAP=str(settings.chunk_overlap),
        QA_MIN_RELEVANCE=str(settings.min_relevance),
        QA_CACHE_DIR=str(tmp_path / "cache"),
    )


PROBE = (
    "import sys; from qa.cli import main; code = main(sys.argv[1:]); "
    "web = sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'fastapi', 'starlette', 'uvicorn', 'mcp') "
    "or m.startswith('qa.web')); print('web modules:', web, file=sys.stderr); sys.exit(code)"
)


def test_qa_chat_with_piped_input_and_no_web_modules(engine, tmp_path):
    target = tmp_path / "chat.md"
    lines = f"{QUESTION}\n{FOLLOW_UP}\n/open 1\n/save {target}\n/bogus\n/quit\nnever read\n"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "chat", "-k", "2"],
        input=lines,
        cwd=REPO,
        env=_env(engine, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("qa chat: 4 documents")
    assert f"{PROMPT}{QUESTION}\n" in out and f"{PROMPT}{FOLLOW_UP}\n" in out  # echoed: a readable transcript
    assert "(searched for: how did Japan respond?" in out and ">>>" in out
    assert "never read" not in out
    assert "qa: error: unknown command /bogus" in result.stderr
    assert "web modules: []" in result.stderr
    assert f"## 2. {FOLLOW_UP}" in target.read_text(encoding="utf-8")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_qa_chat_in_a_terminal_keeps_a_readline_history(engine, tmp_path):
    import select

    main, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "chat", "-k", "1"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={**_env(engine, tmp_path), "TERM": "dumb"},
        close_fds=True,
    )
    os.close(follower)
    seen = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break

    try:
        read_until(PROMPT.encode())
        os.write(main, f"{QUESTION}\r".encode())
        read_until(b"/sources")
        read_until(PROMPT.encode())
        os.write(main, b"/quit\r")
        assert proc.wait(timeout=60) == 0, seen.decode(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert b"[1]" in seen
    history = tmp_path / "cache" / "chat_history"
    assert QUESTION in history.read_text(encoding="utf-8")
