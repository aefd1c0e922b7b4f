"""Non-personalised baselines: most popular songs, and a seeded random ranking."""

from __future__ import annotations

from typing import Self

import numpy as np
import torch

from recommenders.base import Recommender, rank_scores, song_counts
from songdata.interactions import InteractionData


class PopularityRecommender(Recommender):
    """Every user gets the songs with the most training interactions.

    Args:
        weighted: Count summed interaction weights (play counts) instead of distinct listeners.
    """

    name = "popularity"

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted
        self._scores: torch.Tensor | None = None

    def fit(self, data: InteractionData) -> Self:
        # Distinct scores: equal counts go to the lower song index.
        self._scores = torch.from_numpy(rank_scores(song_counts(data.train, self.weighted)))
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_scores")
        return self._scores.expand(len(user_indices), -1)


class RandomRecommender(Recommender):
    """Uniform random scores, the chance level of every metric.

    A user's scores depend only on (seed, user index), so they do not change with chunking.
    Random scores are also given to cold songs: chance is chance on every slice.

    Args:
        seed: Seed of the scores.
    """

    name = "random"
    can_rank_cold = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._n_songs: int | None = None

    def fit(self, data: InteractionData) -> Self:
        self._n_songs = data.n_songs
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_n_songs")
        rows = [
            np.random.default_rng([self.seed, int(u)]).random(self._n_songs, dtype=np.float32) for u in user_indices
        ]
        return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, self._n_songs)
