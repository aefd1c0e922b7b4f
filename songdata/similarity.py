"""Song–song similarity for WNS: an imported file, or co-listening built from training interactions.

WNS down-weights negatives that resemble the anchor, so its similarity must not know what the
model is later judged on. Sources (``SimSongModule(similarity=...)``):

- ``file``: the dataset's ``similarity.parquet`` as given (e.g. last.fm similar tracks; such a
  file may reflect listening after the split's cut-off, see the README).
- ``co_listening``: item–item cosine of the song columns of the TRAINING user × song matrix,
  top-k per song, in [0, 1] — how last.fm's similar tracks are built, from the training split
  only. Cached as ``similarity_co_listening.npz`` with a JSON note of what it was built from.
- ``auto``: ``file`` where the folder has one, else ``co_listening``.
- ``lyrics``: no table; the model uses the cosine of its frozen lyric features (see simsong.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from songdata.atomic_files import replace_atomically, write_json_atomic
from songdata.song_dataset import SongDataset

log = logging.getLogger(__name__)

SimilaritySource = Literal["auto", "file", "co_listening", "lyrics"]
CO_LISTENING_CACHE = "similarity_co_listening.npz"
DEFAULT_TOP_K = 100


@dataclass
class SongSimilarity:
    """A symmetric song × song CSR matrix of scores in [0, 1], indexed like the catalog."""

    matrix: sp.csr_matrix
    source: str

    def lookup(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Similarity of songs ``rows`` to songs ``cols``: ``[len(rows), len(cols)]`` float32 on the CPU."""
        block = self.matrix[rows.detach().cpu().numpy()][:, cols.detach().cpu().numpy()]
        return torch.from_numpy(block.toarray().astype(np.float32))


def training_matrix(train: pd.DataFrame, song_index: pd.Index) -> sp.csr_matrix:
    """Binary user × song CSR of the training split (listened or not: play counts would let a few
    heavy listeners dominate the cosine)."""
    users = pd.Index(sorted(train["user_id"].astype(str).unique()))
    rows = users.get_indexer(train["user_id"].astype(str))
    cols = song_index.get_indexer(train["song_id"].astype(str))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(users), len(song_index)))
    m.data[:] = 1.0  # duplicates summed by the constructor count once
    return m


def co_listening_similarity(train: sp.csr_matrix, top_k: int = DEFAULT_TOP_K) -> sp.csr_matrix:
    """Cosine of the song columns of a user × song matrix, top ``top_k`` per song, symmetrised (max).

    Non-negative inputs give scores in [0, 1]; the diagonal is left out. Songs no training user
    played have no neighbours.
    """
    if top_k < 1:
        raise ValueError(f"co_listening_similarity: top_k={top_k}, expected >= 1")
    columns = sp.csc_matrix(train, dtype=np.float64)
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0))).ravel()
    scale = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0))
    normalised = (columns @ scale).tocsc()
    cosine = (normalised.T @ normalised).tocsr()
    cosine.setdiag(0.0)
    cosine.eliminate_zeros()
    kept = _top_k_per_row(cosine, top_k)
    symmetric = kept.maximum(kept.T).tocsr()
    symmetric.data = np.clip(symmetric.data, 0.0, 1.0).astype(np.float32)
    return symmetric


def _top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, data = [], [], []
    for i in range(m.shape[0]):
        start, end = m.indptr[i], m.indptr[i + 1]
        if end == start:
            continue
        values = m.data[start:end]
        best = np.argsort(-values, kind="stable")[:k]
        rows.append(np.full(len(best), i))
        cols.append(m.indices[start:end][best])
        data.append(values[best])
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float64)
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)


def _train_fingerprint(train: pd.DataFrame, song_index: pd.Index, top_k: int) -> str:
    """Hash of exactly what the cache depends on: catalog order, training pairs and k."""
    digest = hashlib.sha256()
    digest.update("\n".join(song_index.astype(str)).encode())
    pairs = train[["user_id", "song_id"]].astype(str).sort_values(["user_id", "song_id"])
    digest.update(pd.util.hash_pandas_object(pairs, index=False).to_numpy().tobytes())
    digest.update(str(top_k).encode())
    return digest.hexdigest()


def cached_co_listening(dataset: SongDataset, top_k: int = DEFAULT_TOP_K) -> sp.csr_matrix:
    """Co-listening similarity of ``dataset``'s training split, from its cache when that is current."""
    if dataset.splits is None:
        raise ValueError(f"{dataset.root}: co-listening similarity needs the splits/ folder (training split)")
    song_index = pd.Index(dataset.catalog["song_id"].astype(str))
    train = dataset.splits["train"]
    fingerprint = _train_fingerprint(train, song_index, top_k)
    path, note_path = dataset.root / CO_LISTENING_CACHE, dataset.root / (CO_LISTENING_CACHE + ".json")
    if path.exists() and note_path.exists() and json.loads(note_path.read_text()).get("fingerprint") == fingerprint:
        return sp.load_npz(path).tocsr()
    matrix = co_listening_similarity(training_matrix(train, song_index), top_k)
    replace_atomically(path, lambda f: sp.save_npz(f, matrix))
    note = {
        "built_from": "splits/train.parquet only (val/test interactions not used)",
        "method": f"cosine of binary song columns of the training user x song matrix, top {top_k} per song, symmetrised by max",
        "training_pairs": int(len(train)),
        "songs_with_neighbours": int((np.diff(matrix.indptr) > 0).sum()),
        "top_k": top_k,
        "fingerprint": fingerprint,
    }
    write_json_atomic(note_path, note, indent=2)
    log.info("%s: co-listening similarity built from %d training pairs (cached)", dataset.root, len(train))
    return matrix


def song_similarity(dataset: SongDataset, source: SimilaritySource, top_k: int = DEFAULT_TOP_K) -> SongSimilarity | None:
    """The similarity table that ``source`` names for ``dataset``; None for ``lyrics``."""
    if source == "lyrics":
        return None
    has_file = dataset.similarity is not None
    if source == "file" and not has_file:
        raise ValueError(f"{dataset.root}: similarity 'file' asked for, but the folder has no similarity.parquet")
    if source in ("file", "auto") and has_file:
        return SongSimilarity(dataset.similarity, "similarity.parquet (imported, used as given)")
    if source not in ("auto", "co_listening"):
        raise ValueError(f"similarity source '{source}': expected one of auto, file, co_listening, lyrics")
    matrix = cached_co_listening(dataset, top_k)
    return SongSimilarity(matrix, f"co-listening of the training split (top {top_k} per song)")
