"""qa: question answering over a document corpus, with passages that cite their source.

The names a user needs are here: `open_index` opens (building if needed) an index and returns
a `QA` engine, whose `ask` returns an `Answer` of `Passage`s, each with its `Highlight`; a
`Conversation` holds the turns of a chat; `Settings` are every setting, `QAError` every error a
user can cause. All but the error and the version are imported on first use, so that `import qa`
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa._lazy import lazy_exports
from qa.errors import QAError
from qa.versions import __version__

if TYPE_CHECKING:  # for type checkers and the docs; at run time, __getattr__ imports them
    from qa.config import Settings
    from qa.conversation import Conversation
    from qa.engine import QA, open_index
    from qa.types import Answer, Document, Highlight, Passage

_EXPORTS = {
    "open_index": "qa.engine",
    "QA": "qa.engine",
    "Conversation": "qa.conversation",
    "Answer": "qa.types",
    "Passage": "qa.types",
    "Highlight": "qa.types",
    "Document": "qa.types",
    "Settings": "qa.config",
}
__all__ = [
    "QA",
    "Answer",
    "Conversation",
    "Document",
    "Highlight",
    "Passage",
    "QAError",
    "Settings",
    "__version__",
    "open_index",
]
__getattr__, _dir = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_dir()})
