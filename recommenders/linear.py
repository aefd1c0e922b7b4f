"""EASE (Steck, 2019): a dense song × song linear model with a zero diagonal, in closed form.

    B = argmin ||X - X B||² + λ ||B||²  subject to diag(B) = 0
      = I - P / diag(P)   with P = (XᵀX + λI)⁻¹   (column j divided by P_jj)

Only songs with at least `min_listeners` training listeners take part (the others score -inf).
The model is dense: fitting holds about three n × n float32 matrices and costs about n³ flops,
so it refuses above `max_songs` songs with the memory it would need, rather than running the
machine out of memory. On HetRec lastfm-2k, 15,401 trained artists took 9 minutes on a loaded
2-core machine; the 5,977 with two or more listeners take a 15th of that (n³).
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import torch

from recommenders.base import Recommender
from recommenders.matrix_factorization import Weighting, weighted_interactions
from songdata.interactions import InteractionData

log = logging.getLogger(__name__)

DENSE_COPIES = 3
"""n × n float32 matrices alive at once while fitting: the Gram matrix, its inverse, LAPACK's work copy."""


def ease_memory_bytes(n_songs: int) -> int:
    """Peak bytes EASE needs to fit on `n_songs` songs."""
    return DENSE_COPIES * 4 * n_songs * n_songs


class EASERecommender(Recommender):
    """Embarrassingly shallow autoencoder: scores = x_u @ B, B in closed form with L2 weight λ.

    Args:
        l2: λ, the L2 weight (Steck's best values lie in the hundreds to thousands).
        weighting: Training weights: `binary` (as in the paper), `log` or `raw`.
        max_songs: Largest number of songs it fits; above it `fit` raises with the memory
            needed (ease_memory_bytes). Raise it when the machine has that much memory.
        min_listeners: Songs with fewer training listeners are left out of the model (they score
            -inf and add nothing to other songs' scores); 1 keeps every trained song.
    """

    name = "ease"

    def __init__(
        self, l2: float = 500.0, weighting: Weighting = "binary", max_songs: int = 30_000, min_listeners: int = 1
    ) -> None:
        if l2 <= 0:
            raise ValueError(f"EASERecommender.l2 must be > 0 (it keeps XᵀX + λI invertible), got {l2}")
        self.l2, self.weighting, self.max_songs, self.min_listeners = l2, weighting, max_songs, min_listeners
        self.weights: torch.Tensor | None = None
        self._songs: torch.Tensor | None = None
        self._rows = None

    def fit(self, data: InteractionData) -> Self:
        listeners = np.asarray((data.train != 0).sum(axis=0)).ravel()
        songs = np.flatnonzero(listeners >= max(self.min_listeners, 1))
        need = ease_memory_bytes(len(songs))
        if len(songs) > self.max_songs:
            raise MemoryError(
                f"EASERecommender: {len(songs)} songs with >= {self.min_listeners} training listeners exceed "
                f"max_songs={self.max_songs}; fitting would hold {need / 2**30:.1f} GiB ({DENSE_COPIES} dense "
                f"{len(songs)}² float32 matrices). Raise max_songs if the machine has that memory free, raise "
                "min_listeners, or leave EASE out for this dataset"
            )
        log.info("EASE: %d songs, about %.2f GiB while fitting", len(songs), need / 2**30)
        rows = weighted_interactions(data.train, self.weighting)[:, songs].tocsc()
        gram = torch.from_numpy((rows.T @ rows).toarray().astype(np.float32))
        gram.diagonal().add_(self.l2)
        precision = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        # LAPACK returns it column-major; `score`'s sparse @ dense would copy it to row-major on every
        # call (143 MB per chunk of users on HetRec: scoring its test users took 3-7x as long). It is
        # symmetric, so its transpose is the same matrix, row-major, without a copy.
        precision = precision.mT.contiguous()
        weights = precision.div_(-precision.diagonal().clone())
        weights.diagonal().zero_()
        self.weights, self._songs = weights, torch.from_numpy(songs)
        self._rows = rows.tocsr()
        self._n_songs = data.n_songs
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("weights")
        rows = self._rows[np.asarray(user_indices, dtype=np.int64)]
        scores = torch.full((rows.shape[0], self._n_songs), -torch.inf) if out is None else out.fill_(-torch.inf)
        scores[:, self._songs] = torch.from_numpy(rows @ self.weights.numpy())
        return scores
