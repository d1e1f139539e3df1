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
import queue
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from qa.embedding.model_files import model_identity, read_json, resolve_model_path
from qa.embedding.pooling import pool_spans
from qa.errors import QAError

EXPORT_VERSION = 1


class OnnxEmbedder:
    def __init__(self, name: str, quantized: bool = True, cache_dir: Path | None = None) -> None:
        self.name = name
        self.quantized = quantized
        self.path = resolve_model_path(name)
        if self.path is None:
            raise QAError(
                f"the ONNX backend needs a local model folder; '{name}' is not one "
                f"(use QA_BACKEND=torch for models in the Hugging Face cache)"
            )
        identity = model_identity(name, self.path)
        backend = "onnx-int8" if quantized else "onnx"
        # "|alone": int8 vectors are made one text per run (before, they depended on their batch).
        self.cache_key = f"{backend}:{identity}|alone" if quantized else f"{backend}:{identity}"
        config = read_json(self.path / "sentence_bert_config.json")
        self.max_tokens = int(config.get("max_seq_length") or 512)
        self._pooling, self._normalize, self._dim = _pooling_of(self.path)
        root = Path(cache_dir or default_cache_dir()) / "onnx"
        self.export_dir = root / identity.replace("/", "__").replace("@", "_")
        self._session = None
        self._pool: ThreadPoolExecutor | None = None
        self._sessions: queue.SimpleQueue | None = None
        self._names: set[str] = set()
        self._lock = threading.Lock()
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text).ids)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts, None)[0]

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of texts and, from the same forward pass, of character spans of each (late chunking)."""
        return self._run(texts, spans)

    def _run(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text runs through the model alone, unpadded: its vector never depends on its neighbours.

        Dynamic int8 quantisation scales activations per run, so a padded batch gave a text a
        vector ~0.99 cosine from its vector alone. Alone, several texts run side by side, each on
        a one-thread session: on 2 cores that is faster than padded batches on two threads were.
        """
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self._dim), np.float32)] * len(texts)
        if not texts:
            return out, pooled
        encodings = self._tokenizer.encode_batch(list(texts))

        def one(session, i: int) -> None:
            out[i], hidden, mask = self._forward(session, encodings[i])
            if spans is not None:
                offsets = np.array(encodings[i].offsets, dtype=np.int64).reshape(-1, 2)
                pooled[i] = pool_spans(hidden, offsets, mask, spans[i])

        if len(texts) == 1 or self._workers() == 1:
            session = self._loaded()
            for i in range(len(texts)):
                one(session, i)
            return out, pooled
        pool, sessions = self._bulk()

        def task(i: int) -> None:
            session = sessions.get()
            try:
                one(session, i)
            finally:
                sessions.put(session)

        # Longest first: the last texts to start are short, so no worker idles at the end.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        list(pool.map(task, order))
        return out, pooled

    def _forward(self, session, encoding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit vector, token embeddings, mask) of one tokenised text."""
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._names:
            feed["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        hidden = session.run(None, feed)[0][0]
        vector = hidden[0] if self._pooling == "cls" else hidden.mean(axis=0)
        if self._normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector, hidden, mask[0]

    @staticmethod
    def _workers() -> int:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))

    def _model_file(self) -> Path:
        return ensure_export(self.path, self.export_dir, self.quantized)

    def _loaded(self):
        """The two-thread session that embeds a question (and any single text)."""
        with self._lock:
            if self._session is None:
                # Two threads: more is slower on this class of machine (RETRIEVAL-NOTES).
                self._session = open_session(self._model_file(), threads=min(2, os.cpu_count() or 1))
                self._names = {i.name for i in self._session.get_inputs()}
            return self._session

    def _bulk(self):
        """A thread pool and one one-thread session per worker, opened once, for many texts at once."""
        with self._lock:
            if self._pool is None:
                file = self._model_file()
                sessions: queue.SimpleQueue = queue.SimpleQueue()
                workers = self._workers()
                for _ in range(workers):
                    session = open_session(file, threads=1)
                    sessions.put(session)
                self._names = {i.name for i in session.get_inputs()}
                self._sessions = sessions
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="qa-embed")
            return self._pool, self._sessions


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
            options = session_options(ort, threads, level.ORT_DISABLE_ALL)
            return ort.InferenceSession(str(optimized), options, providers=["CPUExecutionProvider"])
        except Exception:  # damaged or unreadable: optimise the original again
            with contextlib.suppress(OSError):
                optimized.unlink()
    # Extended, not all: the layout optimisations beyond it depend on the CPU, and the cache may be shared.
    options = session_options(ort, threads, level.ORT_ENABLE_EXTENDED)
    partial = optimized.with_name(f"{optimized.name}.{os.getpid()}.partial")
    options.optimized_model_filepath = str(partial)
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    with contextlib.suppress(OSError):  # read-only cache, or another process won the race: fine
        os.replace(partial, optimized)
    with contextlib.suppress(OSError):
        partial.unlink()
    return session


def session_options(ort, threads: int, level):
    """ONNX Runtime session options: `threads` for one operator, quiet logs, graph optimisation `level`
    (the embedder and the reader open their sessions alike)."""
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
    if target.exists() and read_json(meta).get("version") == EXPORT_VERSION:
        return target
    export_dir.mkdir(parents=True, exist_ok=True)
    with open(export_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent process waits, then finds the files
        if target.exists() and read_json(meta).get("version") == EXPORT_VERSION:
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
    modules = read_json(path / "modules.json")
    if not isinstance(modules, list):
        raise QAError(f"{path} has no modules.json: not a sentence-transformers model folder")
    pooling, normalize, dim = "mean", False, 0
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            config = read_json(path / str(module.get("path", "")) / "config.json")
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
