from __future__ import annotations

import numpy as np

from qa.config import Settings
from qa.engine import open_index
from qa.ingest.indexer import update_index
from qa.storage.local.vectors import FaissFlatStore, FaissIvfStore, fit_store, load_store


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, dim))
    x = centers[rng.integers(0, 40, n)] + 0.7 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_is_chosen_above_the_threshold_and_keeps_recall(tmp_path):
    x = _clustered(4000)
    ids = np.arange(10, 4010)
    flat = FaissFlatStore.build(ids, x, 32)
    assert fit_store(flat, threshold=5000) is flat
    ivf = fit_store(flat, threshold=2000)
    assert isinstance(ivf, FaissIvfStore) and ivf.recall >= 0.98
    rng = np.random.default_rng(7)
    queries = x[rng.choice(4000, 200)] + rng.normal(0, 0.05, (200, 32)).astype(np.float32)
    _, exact = flat.search(queries, 10)
    _, approx = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert recall >= 0.98

    ivf.remove(np.array([10, 11]))
    ivf.add(np.array([5]), x[:1])
    assert ivf.search(x[0], 1)[1][0][0] == 5
    assert ivf.search(x[0], 2, allowed=np.array([5, 3000]))[1][0].tolist() == [5, 3000]
    ivf.save(tmp_path)
    loaded = load_store(tmp_path, 32)
    assert isinstance(loaded, FaissIvfStore) and len(loaded) == 3999
    ids_all, _ = loaded.all()
    assert sorted(ids_all.tolist()) == sorted([5, *range(12, 4010)])
    np.testing.assert_allclose(loaded.vectors(np.array([5]))[0], x[0], atol=1e-6)
    # Shrunk well below the threshold: back to exact search.
    assert isinstance(fit_store(loaded, threshold=10_000), FaissFlatStore)


def test_index_switches_to_ivf_and_still_answers(settings, corpus):
    for i in range(60):
        (corpus / f"entry{i:02}.md").write_text(f"Entry {i}: patrol boats near island number {i}.\n\n" * 3)
    settings = settings.with_(ann_threshold=40)
    update_index(settings)
    engine = open_index(settings=settings)
    assert engine.manifest["vectors"]["type"] == "IndexIVFFlat"
    assert engine.ask("S-300V4 air defence", mode="dense").passages[0].doc_id == "kurils"
    (corpus / "entry00.md").unlink()
    update_index(settings)  # incremental remove on the IVF index
    assert engine.ask("S-300V4 air defence").passages[0].doc_id == "kurils"
    assert "entry00" not in {d.doc_id for d in engine.documents()}


def test_settings_read_the_threshold_from_the_environment():
    assert Settings.from_env({"QA_ANN_THRESHOLD": "1234"}).ann_threshold == 1234
