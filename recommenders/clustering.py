"""Cluster users by listening pattern, then recommend what their cluster plays most.

A user is represented by the mean vector of their training songs, either Word2Vec song vectors
("word2vec", learnt here) or given song embeddings ("content", e.g. from the SimSong encoder),
minus the mean over users, at unit length. Centring removes the direction every user shares
(Word2Vec vectors of a small corpus have a strong one: users of different styles had cosine
~0.6 before centring, ~-0.15 after, in the planted worlds of the tests), so KMeans and
DBSCAN's cosine metric see the styles.

Score = the song's rank by (listeners in the user's cluster, then listeners overall, then lower
song index): the cluster's favourites first, the rest by global popularity. Users without a
cluster (DBSCAN noise, label -1, or no usable history) get global popularity.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN, KMeans

from recommenders.base import Recommender, l2_normalise, mean_profiles, rank_scores, song_counts
from recommenders.word2vec import Word2VecRecommender
from songdata.interactions import InteractionData

Representation = Literal["word2vec", "content"]


class _ClusterRecommender(Recommender):
    def __init__(
        self,
        representation: Representation,
        song_embeddings: np.ndarray | None,
        word2vec: Word2VecRecommender | None,
        seed: int,
    ) -> None:
        if representation not in ("word2vec", "content"):
            raise ValueError(
                f"{type(self).__name__}: representation must be 'word2vec' or 'content', got {representation!r}"
            )
        self.representation = representation
        self.song_embeddings = song_embeddings
        self.word2vec = word2vec
        self.seed = seed
        self.labels: np.ndarray | None = None
        self._global: torch.Tensor | None = None
        self._cluster_scores: sp.csr_matrix | None = None

    @abstractmethod
    def _cluster(self, x: np.ndarray) -> np.ndarray:
        """Cluster labels (>= 0, or -1 for no cluster) of unit-length user vectors [n, d]."""

    def user_representation(self, data: InteractionData) -> np.ndarray:
        """[n_users, d] centred, unit-length mean song vector of each user's history (zeros when unknown)."""
        x = self._mean_song_vectors(data)
        usable = np.any(x != 0, axis=1)
        x[usable] -= x[usable].mean(axis=0)
        return l2_normalise(x)

    def _mean_song_vectors(self, data: InteractionData) -> np.ndarray:
        if self.representation == "content":
            if self.song_embeddings is None:
                raise ValueError(f"{type(self).__name__}(representation='content'): song_embeddings is None")
            if len(self.song_embeddings) != data.n_songs:
                raise ValueError(
                    f"{type(self).__name__}: song_embeddings has {len(self.song_embeddings)} rows; "
                    f"expected {data.n_songs}, one per catalog song"
                )
            return mean_profiles(l2_normalise(np.asarray(self.song_embeddings)), data.histories)
        word2vec = self.word2vec or Word2VecRecommender(seed=self.seed)
        return word2vec.fit(data).user_vectors(data)

    def fit(self, data: InteractionData) -> Self:
        x = self.user_representation(data)
        usable = np.any(x != 0, axis=1)
        labels = np.full(data.n_users, -1, dtype=np.int64)
        if usable.any():
            labels[usable] = self._cluster(x[usable])
        self.labels = labels
        listened = (data.train != 0).astype(np.float32)
        overall = song_counts(data.train)
        self._global = torch.from_numpy(rank_scores(overall))
        self._cluster_scores = _cluster_rank_scores(labels, listened, overall)
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_cluster_scores")
        labels = self.labels[np.asarray(user_indices, dtype=np.int64)]
        rows = self._cluster_scores[np.where(labels >= 0, labels, self._cluster_scores.shape[0] - 1)]
        scores = self._global.repeat(len(labels), 1)
        row_of = np.repeat(np.arange(len(labels)), np.diff(rows.indptr))
        scores[torch.from_numpy(row_of), torch.from_numpy(rows.indices.astype(np.int64))] = torch.from_numpy(rows.data)
        return scores


def _cluster_rank_scores(labels: np.ndarray, listened: sp.csr_matrix, overall: np.ndarray) -> sp.csr_matrix:
    """Sparse [n_clusters + 1, n_songs]: n_songs + rank score for songs the cluster has heard.

    Adding n_songs puts every song the cluster heard above the global ranking (scores 1..n_songs);
    the last row (no cluster) is empty, which leaves global popularity. Exact in float32 below 2**23 songs.
    """
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    members = np.flatnonzero(labels >= 0)
    one_hot = sp.csr_matrix(
        (np.ones(len(members), np.float32), (labels[members], members)), shape=(n_clusters + 1, len(labels))
    )
    counts = sp.csr_matrix(one_hot @ listened)
    counts.sort_indices()
    n_songs = listened.shape[1]
    data = np.empty(counts.nnz, dtype=np.float32)
    for c in range(n_clusters):
        lo, hi = counts.indptr[c], counts.indptr[c + 1]
        songs = counts.indices[lo:hi]
        data[lo:hi] = n_songs + rank_scores(counts.data[lo:hi], overall[songs])
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)


class KMeansRecommender(_ClusterRecommender):
    """KMeans over users' listening representations; recommend each cluster's most played songs.

    Args:
        n_clusters: Number of user clusters.
        representation: "word2vec" (mean Word2Vec vector of the history) or "content"
            (mean of `song_embeddings` over the history).
        song_embeddings: [n_songs, d] song embeddings for representation="content".
        word2vec: The Word2Vec model for representation="word2vec" (default: Word2VecRecommender(seed=seed)).
        n_init: KMeans restarts; the best inertia wins.
        seed: Seed of KMeans (and of the default Word2Vec).
    """

    name = "kmeans"

    def __init__(
        self,
        n_clusters: int = 8,
        representation: Representation = "word2vec",
        song_embeddings: np.ndarray | None = None,
        word2vec: Word2VecRecommender | None = None,
        n_init: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__(representation, song_embeddings, word2vec, seed)
        self.n_clusters = n_clusters
        self.n_init = n_init

    def _cluster(self, x: np.ndarray) -> np.ndarray:
        n_clusters = min(self.n_clusters, len(x))
        return KMeans(n_clusters, n_init=self.n_init, random_state=self.seed).fit_predict(x)


class DBSCANRecommender(_ClusterRecommender):
    """DBSCAN (cosine distance) over users' listening representations; noise users get global popularity.

    Default eps = 0.15 (centred cosine similarity >= 0.85 to be neighbours), min_samples = 5: on
    planted worlds of 400 users and 8 styles (default Word2Vec representation) it recovers the
    styles exactly when users play 90% inside their style (any eps in 0.1-0.5 does), and best among
    eps 0.1-0.25 when they play 70% inside (8 clusters, 5% noise, ARI 0.95); larger eps chains
    the styles together through users who mix them. Tune it per dataset (a k-distance plot helps).

    Args:
        eps: Largest cosine distance (1 - cosine similarity) between two neighbours.
        min_samples: Neighbours (the user included) that make a user a core point.
        representation: "word2vec" or "content", as for KMeansRecommender.
        song_embeddings: [n_songs, d] song embeddings for representation="content".
        word2vec: The Word2Vec model for representation="word2vec" (default: Word2VecRecommender(seed=seed)).
        seed: Seed of the default Word2Vec (DBSCAN itself is deterministic).
    """

    name = "dbscan"

    def __init__(
        self,
        eps: float = 0.15,
        min_samples: int = 5,
        representation: Representation = "word2vec",
        song_embeddings: np.ndarray | None = None,
        word2vec: Word2VecRecommender | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(representation, song_embeddings, word2vec, seed)
        self.eps = eps
        self.min_samples = min_samples

    def _cluster(self, x: np.ndarray) -> np.ndarray:
        return DBSCAN(eps=self.eps, min_samples=self.min_samples, metric="cosine").fit_predict(x)
