"""Settings as qa/config.py declares them: every field says its section, variable and what it sets,
and the tables, flags and checks derived from the declarations match what they were written as."""

from __future__ import annotations

import dataclasses

import pytest

from qa import config
from qa.config import Settings
from qa.errors import QAError

# ENV_VARS as it was written out by hand before the declarations.
OLD_ENV_VARS = {
    "corpus_dir": "QA_CORPUS",
    "index_dir": "QA_INDEX",
    "model": "QA_MODEL",
    "backend": "QA_BACKEND",
    "chunk_size": "QA_CHUNK_SIZE",
    "chunk_overlap": "QA_CHUNK_OVERLAP",
    "chunk_context": "QA_CHUNK_CONTEXT",
    "context_tokens": "QA_CONTEXT_TOKENS",
    "paragraph_size": "QA_PARAGRAPH_SIZE",
    "max_file_mb": "QA_MAX_FILE_MB",
    "max_pages": "QA_MAX_PAGES",
    "parse_memory_mb": "QA_PARSE_MEMORY_MB",
    "parse_seconds": "QA_PARSE_SECONDS",
    "max_cells": "QA_MAX_CELLS",
    "ocr": "QA_OCR",
    "ocr_memory_mb": "QA_OCR_MEMORY_MB",
    "ocr_seconds": "QA_OCR_SECONDS",
    "max_zip_mb": "QA_MAX_ZIP_MB",
    "min_relevance": "QA_MIN_RELEVANCE",
    "fusion": "QA_FUSION",
    "lexical_weight": "QA_LEXICAL_WEIGHT",
    "rrf_k": "QA_RRF_K",
    "candidates": "QA_CANDIDATES",
    "rerank_depth": "QA_RERANK_DEPTH",
    "bm25_k1": "QA_BM25_K1",
    "bm25_b": "QA_BM25_B",
    "bm25_pairs": "QA_BM25_PAIRS",
    "ann_threshold": "QA_ANN_THRESHOLD",
    "store": "QA_STORE",
    "pg_dsn": "QA_PG_DSN",
    "pg_schema": "QA_PG_SCHEMA",
    "pg_vector": "QA_PG_VECTOR",
    "pg_lexical": "QA_PG_LEXICAL",
    "pg_ef_search": "QA_PG_EF_SEARCH",
    "sentence_vectors": "QA_SENTENCE_VECTORS",
    "spelling": "QA_SPELLING",
    "reader": "QA_READER",
    "feedback": "QA_FEEDBACK",
    "local_models": "QA_LOCAL_MODELS",  # added since, declared like the others
}

# The settings an index records (qa.storage.manifest.base_manifest and check_settings: the model and
# its backend, the chunker's and the representation's; BM25's, rebuilt at the next `qa index`).
OLD_INDEX_SETTINGS = {
    "model",
    "backend",
    "chunk_size",
    "chunk_overlap",
    "paragraph_size",
    "chunk_context",
    "context_tokens",
    "sentence_vectors",
    "bm25_k1",
    "bm25_b",
    "bm25_pairs",
}

# The flags qa.arguments.add_path_arguments wrote out by hand, and the settings they set.
OLD_FLAGS = {
    "corpus_dir": "--corpus",
    "index_dir": "--index",
    "model": "--model",
    "backend": "--backend",
    "chunk_context": "--chunk-context",
    "store": "--store",
    "pg_dsn": "--dsn",
}


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_every_setting_declares_its_section_variable_and_description(field):
    declared = field.metadata
    assert declared["section"] in config.SECTIONS
    assert declared["env"].startswith("QA_")
    assert declared["help"].strip()
    if declared["flag"]:
        assert declared["flag"].startswith("--") and declared["flag_help"]
    if declared["choices"]:
        assert field.default in declared["choices"]


def test_the_derived_tables_are_the_ones_written_out_before():
    assert config.ENV_VARS == OLD_ENV_VARS
    assert set(config.INDEX_SETTINGS) == OLD_INDEX_SETTINGS
    assert config.FLAGS == OLD_FLAGS
    assert len(set(config.ENV_VARS.values())) == len(config.ENV_VARS)


def test_the_manifest_checks_the_index_settings(monkeypatch):
    """check_settings reads the index settings (the backend through the model's key, BM25's at `qa index`)."""
    from qa.storage.manifest import Manifest

    read: set[str] = set()

    class Recording:
        def __getattr__(self, name: str):
            read.add(name)
            return getattr(Settings(), name)

    monkeypatch.setattr(Manifest, "check_compatible", lambda self, *args, **kwargs: None)
    Manifest({}).check_settings("key", Recording())
    assert read == set(config.INDEX_SETTINGS) - {"backend", "bm25_k1", "bm25_b", "bm25_pairs"}


def test_the_shared_flags_come_from_the_declarations():
    from qa.arguments import settings_from_args, settings_overrides
    from qa.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    index_flags = {flag for action in commands["index"]._actions for flag in action.option_strings}
    assert set(config.FLAGS.values()) <= index_flags
    backend = next(a for a in commands["index"]._actions if "--backend" in a.option_strings)
    assert tuple(backend.choices) == config.BACKENDS and "QA_BACKEND" in backend.help

    args = parser.parse_args(["index", "--chunk-context", "title", "--dsn", "host=db", "--corpus", "docs"])
    overrides = settings_overrides(args)
    assert overrides["chunk_context"] == "title" and overrides["pg_dsn"] == "host=db"
    settings = settings_from_args(args)
    assert settings.chunk_context == "title" and str(settings.corpus_dir) == "docs"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QA_BACKEND", "tf", "QA_BACKEND must be torch, onnx or onnx-int8 (got 'tf')"),
        ("QA_CHUNK_CONTEXT", "all", "QA_CHUNK_CONTEXT must be none, title or title+headings"),
        ("QA_STORE", "sqlite", "QA_STORE must be local or postgres"),
        ("QA_PG_LEXICAL", "bm", "QA_PG_LEXICAL must be bm25 or ts_rank_cd"),
        ("QA_SENTENCE_VECTORS", "x", "QA_SENTENCE_VECTORS must be late or alone"),
        ("QA_READER", "maybe", "QA_READER must be on or off"),
    ],
)
def test_a_value_outside_the_declared_choices_names_the_variable_and_the_choices(variable, value, message):
    with pytest.raises(QAError) as raised:
        Settings.from_env({variable: value})
    assert message in str(raised.value)


def test_settings_still_read_override_and_replace():
    settings = Settings.from_env({"QA_CHUNK_SIZE": "64", "QA_MIN_RELEVANCE": "0"}, store=None, fusion="rrf")
    assert (settings.chunk_size, settings.min_relevance, settings.fusion, settings.store) == (64, 0.0, "rrf", "local")
    assert settings.with_(chunk_size=None, rrf_k=10).rrf_k == 10
    assert Settings().backend == "onnx-int8" and Settings().min_relevance is None


def test_each_list_of_allowed_values_is_the_one_in_qa_config():
    from typing import get_args

    from qa.embedding.evidence import METHODS
    from qa.retrieval.search import MODES
    from qa.storage.stores import STORES
    from qa.web.schemas import Mode

    assert MODES is config.MODES and get_args(Mode) == config.MODES
    assert STORES is config.STORES and METHODS is config.SENTENCE_VECTORS
    declared = {f.name: f.metadata["choices"] for f in dataclasses.fields(Settings)}
    assert declared["backend"] is config.BACKENDS and declared["chunk_context"] is config.CONTEXTS
    assert declared["store"] is config.STORES and declared["fusion"] is config.FUSIONS


def test_the_web_servers_settings_are_declared_and_make_its_flags():
    from qa.cli import build_parser

    assert (config.HOST_ENV, config.PORT_ENV, config.ADMIN_PASSWORD_ENV, config.MAX_UPLOAD_ENV) == (
        "GRADIO_SERVER_NAME",
        "GRADIO_SERVER_PORT",
        "QA_ADMIN_PASSWORD",
        "QA_MAX_UPLOAD_MB",
    )
    assert (config.API_TOKEN_ENV, config.ALLOWED_HOSTS_ENV, config.CORS_ORIGINS_ENV) == (
        "QA_API_TOKEN",
        "QA_ALLOWED_HOSTS",
        "QA_CORS_ORIGINS",
    )
    assert (config.DEFAULT_HOST, config.DEFAULT_PORT, config.DEFAULT_MAX_UPLOAD_MB) == ("127.0.0.1", 7860, 20.0)
    serve = next(a for a in build_parser()._actions if a.dest == "command").choices["serve"]
    actions = {a.option_strings[0]: a for a in serve._actions if a.option_strings}
    for field in dataclasses.fields(config.ServeSettings):
        declared = field.metadata
        assert declared["section"] == "serve" and declared["help"]
        assert declared["env"] in actions[declared["flag"]].help
    args = serve.parse_args(["--port", "8080", "--max-upload-mb", "5"])
    assert (args.port, args.max_upload_mb) == (8080, 5.0)


def test_the_manifests_messages_name_the_declared_variables_and_flags():
    from qa.errors import IndexMismatchError
    from qa.storage.manifest import FORMAT, Manifest

    data = {
        "format": FORMAT,
        "model": {"name": "m", "cache_key": "onnx:m|1"},
        "chunker": {"chunk_size": 128, "chunk_overlap": 32, "context": "title", "context_tokens": 16},
        "sentences": {"vectors": "late"},
        "corpus": {},
    }
    manifest = Manifest(data)
    with pytest.raises(IndexMismatchError) as raised:
        manifest.check_compatible("onnx:m|1", "m", 64, 16)
    assert str(raised.value).endswith("or set QA_CHUNK_SIZE=128 QA_CHUNK_OVERLAP=32")
    with pytest.raises(IndexMismatchError) as raised:
        manifest.check_compatible("onnx:m|1", "m", 128, 32, "none", paragraph_size=128)
    assert str(raised.value).endswith("or set QA_CHUNK_CONTEXT=title (--chunk-context)")
    with pytest.raises(IndexMismatchError) as raised:
        manifest.check_compatible("onnx:n|1", "n", 128, 32)
    assert str(raised.value).endswith("or use --model 'm' (QA_MODEL)")
    with pytest.raises(IndexMismatchError) as raised:
        manifest.check_compatible("torch:m|1", "m", 128, 32)
    assert str(raised.value).endswith("or set QA_BACKEND=onnx")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QA_CHUNK_SIZE", "8", "QA_CHUNK_SIZE must be at least 16 tokens (got 8)"),
        ("QA_CONTEXT_TOKENS", "0", "QA_CONTEXT_TOKENS must be between 1 and 128 (got 0)"),
        ("QA_PARAGRAPH_SIZE", "-1", "QA_PARAGRAPH_SIZE must be 0 or more tokens (got -1)"),
        ("QA_LEXICAL_WEIGHT", "1.5", "QA_LEXICAL_WEIGHT must be between 0 and 1 (got 1.5)"),
        ("QA_MIN_RELEVANCE", "2", "QA_MIN_RELEVANCE must be a probability between 0 and 1 (got 2)"),
        ("QA_MAX_PAGES", "0", "QA_MAX_PAGES must be a positive integer (got 0)"),
        ("QA_PARSE_SECONDS", "0.5", "QA_PARSE_SECONDS must be between 1 and 3600 (got 0.5)"),
        ("QA_RRF_K", "0", "QA_RRF_K must be a positive integer"),
        ("QA_RERANK_DEPTH", "1001", "QA_RERANK_DEPTH must be between 0 (no re-ranking) and 1000 (got 1001)"),
        ("QA_BM25_K1", "0", "QA_BM25_K1 must be above 0 and at most 10 (got 0)"),
        ("QA_BM25_PAIRS", "5", "QA_BM25_PAIRS must be between 0 (no pairs) and 4 (got 5)"),
        ("QA_PG_EF_SEARCH", "0", "QA_PG_EF_SEARCH must be between 1 and 1000 (got 0)"),
    ],
)
def test_a_number_outside_the_declared_bounds_names_the_variable_and_the_bounds(variable, value, message):
    with pytest.raises(QAError) as raised:
        Settings.from_env({variable: value})
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QA_BM25_K1", "10"),
        ("QA_BM25_B", "0"),
        ("QA_RERANK_DEPTH", "0"),
        ("QA_MIN_RELEVANCE", "0"),
        ("QA_CHUNK_SIZE", "16"),
    ],
)
def test_the_bounds_themselves_are_allowed(variable, value):
    Settings.from_env({variable: value, "QA_CHUNK_OVERLAP": "0"})
