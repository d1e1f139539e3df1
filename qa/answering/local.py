"""A corpus's own correction of the answer models (`qa fit feedback`), kept beside its index.

`qa fit feedback` refits the sentence scorer and the passage model on the corpus's labelled
questions (readers' feedback), pulled towards the shipped weights (qa.training.feedback). The
result is `local-models.json` in the index folder, outside `snapshots/` like `feedback.sqlite`:
an update or a rebuild leaves it alone, since the features it weighs are the same whatever
snapshot computes them. It is used for that index only, and only while it fits: it records a
hash of the shipped models file it was fitted over and the embedding model of the index, and is
ignored, with a warning that says which command fixes it, when either changed or the file cannot
be read. The relevance gate keeps judging the shipped models' scores (its threshold was chosen on
them), so a correction reorders passages and sentences but never refuses more questions.
QA_LOCAL_MODELS=off answers with the shipped models alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qa.answering.features import PASSAGE_FEATURES, SENTENCE_FEATURES
from qa.answering.scorer import AnswerModels
from qa.errors import QAError
from qa.linear import LinearModel

log = logging.getLogger("qa")

FILE_NAME = "local-models.json"
FORMAT = 1
REFIT = "qa fit feedback"


def shipped_hash(path: Path) -> str:
    """What identifies the shipped models file a correction was fitted over."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


@dataclass(frozen=True)
class LocalModels:
    """The corrected sentence and passage models (None: that one stays the shipped)."""

    sentence: LinearModel | None
    passage: LinearModel | None
    shipped: str  # shipped_hash of the models file it was fitted over
    model: str  # the index's embedding model (its manifest's cache key)
    meta: dict = field(default_factory=dict)  # what it was fitted on, and how well it did

    def over(self, shipped: AnswerModels) -> AnswerModels:
        """The shipped models with this correction's sentence and passage models in their place."""
        return dataclasses.replace(
            shipped, sentence=self.sentence or shipped.sentence, passage=self.passage or shipped.passage
        )

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "shipped_models": self.shipped,
            "embedding_model": self.model,
            "sentence": self.sentence.to_dict() if self.sentence else None,
            "passage": self.passage.to_dict() if self.passage else None,
            "fitted_on": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str) -> LocalModels:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise QAError(f"{source} is not a format-{FORMAT} local models file")

        def model(key: str, features) -> LinearModel | None:
            if data.get(key) is None:
                return None
            return LinearModel.from_dict(data[key], features, key, source, REFIT)

        return cls(
            model("sentence", SENTENCE_FEATURES),
            model("passage", PASSAGE_FEATURES),
            str(data["shipped_models"]),
            str(data["embedding_model"]),
            dict(data.get("fitted_on", {})),
        )


def local_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / FILE_NAME


def write_local(models: LocalModels, path: Path) -> Path:
    """Write atomically (a server may be reading the file), so it is never seen half written."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(models.to_dict(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise QAError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def read_local(path: Path, shipped_file: Path, model: str) -> LocalModels:
    """The correction in `path` if it is readable and fits these shipped models and this index; QAError says why not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        local = LocalModels.from_dict(data, str(path))
    except QAError as exc:
        raise QAError(f"{exc}; run `{REFIT}` again, or delete the file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QAError(f"cannot read {path} ({exc}); run `{REFIT}` again, or delete the file") from None
    if local.shipped != shipped_hash(shipped_file):
        raise QAError(
            f"{path} was fitted over other answer models than this version of qa ships ({shipped_file.name}); "
            f"run `{REFIT}` to fit it again over these"
        )
    if local.model != model:
        raise QAError(
            f"{path} was fitted on an index embedded with {local.model}, not {model}; run `{REFIT}` to fit it again"
        )
    return local


class LocalFile:
    """An index's local-models.json as the engine uses it: read again when the file changes
    (`qa fit feedback` while a server runs), and a problem warned of once per version of the file."""

    def __init__(self, path: Path, shipped_file: Path, model: str) -> None:
        self.path, self.shipped_file, self.model = path, shipped_file, model
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._models: LocalModels | None = None
        self.problem = ""  # why the file there is not used ("" when it is, or there is none)

    def current(self) -> LocalModels | None:
        try:
            stat, shipped = self.path.stat(), self.shipped_file.stat()
            key: tuple = (stat.st_mtime_ns, stat.st_size, shipped.st_mtime_ns, shipped.st_size)
        except OSError:
            key = ()
        with self._lock:
            if key != self._seen:
                self._seen, self._models, self.problem = key, None, ""
                if key:
                    try:
                        self._models = read_local(self.path, self.shipped_file, self.model)
                    except QAError as exc:
                        self.problem = str(exc)
                        log.warning("the corpus's own answer models are not used (the shipped ones are): %s", exc)
            return self._models
