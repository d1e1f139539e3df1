"""What answering a question must not import, and where a process's import time goes.

`tests/test_answer_imports.py` holds `qa ask` to the list; `python -m bench.run --only cold`
reports what of it a cold `qa ask` imported, beside the time each top-level import took.
"""

from __future__ import annotations

# What answering a question must not import (each costs 0.1-5 s): the web UI, torch and what comes
# with it, scipy (bm25s imports it: searching reads bm25s's saved arrays with numpy instead).
FORBIDDEN_ON_ANSWER = (
    "gradio",
    "qa.web.app",
    "torch",
    "transformers",
    "sentence_transformers",
    "scipy",
    "bm25s",
    "langchain_core",
    "langchain_text_splitters",
    "matplotlib",
    "pandas",
)


def forbidden_on_answer(module: str, among: str | tuple[str, ...] = FORBIDDEN_ON_ANSWER) -> bool:
    """True if module is one of `among` (by default FORBIDDEN_ON_ANSWER) or inside one."""
    names = (among,) if isinstance(among, str) else among
    return any(module == name or module.startswith(name + ".") for name in names)


def parse_importtime(stderr: str) -> list[tuple[str, float, int]]:
    """(module, cumulative ms, depth) of every import in `python -X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), int(cumulative) / 1000, depth))
    return rows
