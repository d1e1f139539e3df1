"""The `qa` command: parses arguments and calls the library; nothing else."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from qa import __version__
from qa.arguments import (  # noqa: F401  (the flags' home; re-exported for app.py, the tests and old callers)
    add_ask_arguments,
    add_path_arguments,
    add_serve_arguments,
    settings_from_args,
    settings_overrides,
)
from qa.config import MODES
from qa.errors import QAError
from qa.formatting import corpus_warnings, format_answer, format_passage, terminal_width  # noqa: F401  (re-exported)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", description="Question answering over a document corpus, with passages that cite their source."
    )
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="update the index from the corpus (only new or changed text is embedded)")
    add_path_arguments(p)
    p.add_argument("--rebuild", action="store_true", help="start from scratch instead of updating")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument(
        "--watch",
        action="store_true",
        help="then keep watching the corpus: update the index whenever files are added, changed or removed "
        "(once they settle; Ctrl-C stops)",
    )

    p = sub.add_parser("ask", help="ask a question; prints ranked passages with citations")
    add_path_arguments(p)
    p.add_argument("question", nargs="+", help="the question")
    add_ask_arguments(p)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")

    p = sub.add_parser(
        "chat", help="a conversation in the terminal: answers with citations, follow-ups, /sources, /open, /save"
    )
    add_path_arguments(p)
    add_ask_arguments(p)
    p.add_argument(
        "--no-context", action="store_true", help="search every question as typed (no follow-ups in context)"
    )

    p = sub.add_parser(
        "serve",
        help="the web chat, the REST API (/api/v1) and the MCP server (/mcp) on http://127.0.0.1:7860 "
        "(builds the index if there is none)",
    )
    add_path_arguments(p)
    add_serve_arguments(p)

    p = sub.add_parser("docs", help="list the indexed documents")
    add_path_arguments(p)
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser("show", help="print a document's text (the text that citation spans index)")
    add_path_arguments(p)
    p.add_argument("doc_id", help="document id or corpus-relative path (see `qa docs`)")
    p.add_argument("--span", metavar="START:END", help="print only text[START:END]")
    p.add_argument("--json", action="store_true", help="print the document and its metadata as JSON")

    p = sub.add_parser(
        "eval", help="measure retrieval on a labelled question set or a BEIR benchmark, or compare two results"
    )
    add_path_arguments(p)
    p.add_argument(
        "questions",
        nargs="*",
        metavar="QUESTIONS",
        help='question sets: a .jsonl file over the corpus (lines {"question", "answers": [...]} and/or '
        '"spans": [...]), or a folder holding questions.jsonl and its own corpus/',
    )
    p.add_argument(
        "--beir",
        metavar="DIR",
        action="append",
        help="a BEIR benchmark folder (corpus.jsonl, queries.jsonl, qrels/); repeatable",
    )
    p.add_argument(
        "--dialogues",
        metavar="FILE",
        action="append",
        help='a dialogue set: conversations asked turn by turn through the chat\'s Conversation (lines {"id", '
        '"corpus", "turns": [{"question", "answers", "kind", "document"}]}); repeatable',
    )
    p.add_argument(
        "--dialogue-corpus",
        metavar="NAME=DIR",
        action="append",
        help='with --dialogues: the question-set folder (holding corpus/) a conversation\'s "corpus": NAME means '
        "(default: squad-dev-a is ../shared/data/squad-dev-a; seed is --corpus); repeatable",
    )
    p.add_argument("--split", default="test", help="BEIR qrels split (default test; tune on train)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two results saved with --save, side by side")
    p.add_argument(
        "--mode",
        action="append",
        choices=[*MODES, "ask"],
        help="evaluate only this mode (repeatable; default all three); with --compare, the mode listed per query "
        "(ask: the answers through `ask`)",
    )
    p.add_argument(
        "--unanswerable",
        metavar="FILE",
        help="off-topic questions, one a line, that `ask` should refuse (with a question set)",
    )
    p.add_argument(
        "--withheld",
        action="store_true",
        help="also ask each question that one document alone answers of the corpus without that document, "
        "which `ask` should refuse (with a question set; local index)",
    )
    p.add_argument(
        "--no-answers",
        action="store_true",
        help="with a question set: rankings only, without asking each question through `ask`",
    )
    p.add_argument("--depth", type=int, default=1000, help="chunks retrieved per retriever (default 1000)")
    p.add_argument("--metric", default="ndcg@10", help="with --compare: the per-query metric (default ndcg@10)")
    p.add_argument(
        "--top",
        type=int,
        default=20,
        help="with --compare: changed queries listed each way (default 20; 0: the counts alone)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--save", metavar="FILE", help="keep the per-query results in FILE (JSON), for --compare")
    p.add_argument("--runs", metavar="DIR", help="write TREC run files (one per mode) and qrels to DIR")
    p.add_argument("--plot", metavar="FILE.png", help="draw Recall@k curves (with --compare: per-query changes)")
    p.add_argument(
        "--cache", metavar="DIR", help="where BEIR indexes are kept (QA_EVAL_CACHE; default ~/.cache/qa/beir)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "report", help="what readers asked and what the corpus failed them on (refused, thumbed down), by subject"
    )
    add_path_arguments(p)
    p.add_argument("--since", metavar="DATE", help="only what was asked on or after DATE (YYYY-MM-DD[THH:MM], UTC)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as one JSON object")
    output.add_argument("--csv", action="store_true", help="print one CSV row per subject")
    p.add_argument("--top", type=int, default=10, help="subjects and passages listed (default 10)")
    p.add_argument(
        "--similarity",
        type=float,
        default=None,
        help="how alike questions must be to share a subject: average cosine, 0-1 (default 0.5)",
    )
    p.add_argument(
        "--no-recheck",
        action="store_true",
        help="do not ask refused questions again of the current index (to mark those it now answers)",
    )

    p = sub.add_parser("feedback", help="readers' feedback as evaluation data (see `qa report` for a summary)")
    feedback = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = feedback.add_parser(
        "export", help="a labelled question set (qa eval's format) and an unanswerable list from readers' feedback"
    )
    add_path_arguments(p)
    p.add_argument("--questions", metavar="FILE.jsonl", help="write the questions marked as answered, with gold spans")
    p.add_argument("--unanswerable", metavar="FILE.txt", help="write the questions that found nothing (one a line)")
    p.add_argument("--since", metavar="DATE", help="only feedback from DATE on (YYYY-MM-DD[THH:MM], UTC)")
    p.add_argument(
        "--no-recheck",
        action="store_true",
        help="list every question that found nothing as unanswerable, without asking the current index again",
    )

    p = sub.add_parser("fit", help="fit one of the models the package ships, or check the shipped one")
    fit = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    p = fit.add_parser("reader", help="fine-tune the reader (answer sentences and phrases) and ship it as ONNX")
    p.add_argument("--out", metavar="DIR", default="reader-run", help="checkpoints and the log (default ./reader-run)")
    p.add_argument("--resume", action="store_true", help="carry on from the last checkpoint in --out")
    p.add_argument("--check", action="store_true", help="evaluate the shipped reader against its reader.json")
    p.add_argument("--max-minutes", type=float, metavar="N", help="stop training at a checkpoint after N minutes")
    p.add_argument("--seed", type=int, default=13, help="the seed of data order and initialisation (default 13)")
    p.add_argument("--layers", type=int, metavar="N", help="keep the base model's first N layers (default: all six)")
    p.add_argument("--ship", metavar="DIR", help="where the trained reader goes (default: the package's own)")
    p.add_argument(
        "--combine",
        action="store_true",
        help="choose how the shipped reader joins the answer models (on validation articles), write it to its "
        "reader.json and print every set's answers through ask: the cosine alone, without and with the reader",
    )
    p.add_argument("--limit", type=int, metavar="N", help="with --combine: the first N questions of each set only")
    p = fit.add_parser(
        "answers",
        help="fit the answer models (sentence scorer, passage re-ranker, relevance gate) on the tuning sets "
        "and ship them (needs scikit-learn and scipy)",
    )
    p.add_argument("--out", metavar="FILE", type=Path, help="where to write the models (default: the shipped file)")
    p.add_argument("--check", action="store_true", help="fit and compare with the shipped file; write nothing")
    p.add_argument(
        "--cache",
        metavar="DIR",
        type=Path,
        help="index cache (default: qa eval's, QA_EVAL_CACHE or ~/.cache/qa/beir)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions of each set (a quick dry run)")
    p = fit.add_parser("rerank", help="fit the hybrid re-ranker on the tuning sets and ship it")
    p.add_argument("--out", metavar="FILE", type=Path, help="where to write the model (default: the shipped file)")
    p.add_argument("--check", action="store_true", help="fit and compare with the shipped file; write nothing")
    p.add_argument(
        "--depth", type=int, metavar="N", help="chunks of the fused head to re-rank (default 20, the shipped model's)"
    )
    p = fit.add_parser(
        "feedback",
        help="refit the answer models on this index's own labelled questions (readers' feedback), on top of the "
        "shipped ones; stored beside the index and used for it only",
    )
    add_path_arguments(p)
    p.add_argument(
        "--questions", metavar="FILE.jsonl", help="a labelled question set (default: the index's own feedback export)"
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        help="share of the questions held out to measure the fit through ask, before and after (default 0.3; "
        "0: fit on all without figures)",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed of the held-out split and the folds (default 0)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(fitting="feedback")  # its --model (the embedding model) takes the place of `qa fit`'s MODEL
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted; the previous index is untouched", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _open(args: argparse.Namespace, build: bool = True):
    from qa.engine import open_index

    return open_index(settings=settings_from_args(args), build=build, progress=sys.stderr.isatty())


def cmd_index(args: argparse.Namespace) -> int:
    from qa.ingest.indexer import update_index

    progress = not args.quiet and sys.stderr.isatty()
    settings = settings_from_args(args)
    report = update_index(settings, rebuild=args.rebuild, progress=progress)
    print_report(report, args.json)
    if args.watch:
        from qa.ingest.watch import CorpusWatcher

        def failed(exc: Exception) -> None:
            print(f"qa: error: {exc}", file=sys.stderr, flush=True)

        print(f"qa: watching {settings.corpus_dir} (Ctrl-C stops)", file=sys.stderr, flush=True)
        CorpusWatcher(settings, lambda r: print_report(r, args.json), failed).run(initial=False)
    return 0


def print_report(report, as_json: bool = False) -> None:
    """`qa index`'s report: a line per file and a summary, or one JSON object."""
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), flush=True)
        return
    for label, items in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
        ("unchanged", report.unchanged),
    ):
        for source in items:
            print(f"{label:9}  {source}")
    for item in report.failed:
        print(f"{'failed':9}  {item['path']}: {item['reason']}")
    for note in report.notes:
        print(f"note: {note}")
    print(
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed; "
        f"{report.chunks_embedded} chunks embedded, {report.chunks_total} in the index "
        f"({report.documents_total} documents); {report.seconds:.1f} s",
        flush=True,
    )


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _open(args)
    question = " ".join(args.question)
    answer = engine.ask(
        question, k=args.k, mode=args.mode, doc=args.doc, author=args.author, date_from=args.since, date_to=args.until
    )
    warn_about_corpus(engine)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(format_answer(answer, bold=sys.stdout.isatty()))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from qa.chat import TerminalChat, use_color

    engine = _open(args)
    warn_about_corpus(engine)
    options = {
        "k": args.k,
        "mode": args.mode,
        "doc": args.doc,
        "author": args.author,
        "date_from": args.since,
        "date_to": args.until,
        "use_context": not args.no_context,
    }
    chat = TerminalChat(engine, options, color=use_color(sys.stdout), width=min(100, terminal_width()))
    return chat.run(sys.stdin)


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.web.server import serve

    return serve(args)


def cmd_docs(args: argparse.Namespace) -> int:
    engine = _open(args)
    docs = engine.documents()
    failed = engine.corpus_status().failed
    if args.json:
        print(json.dumps({"documents": [d.to_dict() for d in docs], "failed": failed}, ensure_ascii=False, indent=2))
        return 0
    for d in docs:
        print(
            f"{d.doc_id}\n    {d.title} — {d.author or 'author unknown'}"
            f"{' — ' + d.date if d.date else ''}\n    {d.source}: {d.chunks} chunks, {d.chars} characters"
        )
    print(f"{len(docs)} documents")
    if failed:
        print(f"\n{len(failed)} corpus file(s) could not be read, so the index lacks their content:")
        for item in failed:
            print(f"    {item['path']}: {item['reason']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    doc = _open(args).document(args.doc_id)
    text = doc.text
    if args.span:
        try:
            start, end = (int(x) for x in args.span.split(":", 1))
        except ValueError:
            raise QAError(f"--span takes START:END, two numbers (got {args.span!r})") from None
        if not 0 <= start <= end <= len(text):
            raise QAError(f"--span {start}:{end} is outside the document (0:{len(text)})")
        text = text[start:end]
    if args.json:
        print(json.dumps({**doc.metadata(), "text": text}, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa import evaluation as evaluation
    from qa.evaluation.plots import plot_comparison, plot_recall

    if args.compare:
        if args.questions or args.beir or args.dialogues:
            raise QAError("give question sets, --beir folders and --dialogues, or --compare A B, not both")
        if args.save or args.runs:
            raise QAError("--save and --runs go with an evaluation, not with --compare")
        if args.top < 0:
            raise QAError(f"--top must be 0 (the counts alone) or more (got {args.top})")
        a, b = (evaluation.load_saved(path) for path in args.compare)
        comparison = evaluation.compare(a, b, args.metric, (args.mode or ["hybrid"])[0])
        if args.plot:
            print(f"wrote {plot_comparison(comparison, args.plot)}", file=sys.stderr)
        output = comparison.to_dict() if args.json else evaluation.format_comparison(comparison, args.top)
        print(json.dumps(output, ensure_ascii=False, indent=2) if args.json else output)
        return 0
    if not args.questions and not args.beir and not args.dialogues:
        raise QAError(
            "give one of: question sets (QUESTIONS.jsonl, or a folder), --beir DIR, --dialogues FILE, or --compare A B"
        )
    if args.depth < 1:
        raise QAError("--depth must be at least 1 (several hundred for document-level Recall@100)")
    collections = evaluation.collections_from(args.beir or [], args.questions)  # bad lines fail before any model
    dialogue_sets = {Path(path).name: evaluation.load_dialogues(path) for path in args.dialogues or []}
    if len(dialogue_sets) < len(args.dialogues or []):
        raise QAError("two dialogue sets have the same file name: results are told apart by name")
    folders = evaluation.corpus_folders(args.dialogue_corpus or [])
    evaluation.check_corpora(dialogue_sets, folders)
    if args.dialogue_corpus and not args.dialogues:
        raise QAError("--dialogue-corpus goes with --dialogues")
    if not collections:  # dialogue sets alone
        for flag in ("save", "runs", "plot", "mode", "unanswerable", "withheld", "no_answers"):
            if getattr(args, flag):
                flag = "--" + flag.replace("_", "-")
                raise QAError(f"{flag} goes with question sets or --beir, not with --dialogues alone")
    progress = not args.quiet and sys.stderr.isatty()
    if args.mode and "ask" in args.mode:
        raise QAError("--mode ask goes with --compare; question sets are asked through `ask` unless --no-answers")
    modes = args.mode or ["lexical", "dense", "hybrid"]
    for given, flag in ((args.unanswerable, "--unanswerable"), (args.withheld, "--withheld")):
        if given and args.no_answers:
            raise QAError(f"{flag} needs the answers through `ask`: leave out --no-answers")
        if given and collections and all(c.kind == "beir" for c in collections):
            raise QAError(f"{flag} goes with a question set, not with --beir")
    offtopic = evaluation.read_unanswerable(args.unanswerable) if args.unanswerable else []
    answers = {
        "answers": not args.no_answers,
        "unanswerable": offtopic,
        "unanswerable_name": Path(args.unanswerable).name if args.unanswerable else "",
        "withheld": args.withheld,
    }
    cache = Path(args.cache).expanduser() if args.cache else None
    settings = settings_from_args(args)
    if args.withheld and settings.store != "local":
        raise QAError("--withheld copies a local index without each document in turn: use --store local")
    from qa.embedding.models import load_embedder

    embedder = load_embedder(settings.model, settings.backend)
    results = []
    for collection in collections:
        if collection.kind == "beir":
            result = evaluation.evaluate_beir(
                collection.path, settings, args.split, modes, args.depth, cache, progress, embedder
            )
        elif collection.kind == "folder":
            result = evaluation.evaluate_question_folder(
                collection, settings, modes, args.depth, cache, progress, embedder, **answers
            )
        else:
            from qa.engine import open_index

            engine = open_index(settings=settings, build=True, progress=progress, embedder=embedder)
            warn_about_corpus(engine)
            result = evaluation.evaluate_questions(
                engine, collection.questions, collection.name, modes, args.depth, progress, **answers
            )
        results.append(result)
    dialogue_results = evaluation.run_dialogue_sets(dialogue_sets, settings, folders, cache, progress, embedder)
    if args.save:
        for result, path in zip(results, evaluation.output_paths(args.save, results)):
            evaluation.save_evaluation(result, path)
            print(f"wrote {path}", file=sys.stderr)
    if args.runs:
        for result in results:
            for path in evaluation.write_runs(result, args.runs):
                print(f"wrote {path}", file=sys.stderr)
    if args.plot:
        for result, path in zip(results, evaluation.output_paths(args.plot, results)):
            print(f"wrote {plot_recall(result.curves, path, f'{result.dataset}: Recall@k')}", file=sys.stderr)
    if args.json:
        summaries = [result.summary() for result in results]
        dialogues = [result.summary() for result in dialogue_results]
        seconds = round(sum(r.seconds for r in [*results, *dialogue_results]), 2)
        if len(summaries) + len(dialogues) == 1:
            output = (summaries or dialogues)[0]
        elif not dialogues:
            output = {"evaluations": summaries, "seconds": seconds}
        else:
            output = {"evaluations": summaries, "dialogues": dialogues, "seconds": seconds}
        print(json.dumps(output, ensure_ascii=False, indent=2))
    else:
        tables = [evaluation.format_evaluations(results)] if results else []
        tables += [evaluation.format_dialogues(result) for result in dialogue_results]
        print("\n\n".join(tables))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from qa.evaluation import usage
    from qa.feedback import answers_now
    from qa.storage.feedback import check_since

    since = check_since(args.since)
    similarity = usage.DEFAULT_SIMILARITY if args.similarity is None else args.similarity
    if not 0.0 < similarity <= 1.0:
        raise QAError(f"--similarity must be above 0 and at most 1 (got {similarity:g})")
    if args.top < 1:
        raise QAError("--top must be at least 1")
    engine = _open(args, build=False)
    if engine.feedback is None:
        raise QAError("feedback is switched off (QA_FEEDBACK=off): nothing is recorded to report on")
    report = usage.build_report(
        engine.feedback.records(since=since),
        engine.embedder.encode,
        current_version=engine.reader.name,
        answers_now=None if args.no_recheck else functools.partial(answers_now, engine),
        since=since,
        similarity=similarity,
    )
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    elif args.csv:
        sys.stdout.write(usage.report_csv(report))
    else:
        print(usage.format_report(report, args.top))
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from qa.evaluation.labelled import export_feedback, write_export
    from qa.feedback import answers_now
    from qa.storage.feedback import check_since

    since = check_since(args.since)
    if not args.questions and not args.unanswerable:
        raise QAError("give --questions FILE.jsonl, --unanswerable FILE.txt, or both")
    engine = _open(args, build=False)
    if engine.feedback is None:
        raise QAError("feedback is switched off (QA_FEEDBACK=off): nothing is recorded to export")

    def doc_length(doc_id: str) -> int | None:
        try:
            return len(engine.document(doc_id).text)
        except QAError:
            return None

    recheck = None if args.no_recheck else functools.partial(answers_now, engine)
    export = export_feedback(engine.feedback.records(since=since), doc_length, recheck)
    write_export(export, args.questions, args.unanswerable)
    for line in export.dropped:
        print(f"note: {line}", file=sys.stderr)
    if args.questions:
        count = len(export.lines)
        print(f"{count} labelled question{'s' if count != 1 else ''} written to {args.questions}")
    if args.unanswerable:
        count = len(export.unanswerable)
        print(f"{count} unanswerable question{'s' if count != 1 else ''} written to {args.unanswerable}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    if getattr(args, "fitting", "") == "feedback":  # first: its --model is the embedding model
        from qa.training.feedback import main_feedback

        engine = _open(args, build=False)
        return main_feedback(engine, args.questions, args.holdout, args.seed, args.json)
    if args.model == "answers":
        from qa.training.answers import main_fit as fit_answers

        return fit_answers(args.out, args.check, args.cache, args.limit)
    if args.model == "rerank":
        from qa.training.rerank import main_fit as fit_rerank

        return fit_rerank(args.out, args.check, args.depth)
    if args.combine:
        from qa.training.combination import main_combine

        return main_combine(limit=args.limit)
    from qa.training.reader import main_fit

    return main_fit(Path(args.out), args.resume, args.max_minutes, args.seed, args.check, args.layers, args.ship)


def warn_about_corpus(engine) -> None:
    """Say (once per run) what the index lacks, on stderr."""
    for line in corpus_warnings(engine.corpus_status()):
        print(f"qa: {line}", file=sys.stderr)


COMMANDS = {
    "index": cmd_index,
    "ask": cmd_ask,
    "docs": cmd_docs,
    "show": cmd_show,
    "eval": cmd_eval,
    "serve": cmd_serve,
    "chat": cmd_chat,
    "fit": cmd_fit,
    "report": cmd_report,
    "feedback": cmd_feedback,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
