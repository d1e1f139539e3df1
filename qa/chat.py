"""`qa chat`: a conversation with the corpus in the terminal.

The same answers, citations and follow-ups as the web chat (both hold a
`qa.conversation.Conversation`), with readline editing and history, and commands:
/sources (the last answer's passages in full), /open N (passage N in its document),
/save FILE (the conversation as Markdown), /good, /bad, /answered N (feedback on the last
answer, kept with the index unless QA_FEEDBACK=off), /new, /help, /quit. No web module is imported.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from qa.answering.transcript import to_markdown
from qa.conversation import Conversation
from qa.errors import QAError
from qa.feedback import record_asked, record_verdict
from qa.formatting import answer_text

if TYPE_CHECKING:
    from qa.engine import QA
    from qa.types import Answer, Passage

PROMPT = "qa> "
HISTORY_LINES = 1000
# Characters of the document shown around a cited span by /open, at most, on each side.
OPEN_CONTEXT_CHARS = 400
HELP = """\
Ask a question in plain words; a short follow-up ("and how did Japan respond?") is read in the
conversation's context. Commands:
  /more         the further sentences the last answer left out
  /sources      the last answer's passages in full, with their best sentences
  /open N       passage N of the last answer, in its document
  /save FILE    the conversation as Markdown (answers, markers, cited passages); /save! FILE replaces FILE
  /good, /bad   the last answer was right / wrong (kept as feedback for the corpus's analysts)
  /answered N   passage N of the last answer answered the question
  /new          start a new conversation
  /help         this text
  /quit         leave (or Ctrl-D)"""


class TerminalChat:
    """One terminal conversation: `handle` takes a typed line and prints the reply."""

    def __init__(
        self,
        engine: QA,
        options: dict[str, Any] | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        color: bool = False,
        width: int = 100,
    ) -> None:
        self.engine = engine
        self.options = dict(options or {})
        self.use_context = self.options.pop("use_context", True)
        self.out, self.err = out, err
        self.color = color
        self.width = width
        self.conversation = Conversation()
        self._hinted = False

    # -- one line -------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Answer a question or run a command; False when the chat should end."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            self.ask(line)
            return True
        command, _, argument = line.partition(" ")
        command, argument = command.lower(), argument.strip()
        if command in ("/quit", "/exit", "/q"):
            return False
        actions: dict[str, Callable[[str], None]] = {
            "/help": lambda _: self.say(HELP),
            "/more": self.more,
            "/sources": self.sources,
            "/open": self.open,
            "/save": lambda arg: self.save(arg, replace=False),
            "/save!": lambda arg: self.save(arg, replace=True),
            "/new": self.new,
            "/good": lambda arg: self.verdict("good", arg),
            "/bad": lambda arg: self.verdict("bad", arg),
            "/answered": lambda arg: self.verdict("answered", arg),
        }
        action = actions.get(command)
        if action is None:
            self.error(f"unknown command {command}; /help lists the commands")
            return True
        try:
            action(argument)
        except QAError as exc:
            self.error(str(exc))
        return True

    def ask(self, question: str) -> Answer | None:
        try:
            answer = self.conversation.ask(self.engine, question, use_context=self.use_context, **self.options)
        except QAError as exc:
            self.error(str(exc))
            return None
        record_asked(self.engine, self.conversation, "chat")
        self.say(self.format_reply(answer))
        return answer

    def verdict(self, verdict: str, argument: str) -> None:
        """/good, /bad, /answered N: the reader's verdict on the last answer, recorded."""
        if not self.conversation.turns:
            raise QAError(f"nothing to rate yet: ask a question first, then /{verdict}")
        rank = None
        if verdict == "answered":
            if not argument.isdigit():
                raise QAError("/answered needs the number of the passage that answered it, e.g. /answered 2")
            rank = int(argument)
        elif argument:
            raise QAError(f"/{verdict} takes nothing after it")
        record_verdict(self.engine, self.conversation, len(self.conversation.turns), verdict, rank, "chat")
        said = {"good": "a good answer", "bad": "a wrong answer", "answered": f"passage {rank} answered it"}[verdict]
        self.say(f"(noted: {said}; thank you)")

    # -- commands ---------------------------------------------------------------------------
    def more(self, argument: str = "") -> None:
        """/more: the sentences that bear on the last question beyond its short answer."""
        answer = self._last_answer()
        if not answer.more:
            self.say("(nothing more: the short answer holds every sentence that bears on it)")
            return
        self.say(textwrap.fill(answer.more, self.width, break_on_hyphens=False, break_long_words=False))

    def sources(self, argument: str = "") -> None:
        from qa.formatting import format_passage

        answer = self._last_answer()
        self.say("\n\n".join(format_passage(p, self.width) for p in answer.passages))

    def open(self, argument: str) -> None:
        passage = self._passage(argument)
        doc = self.engine.document(passage.doc_id)
        text = doc.text
        lo = _context_start(text, passage.start)
        hi = _context_end(text, passage.end)
        before = ("… " if lo > 0 else "") + text[lo : passage.start]
        after = text[passage.end : hi] + (" …" if hi < len(text) else "")
        span = self._mark(text[passage.start : passage.end], passage)
        page = f", {passage.where}" if passage.where else ""
        body = "\n".join(
            textwrap.fill(line, self.width) if line.strip() else "" for line in f"{before}{span}{after}".split("\n")
        )
        where = textwrap.fill(
            f"{doc.source}{page}: characters {passage.start}–{passage.end} of {len(text)} "
            f"(the whole text: qa show {doc.doc_id})",
            self.width,
            break_on_hyphens=False,
        )
        self.say(
            f"[{passage.rank}] {doc.title or doc.source} — {doc.author or 'author unknown'}"
            f"{' (' + doc.date + ')' if doc.date else ''}\n{where}\n\n{body}"
        )

    def save(self, argument: str, replace: bool = False) -> None:
        if not argument:
            raise QAError("/save needs a file name, e.g. /save chat.md")
        if not self.conversation.answered:
            raise QAError("nothing to save yet: ask a question first")
        path = Path(argument).expanduser()
        if path.is_dir():
            raise QAError(f"{path} is a folder; give a file name, e.g. /save {path / 'chat.md'}")
        if path.exists() and not replace:
            raise QAError(f"{path} exists: choose another name, or /save! {argument} to replace it")
        if not path.parent.is_dir():
            raise QAError(f"there is no folder {path.parent}")
        text = to_markdown(self.conversation.answered, self.engine.stats())
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            staged.write_text(text, encoding="utf-8")
            os.replace(staged, path)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise QAError(f"cannot write {path}: {exc.strerror or exc}") from None
        count = len(self.conversation.answered)
        self.say(f"saved {count} answer{'s' if count != 1 else ''} with their cited passages to {path}")

    def new(self, argument: str = "") -> None:
        self.conversation = Conversation()
        self.say("(a new conversation: follow-ups start afresh)")

    # -- output ---------------------------------------------------------------------------
    def format_reply(self, answer: Answer) -> str:
        lines = [answer_text(answer, self.width, self.color)]
        lines += [f"(note: {note})" for note in answer.notes]
        if answer.searched_query:
            lines.append(textwrap.fill(f"(searched for: {answer.searched_query})", self.width))
        if answer.passages:
            lines.append("")
        for p in answer.passages:
            author = p.author or "author unknown"
            page = f", {p.where}" if p.where else ""
            lines.append(
                textwrap.fill(
                    f"[{p.rank}] {p.title or p.source} — {author}{' (' + p.date + ')' if p.date else ''} · "
                    f"{p.source}{page}, characters {p.start}–{p.end}",
                    self.width,
                    initial_indent="  ",
                    subsequent_indent="      ",
                )
            )
        if answer.passages and not self._hinted:
            self._hinted = True
            lines += ["", "(/more: more from the sources · /sources: the passages in full · /open N · /help)"]
        return "\n".join(lines)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(f"qa: error: {text}", file=self.err, flush=True)

    def _mark(self, span: str, passage: Passage) -> str:
        """The cited span set off from its context (bold in a colour terminal; the best sentence underlined)."""
        if not self.color:
            return f">>>{span}<<<"
        start = passage.highlight.start - passage.start
        end = passage.highlight.end - passage.start
        if 0 <= start < end <= len(span):
            span = f"{span[:start]}\x1b[4m{span[start:end]}\x1b[24m{span[end:]}"
        return f"\x1b[1m{span}\x1b[22m"

    def _last_answer(self) -> Answer:
        answered = self.conversation.answered
        if not answered or answered[-1].answer is None or not answered[-1].answer.passages:
            raise QAError("no passages yet: ask a question first" if not answered else "the last answer cites nothing")
        return answered[-1].answer

    def _passage(self, argument: str) -> Passage:
        answer = self._last_answer()
        count = len(answer.passages)
        if not argument.isdigit() or not 1 <= int(argument) <= count:
            raise QAError(f"/open takes a passage number of the last answer, 1 to {count} (got {argument!r})")
        return answer.passages[int(argument) - 1]

    # -- the loop -------------------------------------------------------------------------
    def run(self, stdin: TextIO = sys.stdin) -> int:
        """Read lines until /quit or end of input; with a terminal, readline edits and remembers them."""
        interactive = stdin.isatty()
        history = _enable_readline() if interactive else None
        stats = self.engine.stats()
        self.say(
            f"qa chat: {stats['documents']} documents, {stats['chunks']} passages (model {stats['model']}). "
            "Ask a question; /help for the commands, /quit to leave."
        )
        try:
            while True:
                try:
                    if interactive:
                        line = input(PROMPT)
                    else:
                        line = stdin.readline()
                        if not line:
                            break
                        line = line.rstrip("\n")
                        self.say(PROMPT + line)
                except EOFError:
                    self.say("")
                    break
                except KeyboardInterrupt:  # Ctrl-C at the prompt drops the line, as in a shell
                    self.say("")
                    continue
                try:
                    if not self.handle(line):
                        break
                except KeyboardInterrupt:
                    self.say("(interrupted)")
        finally:
            if history is not None:
                history()
        return 0


def _context_start(text: str, offset: int) -> int:
    """Where /open's context before `offset` starts: a paragraph, line or word start, near enough."""
    floor = max(0, offset - OPEN_CONTEXT_CHARS)
    if floor == 0:
        return 0
    for separator in ("\n\n", "\n", " "):
        cut = text.find(separator, floor, offset)
        if cut >= 0:
            return cut + len(separator)
    return floor


def _context_end(text: str, offset: int) -> int:
    ceiling = min(len(text), offset + OPEN_CONTEXT_CHARS)
    if ceiling == len(text):
        return ceiling
    for separator in ("\n\n", "\n", " "):
        cut = text.rfind(separator, offset, ceiling)
        if cut >= 0:
            return cut
    return ceiling


def history_file() -> Path:
    from qa.embedding.onnx import default_cache_dir

    return default_cache_dir() / "chat_history"


def _enable_readline() -> Callable[[], None] | None:
    """Line editing and a persistent history; a function that saves the history, or None."""
    try:
        import readline
    except ImportError:  # not on every platform; input() still works
        return None
    path = history_file()
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(HISTORY_LINES)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError as exc:
            print(f"qa: note: the chat history was not saved ({exc.strerror or exc})", file=sys.stderr)

    return save


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
