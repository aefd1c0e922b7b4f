"""The one interface every recommender follows, and helpers they share.

A recommender is fitted on training data only (`data.train`, `data.histories`,
`data.catalog`; never `val` or `test`) and then scores users against the whole catalog.
It does not remove songs the user has heard: the evaluator does that, once, for everyone.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch

from songdata.interactions import InteractionData


class Recommender(ABC):
    """Fit on training interactions, then score users × songs.

    Attributes:
        name: Short name used in results and leaderboards.
        can_rank_cold: Whether scores for cold-start songs (no training interaction) mean anything.
        needs_audio: Whether fitting reads the dataset's audio shards (skipped, with a note, where there are none).
    """

    name: str = "recommender"
    can_rank_cold: bool = False
    needs_audio: bool = False

    @abstractmethod
    def fit(self, data: InteractionData) -> Self:
        """Learn from `data.train`, `data.histories` and `data.catalog` only."""

    @abstractmethod
    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        """Float32 [len(user_indices), n_songs]; higher is better, -inf for songs it cannot rank.

        `out`, when given, is a float32 CPU tensor of that shape the scores may be written into and
        returned, so that a caller scoring many chunks of users reuses one allocation; a recommender
        that builds its scores another way returns a tensor of its own.
        """

    def _require_fitted(self, *attributes: str) -> None:
        if any(getattr(self, a, None) is None for a in attributes):
            raise RuntimeError(f"{type(self).__name__}: call fit(data) before score()")


class HeldOutAccessError(RuntimeError):
    """A recommender touched validation or test interactions while fitting."""


class _Forbidden:
    """Stands in for a held-out matrix; any use of it raises."""

    def __init__(self, split: str) -> None:
        object.__setattr__(self, "_split", split)

    def __getattr__(self, attribute: str):
        raise HeldOutAccessError(f"data.{self._split}.{attribute}: recommenders must fit on training data only")

    def _refuse(self, *args, **kwargs):
        raise HeldOutAccessError(f"data.{self._split}: recommenders must fit on training data only")

    __getitem__ = __len__ = __iter__ = __array__ = __add__ = __radd__ = __mul__ = __matmul__ = _refuse
    __rmatmul__ = __ne__ = __eq__ = __bool__ = _refuse


def training_only(data: InteractionData) -> InteractionData:
    """A view of `data` whose `val` and `test` raise `HeldOutAccessError` on any use.

    Fit through it to prove that a recommender never sees held-out interactions.
    """
    return dataclasses.replace(data, val=_Forbidden("val"), test=_Forbidden("test"))


def song_counts(train: sp.csr_matrix, weighted: bool = False) -> np.ndarray:
    """Per song, the number of training users (or the summed weights when `weighted`)."""
    matrix = train if weighted else (train != 0)
    return np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()


def rank_scores(*keys: np.ndarray) -> np.ndarray:
    """Distinct float32 scores n..1 ordering songs by the keys (first key first, larger first).

    Remaining ties go to the lower song index, so equal counts never depend on sort internals.
    Exact in float32 for catalogs below 2**24 songs.
    """
    n = len(keys[0])
    order = np.lexsort((np.arange(n),) + tuple(-np.asarray(k, dtype=np.float64) for k in reversed(keys)))
    scores = np.empty(n, dtype=np.float32)
    scores[order] = np.arange(n, 0, -1, dtype=np.float32)
    return scores


def trained_songs(train: sp.csr_matrix) -> np.ndarray:
    """Bool [n_songs]: songs with at least one training interaction."""
    return np.diff(train.tocsc().indptr) > 0


def mean_profiles(vectors: np.ndarray, histories: list[np.ndarray], known: np.ndarray | None = None) -> np.ndarray:
    """Per user, the mean of the vectors of their history songs (zeros for an empty history).

    Args:
        vectors: [n_songs, d] song vectors.
        histories: Per user, training song indices.
        known: Optional bool [n_songs]; songs outside it are left out of the mean.
    """
    lengths = np.array([len(h) for h in histories])
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(rows) else np.empty(0, dtype=np.int64)
    if known is not None:
        rows, cols = rows[known[cols]], cols[known[cols]]
    membership = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), len(vectors)))
    counts = np.asarray(membership.sum(axis=1)).ravel()
    return np.asarray(membership @ vectors) / np.maximum(counts, 1)[:, None]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
