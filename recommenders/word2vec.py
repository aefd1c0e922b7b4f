"""Song2vec: Word2Vec over listening histories, songs as words, users' histories as sentences.

Songs that appear close together in many histories get similar vectors. A user's vector is the
mean of their history's song vectors; songs are ranked by cosine to it. Songs that never occur
in training have no vector and score -inf, so cold-start songs cannot be ranked.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import torch
from gensim.models import Word2Vec

from songdata.interactions import InteractionData
from recommenders.base import Recommender, l2_normalise, mean_profiles

MAX_SENTENCE = 10_000
"""gensim silently truncates longer sentences; longer histories are cut into pieces of this length."""


class Word2VecRecommender(Recommender):
    """Word2Vec song vectors (gensim), users as the mean of their history's vectors.

    Args:
        vector_size: Dimension of the song vectors.
        window: Songs on each side of a song that count as its context.
        min_count: Songs heard fewer times in training get no vector.
        epochs: Passes over the histories.
        sg: 1 for skip-gram, 0 for CBOW.
        negative: Negative samples per positive.
        seed: Seed of initialisation and sampling (training runs on one worker, so it is reproducible).
    """

    name = "word2vec"

    def __init__(
        self,
        vector_size: int = 64,
        window: int = 5,
        min_count: int = 1,
        epochs: int = 10,
        sg: int = 1,
        negative: int = 5,
        seed: int = 0,
    ) -> None:
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.sg = sg
        self.negative = negative
        self.seed = seed
        self.song_vectors: np.ndarray | None = None
        self.known: np.ndarray | None = None
        self._songs: torch.Tensor | None = None
        self._profiles: torch.Tensor | None = None

    def fit(self, data: InteractionData) -> Self:
        sentences = [
            [str(song) for song in history[start : start + MAX_SENTENCE]]
            for history in data.histories
            for start in range(0, len(history), MAX_SENTENCE)
        ]
        if not sentences:
            raise ValueError("Word2VecRecommender: no training history to learn from")
        model = Word2Vec(
            sentences,
            vector_size=self.vector_size,
            window=self.window,
            min_count=self.min_count,
            epochs=self.epochs,
            sg=self.sg,
            negative=self.negative,
            seed=self.seed,
            workers=1,
        )
        vectors = np.zeros((data.n_songs, self.vector_size), dtype=np.float32)
        keys = np.array([int(key) for key in model.wv.index_to_key], dtype=np.int64)
        vectors[keys] = model.wv.vectors
        self.song_vectors = vectors
        self.known = np.zeros(data.n_songs, dtype=bool)
        self.known[keys] = True
        self._songs = torch.from_numpy(l2_normalise(vectors))
        self._profiles = torch.from_numpy(l2_normalise(self.user_vectors(data)))
        return self

    def user_vectors(self, data: InteractionData) -> np.ndarray:
        """[n_users, vector_size] mean of each user's history song vectors (zeros when none is known)."""
        self._require_fitted("song_vectors")
        return mean_profiles(self.song_vectors, data.histories, known=self.known)

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        self._require_fitted("_profiles")
        users = torch.as_tensor(np.asarray(user_indices, dtype=np.int64))
        scores = self._profiles[users] @ self._songs.T
        return scores.masked_fill_(torch.from_numpy(~self.known), -torch.inf)
