"""The flags every interface shares (paths and model, the web server's, asking's), and Settings
from them. The `qa` command, `app.py` and the web server all build their parsers from here, so no
interface imports another for its flags."""

from __future__ import annotations

import argparse

from qa.config import MODES


def add_declared_arguments(group: argparse._ArgumentGroup, declarations: type) -> None:
    """A flag for each field of a qa.config declarations class that declares one, with its help,
    choices and type from the declaration, and its variable and default in the help."""
    from dataclasses import fields

    for f in fields(declarations):
        declared = f.metadata
        if not declared["flag"]:
            continue
        shown = declared["shown_default"] or (str(f.default) if f.default not in (None, "") else None)
        note = declared["note"] or (f"default {shown}" if shown else None)
        where = f"{declared['env']}; {note}" if note else declared["env"]
        extra: dict = (
            {"choices": list(declared["choices"])} if declared["choices"] else {"metavar": declared["metavar"]}
        )
        if f.type in ("int", "float"):
            extra["type"] = int if f.type == "int" else float
        group.add_argument(declared["flag"], help=f"{declared['flag_help']} ({where})", **extra)


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the settings that declare one (qa.config: --corpus, --index, --model, --backend,
    --chunk-context, --store and --dsn), shared by every command and app.py."""
    from qa.config import Settings

    add_declared_arguments(parser.add_argument_group("paths and model"), Settings)


def add_serve_arguments(parser: argparse.ArgumentParser, paths: bool = False) -> None:
    """The web server's flags (`qa serve`, `python app.py`); with paths, also the path and model flags."""
    from qa import config

    if paths:
        add_path_arguments(parser)
    group = parser.add_argument_group("web server")
    add_declared_arguments(group, config.ServeSettings)
    group.add_argument(
        "--concurrency",
        type=int,
        default=config.DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"questions answered at once (default {config.DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--watch",
        action="store_true",
        help="update the index whenever files in the corpus are added, changed or removed (once they settle)",
    )


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    """-k, --mode and the filters (shared by `qa ask` and `qa chat`)."""
    parser.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    parser.add_argument("--mode", choices=list(MODES), default="hybrid", help="retrieval mode (default hybrid)")
    parser.add_argument("--doc", action="append", metavar="DOC_ID", help="only this document (repeatable)")
    parser.add_argument("--author", help="only documents whose author contains this text")
    parser.add_argument("--since", metavar="DATE", help="only documents dated on or after DATE (YYYY[-MM[-DD]])")
    parser.add_argument("--until", metavar="DATE", help="only documents dated on or before DATE")


def settings_from_args(args: argparse.Namespace):
    """Settings from the defaults, QA_* variables and the flags of add_path_arguments."""
    from qa.config import Settings

    return Settings.from_env(**settings_overrides(args))


def settings_overrides(args: argparse.Namespace) -> dict:
    """The settings given as flags (see add_path_arguments); None where a flag was not given."""
    from qa.config import FLAGS

    return {name: getattr(args, flag.lstrip("-").replace("-", "_"), None) for name, flag in FLAGS.items()}
