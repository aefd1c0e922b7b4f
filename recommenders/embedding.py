"""Rank songs by cosine similarity between a user's taste profile and song embeddings.

A profile is the mean of the (unit-length) embeddings of the user's training songs. Any song
with an embedding can be ranked, heard or not, so cold-start songs are ranked too. The content
recommender (SimSong checkpoint) overrides `song_embeddings_for` to embed the catalog itself.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import torch

from recommenders.base import Recommender, l2_normalise, mean_profiles
from recommenders.scoring import dot_scores
from songdata.interactions import InteractionData


class EmbeddingRecommender(Recommender):
    """Cosine similarity between mean-of-history profiles and fixed song embeddings.

    Args:
        song_embeddings: [n_songs, d] one row per catalog song (row i = song index i). Rows of
            zeros mark songs without an embedding: they score -inf.
    """

    name = "embedding"
    can_rank_cold = True

    def __init__(self, song_embeddings: np.ndarray | None = None) -> None:
        self.song_embeddings = song_embeddings
        self._songs: torch.Tensor | None = None
        self._profiles: torch.Tensor | None = None
        self._unrankable: torch.Tensor | None = None

    def song_embeddings_for(self, data: InteractionData) -> np.ndarray:
        """[n_songs, d] embeddings of the catalog; subclasses compute them here (e.g. from a checkpoint)."""
        if self.song_embeddings is None:
            raise ValueError(f"{type(self).__name__}: song_embeddings is None; pass an [n_songs, d] array")
        return np.asarray(self.song_embeddings, dtype=np.float32)

    def fit(self, data: InteractionData) -> Self:
        embeddings = self.song_embeddings_for(data)
        if embeddings.ndim != 2 or len(embeddings) != data.n_songs:
            raise ValueError(
                f"{type(self).__name__}: song embeddings have shape {embeddings.shape}; "
                f"expected ({data.n_songs}, d), one row per catalog song"
            )
        songs = l2_normalise(embeddings)
        self._songs = torch.from_numpy(songs)
        self._profiles = torch.from_numpy(l2_normalise(mean_profiles(songs, data.histories)))
        self._unrankable = torch.from_numpy(~np.any(songs != 0, axis=1))
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_profiles")
        users = torch.as_tensor(np.asarray(user_indices, dtype=np.int64))
        return dot_scores(self._profiles[users], self._songs, out).masked_fill_(self._unrankable, -torch.inf)
