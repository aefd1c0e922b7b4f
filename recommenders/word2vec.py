"""Song2vec: Word2Vec over listening histories, songs as words, users' histories as sentences.

Songs that appear close together in many histories get similar vectors. A user's vector is the
mean of their history's song (input) vectors. `scoring: output` ranks songs by its dot product
with their output (context) vectors: the skip-gram's own log-linear score of a song appearing in
the context of the user's songs, which keeps the popularity that negative sampling learns.
`scoring: cosine` ranks by cosine to the input vectors (item2vec's song-to-song similarity), which
normalises popularity away: on HetRec lastfm-2k (validation) it gave Recall@10 0.0085 against 0.142
for `output` (window 1000, 20 epochs) and 0.071 for popularity. Songs that never occur in training
have no vector and score -inf, so cold-start songs cannot be ranked.

A history is a set more than a sequence on many datasets (HetRec lists artists by id): a window
at least as long as the longest history makes every pair of a user's songs a (song, context) pair.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import torch
from gensim.models import Word2Vec

from recommenders.base import Recommender, l2_normalise, mean_profiles
from recommenders.scoring import dot_scores
from songdata.interactions import InteractionData

MAX_SENTENCE = 10_000
"""gensim silently truncates longer sentences; longer histories are cut into pieces of this length."""


class Word2VecRecommender(Recommender):
    """Word2Vec song vectors (gensim), users as the mean of their history's vectors.

    Args:
        vector_size: Dimension of the song vectors.
        window: Songs on each side of a song that count as its context (>= the longest history: all of it).
        min_count: Songs heard fewer times in training get no vector.
        epochs: Passes over the histories.
        sg: 1 for skip-gram, 0 for CBOW.
        negative: Negative samples per positive.
        sample: gensim's subsampling threshold of frequent songs; 0 (off) by default: a catalog is a
            small vocabulary, so its default 1e-3 drops most plays of most songs (on a 300-song
            test world, Recall@10 0.18 with it, 0.66 without).
        scoring: `output` (user vector · song output vectors) or `cosine` (to song input vectors).
        seed: Seed of initialisation and sampling (training runs on one worker, so it is reproducible on one CPU;
            another CPU's float rounding can move the last digit of its metrics).
    """

    name = "word2vec"

    def __init__(
        self,
        vector_size: int = 64,
        window: int = 1000,
        min_count: int = 1,
        epochs: int = 10,
        sg: int = 1,
        negative: int = 5,
        sample: float = 0.0,
        scoring: Literal["output", "cosine"] = "output",
        seed: int = 0,
    ) -> None:
        if scoring not in ("output", "cosine"):
            raise ValueError(f"Word2VecRecommender.scoring: expected output or cosine, got {scoring!r}")
        if scoring == "output" and negative < 1:
            raise ValueError("Word2VecRecommender: scoring 'output' reads negative sampling's output vectors; "
                             f"set negative >= 1 (got {negative}) or scoring 'cosine'")
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.sg = sg
        self.negative = negative
        self.sample = sample
        self.scoring = scoring
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
            sample=self.sample,
            seed=self.seed,
            workers=1,
        )
        keys = np.array([int(key) for key in model.wv.index_to_key], dtype=np.int64)
        self.song_vectors = _by_song(model.wv.vectors, keys, data.n_songs)
        self.known = np.zeros(data.n_songs, dtype=bool)
        self.known[keys] = True
        profiles = self.user_vectors(data)
        if self.scoring == "output":
            self._songs = torch.from_numpy(_by_song(model.syn1neg, keys, data.n_songs))
            self._profiles = torch.from_numpy(profiles.astype(np.float32))
        else:
            self._songs = torch.from_numpy(l2_normalise(self.song_vectors))
            self._profiles = torch.from_numpy(l2_normalise(profiles))
        return self

    def user_vectors(self, data: InteractionData) -> np.ndarray:
        """[n_users, vector_size] mean of each user's history song vectors (zeros when none is known)."""
        self._require_fitted("song_vectors")
        return mean_profiles(self.song_vectors, data.histories, known=self.known)

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_profiles")
        users = torch.as_tensor(np.asarray(user_indices, dtype=np.int64))
        scores = dot_scores(self._profiles[users], self._songs, out)
        return scores.masked_fill_(torch.from_numpy(~self.known), -torch.inf)


def _by_song(vectors: np.ndarray, keys: np.ndarray, n_songs: int) -> np.ndarray:
    """gensim's vectors (in its vocabulary order) as rows of song indices; zeros for songs without one."""
    out = np.zeros((n_songs, vectors.shape[1]), dtype=np.float32)
    out[keys] = vectors
    return out
