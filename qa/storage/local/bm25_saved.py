"""Reading an index that bm25s saved, with numpy alone, to search it.

`import bm25s` pulls in scipy.sparse (about 0.3 s), which a search does not need: bm25s saves
its score matrix as three plain .npy arrays (CSC: data, indices, indptr), its vocabulary and
its parameters as JSON, and qa sums the score columns itself (see lexical.Bm25Index.scores).
Indexing still goes through bm25s, and the folder stays in bm25s's own format:
`bm25s.BM25.load(folder)` reads it as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# File names bm25s.BM25.save writes (its defaults).
DATA, INDICES, INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
VOCAB, PARAMS, NONOCCURRENCE = "vocab.index.json", "params.index.json", "nonoccurrence_array.index.npy"
# Methods whose absent terms still score (bm25s saves their per-token constant).
_NONOCCURRENCE_METHODS = ("bm25l", "bm25+")


@dataclass
class SavedBm25:
    """What a search reads of a bm25s.BM25: the same attribute names, so either can be searched."""

    scores: dict  # "data", "indices", "indptr" (numpy arrays), "num_docs"
    vocab_dict: dict[str, int]
    params: dict = field(default_factory=dict)
    nonoccurrence_array: np.ndarray | None = None

    @classmethod
    def empty(cls) -> SavedBm25:
        matrix = {
            "data": np.zeros(0, np.float32),
            "indices": np.zeros(0, np.int32),
            "indptr": np.zeros(1, np.int32),
            "num_docs": 0,
        }
        return cls(matrix, {})


def read_saved(folder: Path) -> SavedBm25:
    """The score matrix, vocabulary and parameters bm25s saved in folder.

    Raises OSError, ValueError or KeyError for a missing or damaged file (the caller says which
    command rebuilds it).
    """
    folder = Path(folder)
    params = json.loads((folder / PARAMS).read_text(encoding="utf-8"))
    vocab = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
    if not isinstance(params, dict) or not isinstance(vocab, dict):
        raise ValueError(f"{PARAMS} and {VOCAB} must hold JSON objects")
    data = np.load(folder / DATA, allow_pickle=False)
    indices = np.load(folder / INDICES, allow_pickle=False)
    indptr = np.load(folder / INDPTR, allow_pickle=False)
    columns = len(indptr) - 1
    if len(data) != len(indices) or columns < 0 or indptr[-1] != len(data):
        raise ValueError("the saved score matrix is damaged")
    top = max(vocab.values(), default=-1)
    if top >= columns and not (top == columns and vocab.get("") == top):  # bm25s may append "" unscored
        raise ValueError("the vocabulary names columns the score matrix does not have")
    nonoccurrence = None
    if params.get("method") in _NONOCCURRENCE_METHODS:
        nonoccurrence = np.load(folder / NONOCCURRENCE, allow_pickle=False)
    scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": int(params["num_docs"])}
    return SavedBm25(scores, vocab, params, nonoccurrence)
