"""Item-based neighbourhood models: item-KNN (implicit's cosine / BM25 / TF-IDF) and RP3beta.

Both learn a sparse song × song matrix W from the training split and score a user as
`x_u @ W`, with x_u the user's (weighted) training row. Songs without a training interaction
have no neighbours; they score -inf, so `can_rank_cold` is False.
"""

from __future__ import annotations

from typing import Literal, Self

import implicit.nearest_neighbours as knn
import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from recommenders.base import Recommender, trained_songs
from recommenders.matrix_factorization import Weighting, weighted_interactions
from songdata.interactions import InteractionData

Similarity = Literal["cosine", "bm25", "tfidf"]


class _ItemToItemRecommender(Recommender):
    """Scores users as their weighted training rows times a fitted song × song matrix."""

    def __init__(self, weighting: Weighting) -> None:
        self.weighting = weighting
        self.similarity: sp.csr_matrix | None = None
        self._rows: sp.csr_matrix | None = None
        self._unrankable: torch.Tensor | None = None

    def _set_model(self, similarity: sp.csr_matrix, data: InteractionData) -> None:
        self.similarity = similarity.astype(np.float32).tocsr()
        self._rows = weighted_interactions(data.train, self.weighting)
        self._unrankable = torch.from_numpy(~trained_songs(data.train))

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("similarity")
        rows = self._rows[np.asarray(user_indices, dtype=np.int64)]
        scores = torch.from_numpy((rows @ self.similarity).toarray(out=None if out is None else out.numpy()))
        return scores.masked_fill_(self._unrankable, -torch.inf)


class ItemKNNRecommender(_ItemToItemRecommender):
    """Item-KNN: each song keeps its `neighbours` most similar songs (implicit's all-pairs KNN).

    Args:
        similarity: `cosine`, `bm25` (implicit's BM25 weighting of users, then dot products)
            or `tfidf` (TF-IDF weighting, then cosine).
        neighbours: Most similar other songs kept per song (implicit's K counts the song itself,
            which only adds to songs the user has heard: it is asked for one more and dropped).
        shrinkage: Similarities of songs with few common listeners are damped by
            n_ij / (n_ij + shrinkage), n_ij = users who heard both (Koren, 2008); 0 turns it off.
            Applied to the kept neighbours, which implicit chooses before damping.
        bm25_k1: BM25's term-frequency saturation.
        bm25_b: BM25's length normalisation.
        weighting: Training weights seen by the similarity and by scoring: `binary`, `log` or `raw`.
        num_threads: implicit's threads; 0 uses every core. Results do not depend on it.
    """

    name = "itemknn"

    def __init__(
        self,
        similarity: Similarity = "cosine",
        neighbours: int = 100,
        shrinkage: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        weighting: Weighting = "binary",
        num_threads: int = 0,
    ) -> None:
        if similarity not in ("cosine", "bm25", "tfidf"):
            raise ValueError(f"ItemKNNRecommender.similarity: expected cosine, bm25 or tfidf, got {similarity!r}")
        if neighbours < 1 or shrinkage < 0:
            raise ValueError(f"ItemKNNRecommender: neighbours must be >= 1 and shrinkage >= 0, "
                             f"got {neighbours} and {shrinkage}")
        super().__init__(weighting)
        self.similarity_name = similarity
        self.neighbours, self.shrinkage = neighbours, shrinkage
        self.bm25_k1, self.bm25_b = bm25_k1, bm25_b
        self.num_threads = num_threads

    def _weighted(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """implicit's weighting of each similarity, as its Cosine/BM25/TFIDF recommenders apply it."""
        if self.similarity_name == "bm25":
            return knn.bm25_weight(counts.T, self.bm25_k1, self.bm25_b).T.tocsr()
        if self.similarity_name == "tfidf":
            return knn.normalize(knn.tfidf_weight(counts.T)).T.tocsr()
        return knn.normalize(counts.T).T.tocsr()

    def fit(self, data: InteractionData) -> Self:
        counts = weighted_interactions(data.train, self.weighting)
        model = knn.ItemItemRecommender(K=self.neighbours + 1, num_threads=self.num_threads)
        with threadpool_limits(1, "blas"):
            model.fit(self._weighted(counts), show_progress=False)
        similarity = model.similarity.tocsr()
        similarity = top_k_per_row((similarity - sp.diags(similarity.diagonal())).tocsr(), self.neighbours)
        if self.shrinkage > 0:
            similarity = shrink(similarity, data.train, self.shrinkage)
        self._set_model(similarity, data)
        return self


def shrink(similarity: sp.csr_matrix, train: sp.csr_matrix, shrinkage: float) -> sp.csr_matrix:
    """Each kept similarity s_ij times n_ij / (n_ij + shrinkage), n_ij = users who heard both songs."""
    listened = (train != 0).astype(np.float32).tocsc()
    pattern = similarity.tocoo()
    common = np.asarray((listened.T @ listened).tocsr()[pattern.row, pattern.col], dtype=np.float64).ravel()
    damped = pattern.data * common / (common + shrinkage)
    return sp.csr_matrix((damped, (pattern.row, pattern.col)), shape=similarity.shape)


class RP3betaRecommender(_ItemToItemRecommender):
    """RP3beta (Paudel et al., 2017): three-step random walk song → user → song, popularity damped.

    With P_us = rows of the binary training matrix divided by the user's count and P_su the same
    for songs, W = (P_su ** alpha) @ (P_us ** alpha) (powers elementwise) without its diagonal,
    each column j divided by popularity_j ** beta; each song keeps its `neighbours` largest entries.

    Args:
        alpha: Power of the transition probabilities (1 = the plain random walk).
        beta: Popularity penalty (0 = none; P3alpha).
        neighbours: Largest entries of W kept per song.
        normalise: Divide each kept row of W by its sum (Dacrema et al.'s `normalize_similarity`).
    """

    name = "rp3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, neighbours: int = 100, normalise: bool = False) -> None:
        if neighbours < 1 or alpha <= 0 or beta < 0:
            raise ValueError(f"RP3betaRecommender: expected neighbours >= 1, alpha > 0, beta >= 0; "
                             f"got {neighbours}, {alpha}, {beta}")
        super().__init__("binary")
        self.alpha, self.beta = alpha, beta
        self.neighbours, self.normalise = neighbours, normalise

    def fit(self, data: InteractionData) -> Self:
        binary = weighted_interactions(data.train, "binary")
        user_to_song = _row_normalised(binary).power(self.alpha)
        song_to_user = _row_normalised(binary.T.tocsr()).power(self.alpha)
        walk = (song_to_user @ user_to_song).tocsr()
        # A song is not its own neighbour: it would take a slot that only helps songs the user has heard.
        walk = (walk - sp.diags(walk.diagonal())).tocsr()
        popularity = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        penalty = np.zeros_like(popularity)
        penalty[popularity > 0] = popularity[popularity > 0] ** -self.beta
        walk = walk @ sp.diags(penalty)
        walk = top_k_per_row(walk.tocsr(), self.neighbours)
        if self.normalise:
            walk = _row_normalised(walk)
        self._set_model(walk, data)
        return self


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    return (sp.diags(np.where(sums > 0, 1.0 / np.where(sums > 0, sums, 1.0), 0.0)) @ matrix).tocsr()


def top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest nonzero entries of each row (ties: lower column first), dropping the rest."""
    matrix = matrix.tocsr().copy()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    lengths = np.diff(matrix.indptr)
    row_of = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((matrix.indices, -matrix.data, row_of))
    rank = np.arange(len(order)) - np.repeat(matrix.indptr[:-1], lengths)
    keep = order[rank < k]
    return sp.csr_matrix((matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape)
