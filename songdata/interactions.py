"""Interactions as contiguous indices and user × song CSR matrices, for baselines and evaluation."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from songdata.dataset import DatasetTables

if TYPE_CHECKING:
    from songdata.song_dataset import SongDataset


@dataclass
class InteractionData:
    """One dataset's interactions, indexed (`SongDataset.interactions` builds it once per dataset).

    Song index = row of the catalog; user index = position in the sorted user ids.
    Matrices are float32 CSR of shape [n_users, n_songs] holding the interaction weights.

    Attributes:
        catalog: The catalog table (row i is song index i).
        user_ids: Sorted user ids of every user with any interaction.
        train, val, test: The split matrices.
        histories: Per user, the training song indices in listening order (position, then file order).
        cold_songs: Indices of the cold-start songs (no training interaction by construction).
        similarity: Optional song × song CSR of external similarity scores (symmetric).
        dataset: The `SongDataset` these interactions belong to: where recommenders that read songs
            (audio, lyrics) find them. None for interactions built in memory.
    """

    catalog: pd.DataFrame
    user_ids: list[str]
    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    histories: list[np.ndarray]
    cold_songs: np.ndarray
    similarity: sp.csr_matrix | None = None
    dataset: SongDataset | None = None

    @property
    def song_ids(self) -> list[str]:
        return self.catalog["song_id"].tolist()

    @property
    def warm_songs(self) -> np.ndarray:
        """Indices of the songs that are not cold-start songs."""
        return np.setdiff1d(np.arange(self.n_songs), self.cold_songs)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_songs(self) -> int:
        return len(self.catalog)

    def fingerprint(self, splits: Sequence[str] = ("train", "val")) -> str:
        """SHA-256 of the users, songs, and the named split matrices (with their weights): results computed
        on equal fingerprints are interchangeable, whatever folder the dataset was read from."""
        digest = hashlib.sha256()
        for ids in (self.user_ids, self.catalog["song_id"].astype(str)):
            digest.update("\n".join(ids).encode() + b"\0")
        for name in splits:
            matrix = getattr(self, name).tocsr()
            matrix.sort_indices()
            for array in (np.asarray(matrix.shape), matrix.indptr, matrix.indices, matrix.data):
                digest.update(np.ascontiguousarray(array, np.float64 if array is matrix.data else np.int64).tobytes())
        return digest.hexdigest()

    @classmethod
    def from_tables(
        cls, dataset: DatasetTables, similarity: sp.csr_matrix | None = None, songs: SongDataset | None = None
    ) -> InteractionData:
        """Index the tables of a dataset folder that has splits; `similarity` as `similarity_matrix` builds it;
        `songs` is the opened dataset they belong to."""
        if dataset.splits is None:
            raise ValueError(f"{dataset.root}: dataset has no splits/ folder")
        song_index = pd.Index(dataset.catalog["song_id"])
        user_ids = sorted(dataset.interactions["user_id"].astype(str).unique())
        user_index = pd.Index(user_ids)
        shape = (len(user_ids), len(song_index))

        def indexed(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
            return _positions(df["user_id"].astype(str), user_index), _positions(df["song_id"].astype(str), song_index)

        def matrix(df: pd.DataFrame) -> sp.csr_matrix:
            rows, cols = indexed(df)
            m = sp.csr_matrix((df["weight"].to_numpy(np.float32), (rows, cols)), shape=shape)
            m.sum_duplicates()
            return m

        train = dataset.splits["train"]
        histories = _histories(indexed(train), indexed(dataset.interactions), dataset.interactions["position"], shape)
        cold = song_index.get_indexer(dataset.split_meta.get("cold_song_ids", []))
        return cls(
            catalog=dataset.catalog,
            user_ids=user_ids,
            train=matrix(train),
            val=matrix(dataset.splits["val"]),
            test=matrix(dataset.splits["test"]),
            histories=histories,
            cold_songs=np.sort(cold[cold >= 0]),
            similarity=similarity,
            dataset=songs,
        )


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """`index.get_indexer(values)` (-1 where absent), through Arrow's hash lookup when both hold text: pandas
    would turn each of millions of Arrow strings into a Python object first (10x slower)."""
    try:
        at = pc.index_in(pa.array(values, from_pandas=True), value_set=pa.array(index, type=pa.string()))
    except (pa.ArrowException, TypeError, ValueError):
        return index.get_indexer(values)
    return pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _histories(
    train: tuple[np.ndarray, np.ndarray], played: tuple[np.ndarray, np.ndarray], position: pd.Series,
    shape: tuple[int, int],
) -> list[np.ndarray]:
    """Per user, the training songs (indices) ordered by the position of the (user, song)'s first row in the
    interactions (-1 where it has none), ties in training-table order; one stable sort, no per-user loop."""
    (users, songs), (played_users, played_songs) = train, played
    played_keys = played_users.astype(np.int64) * shape[1] + played_songs
    first_row = ~pd.Index(played_keys).duplicated()
    at = pd.Index(played_keys[first_row]).get_indexer(users.astype(np.int64) * shape[1] + songs)
    positions = np.where(at >= 0, position.to_numpy(np.float64)[first_row][at], -1.0)
    order = np.lexsort((positions, users))
    bounds = np.cumsum(np.bincount(users, minlength=shape[0]))[:-1]
    return np.split(songs[order].astype(np.int64), bounds)


def similarity_matrix(similarity: pd.DataFrame, song_index: pd.Index) -> sp.csr_matrix:
    """Symmetric song × song CSR; where both directions are given, the larger score wins."""
    a = song_index.get_indexer(similarity["song_a"].astype(str))
    b = song_index.get_indexer(similarity["song_b"].astype(str))
    score = similarity["score"].to_numpy(np.float32)
    n = len(song_index)
    m = sp.coo_matrix((np.concatenate([score, score]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    return _max_duplicates(m)


def _max_duplicates(m: sp.coo_matrix) -> sp.csr_matrix:
    order = np.lexsort((-m.data, m.col, m.row))
    row, col, data = m.row[order], m.col[order], m.data[order]
    keep = np.ones(len(row), dtype=bool)
    keep[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    return sp.csr_matrix((data[keep], (row[keep], col[keep])), shape=m.shape)
