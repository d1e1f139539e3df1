"""An ONNX Runtime embedder: the same sentence-transformers model, exported once, optionally int8.

Encoding needs only onnxruntime and tokenizers, so a question is answered without importing
torch. The export (torch.onnx, then onnxruntime's dynamic quantisation) runs once per model and
is kept in the cache folder. sentence-transformers' own ONNX backend needs optimum, whose
current release pins older transformers; this route keeps the installed versions.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embedding.models import _model_identity, _read_json, _resolve_model_path, pool_spans
from qa.errors import QAError

BACKENDS = ("torch", "onnx", "onnx-int8")
EXPORT_VERSION = 1


class OnnxEmbedder:
    def __init__(self, name: str, quantized: bool = True, cache_dir: Path | None = None) -> None:
        self.name = name
        self.quantized = quantized
        self.path = _resolve_model_path(name)
        if self.path is None:
            raise QAError(
                f"the ONNX backend needs a local model folder; '{name}' is not one "
                f"(use QA_BACKEND=torch for models in the Hugging Face cache)"
            )
        identity = _model_identity(name, self.path)
        backend = "onnx-int8" if quantized else "onnx"
        self.cache_key = f"{backend}:{identity}"
        config = _read_json(self.path / "sentence_bert_config.json")
        self.max_tokens = int(config.get("max_seq_length") or 512)
        self._pooling, self._normalize, self._dim = _pooling_of(self.path)
        root = Path(cache_dir or default_cache_dir()) / "onnx"
        self.export_dir = root / identity.replace("/", "__").replace("@", "_")
        self._session = None
        self._lock = threading.Lock()
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0)

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text).ids)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._run(texts, None, batch_size)[0]

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of texts and, from the same forward pass, of character spans of each (late chunking)."""
        return self._run(texts, spans, batch_size)

    def _run(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self._dim), np.float32)] * len(texts)
        if not texts:
            return out, pooled
        session, names = self._loaded()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
            hidden = session.run(None, feed)[0]
            if self._pooling == "cls":
                vectors = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                vectors = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
            if self._normalize:
                vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            out[rows] = vectors
            if spans is not None:
                for j, row in enumerate(rows):
                    offsets = np.array(encodings[j].offsets, dtype=np.int64).reshape(-1, 2)
                    pooled[row] = pool_spans(hidden[j], offsets, mask[j], spans[row])
        return out, pooled

    def _loaded(self):
        with self._lock:
            if self._session is None:
                file = ensure_export(self.path, self.export_dir, self.quantized)
                # Two threads: more is slower on this class of machine (RETRIEVAL-NOTES).
                self._session = open_session(file, threads=min(2, os.cpu_count() or 1))
                self._names = {i.name for i in self._session.get_inputs()}
            return self._session, self._names


def open_session(file: Path, threads: int):
    """An ONNX Runtime session for the model file, its graph optimised once and kept beside it.

    Optimising the graph is about a third of opening a session (40 ms of CPU for MiniLM int8, on
    every cold `qa ask`): the optimised graph is saved, per onnxruntime version (its fused
    operators belong to that version), and opened as it is afterwards.
    """
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    optimized = file.with_name(f"{file.stem}.optimized-ort{ort.__version__}.onnx")
    if optimized.exists():
        try:
            options = _session_options(ort, threads, level.ORT_DISABLE_ALL)
            return ort.InferenceSession(str(optimized), options, providers=["CPUExecutionProvider"])
        except Exception:  # damaged or unreadable: optimise the original again
            with contextlib.suppress(OSError):
                optimized.unlink()
    # Extended, not all: the layout optimisations beyond it depend on the CPU, and the cache may be shared.
    options = _session_options(ort, threads, level.ORT_ENABLE_EXTENDED)
    partial = optimized.with_name(f"{optimized.name}.{os.getpid()}.partial")
    options.optimized_model_filepath = str(partial)
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    with contextlib.suppress(OSError):  # read-only cache, or another process won the race: fine
        os.replace(partial, optimized)
    with contextlib.suppress(OSError):
        partial.unlink()
    return session


def _session_options(ort, threads: int, level):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.graph_optimization_level = level
    return options


def default_cache_dir() -> Path:
    return Path(os.environ.get("QA_CACHE_DIR") or Path.home() / ".cache" / "qa")


def ensure_export(model_path: Path, export_dir: Path, quantized: bool) -> Path:
    """The exported (and quantised) model file, exporting it first if needed (once, under a lock)."""
    target = export_dir / ("model-int8.onnx" if quantized else "model.onnx")
    meta = export_dir / "export.json"
    if target.exists() and _read_json(meta).get("version") == EXPORT_VERSION:
        return target
    export_dir.mkdir(parents=True, exist_ok=True)
    with open(export_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent process waits, then finds the files
        if target.exists() and _read_json(meta).get("version") == EXPORT_VERSION:
            return target
        print(f"exporting {model_path.name} to ONNX (once) in {export_dir}…", file=sys.stderr)
        started = time.perf_counter()
        fp32 = export_dir / "model.onnx"
        _export(model_path, fp32)
        _quantize(fp32, export_dir / "model-int8.onnx")
        meta.write_text(
            json.dumps(
                {
                    "version": EXPORT_VERSION,
                    "model": str(model_path),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            ),
            encoding="utf-8",
        )
    return target


def _export(model_path: Path, target: Path) -> None:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise QAError(
            f"exporting the model to ONNX needs torch and transformers ({exc}); "
            f"run `pip install -e .`, or use QA_BACKEND=torch"
        ) from None
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError:
        raise QAError("exporting the model to ONNX needs the onnx package: `pip install onnx`") from None
    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(model_path)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    sample = tokenizer(["an example", "a slightly longer example sentence"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "tokens"}
    partial = target.with_suffix(".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter handles dynamic batch and length without extra packages.
        torch.onnx.export(
            Encoder(model),
            tuple(sample[n] for n in names),
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)


def _quantize(source: Path, target: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(".partial")
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        # MatMul weights only, per channel: mean cosine 0.993 to the fp32 model on the corpus,
        # where quantising everything (embedding tables included) gave 0.944.
        quantize_dynamic(
            str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    finally:
        logging.getLogger().setLevel(previous)
    os.replace(partial, target)
    with contextlib.suppress(OSError):
        for leftover in target.parent.glob("*.partial*"):
            leftover.unlink()


def _pooling_of(path: Path) -> tuple[str, bool, int]:
    modules = _read_json(path / "modules.json")
    if not isinstance(modules, list):
        raise QAError(f"{path} has no modules.json: not a sentence-transformers model folder")
    pooling, normalize, dim = "mean", False, 0
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            config = _read_json(path / str(module.get("path", "")) / "config.json")
            dim = int(config.get("word_embedding_dimension", 0))
            if config.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif not config.get("pooling_mode_mean_tokens", True):
                raise QAError(f"the ONNX backend supports mean or CLS pooling only; use QA_BACKEND=torch for {path}")
        elif kind.endswith("Normalize"):
            normalize = True
        elif kind.endswith("Dense"):
            raise QAError(f"the ONNX backend does not support Dense layers; use QA_BACKEND=torch for {path}")
    if not dim:
        raise QAError(f"cannot tell the vector size of {path}; use QA_BACKEND=torch")
    return pooling, normalize, dim
