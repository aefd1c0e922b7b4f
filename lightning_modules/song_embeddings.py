"""The one song embedder: a SimSong model turns a dataset's songs into audio and lyric embeddings.

Used alike by the training callbacks, the leaderboard and the content recommender.

Audio is embedded in windows of the model's `segment_seconds`, the length it saw in training, with one
rule for short songs: **a song shorter than one window is zero-padded at the end to one window** (as the
training pipeline pads a segment that runs past the end). With `crop="whole"` a song's audio embedding
is the normalised mean over its consecutive windows (a trailing part shorter than a window is left out
unless it is the whole song); with `crop="centre"` it is the one window in the middle of the song
(cheaper; what the training callbacks use by default).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lightning_modules.simsong import SimSongModule
from songdata import SongDataset

log = logging.getLogger(__name__)

Fuse = Literal["audio", "lyrics", "both"]
Crop = Literal["whole", "centre"]


def song_windows(wave: np.ndarray, length: int, crop: Crop = "whole") -> torch.Tensor:
    """`[n, length]` windows of a waveform by the short-song rule of this module's docstring."""
    wave_t = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if len(wave_t) < length:
        return F.pad(wave_t, (0, length - len(wave_t)))[None]
    if crop == "centre":
        start = (len(wave_t) - length) // 2
        return wave_t[start : start + length][None]
    return wave_t.unfold(0, length, length)


def fuse_embeddings(audio: np.ndarray | None, lyrics: np.ndarray | None) -> np.ndarray:
    """Mean of the unit vectors a song has (audio, lyrics or both), re-normalised; zeros if none."""
    parts = [p for p in (audio, lyrics) if p is not None]
    total = np.sum(parts, axis=0)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.divide(total, norm, out=np.zeros_like(total), where=norm > 0)


class SongEmbedder:
    """`[n_songs, D]` song embeddings of a dataset with a SimSong model; zero rows for songs left out.

    Args:
        fuse: Embed songs from their `audio`, their `lyrics`, or `both` (mean of the two unit vectors).
        crop: `whole` songs or one `centre` window each (see the module docstring).
        batch_segments: Audio windows embedded at once.
        max_cached_mb: Keep the decoded windows in memory up to this size, so that a later call
            (the next evaluation during training) does not decode again; 0 keeps none.
        show_progress: A progress bar while embedding audio.
    """

    def __init__(
        self, fuse: Fuse = "both", crop: Crop = "whole", batch_segments: int = 64, max_cached_mb: int = 0,
        show_progress: bool = True,
    ) -> None:
        self.fuse, self.crop, self.batch_segments = fuse, crop, batch_segments
        self.max_cached_mb, self.show_progress = max_cached_mb, show_progress
        self.skipped: Counter = Counter()  # why songs have no audio embedding, by reason (of the last call)
        self._cache: list[tuple[list[int], torch.Tensor, list[int]]] | None = None

    @torch.no_grad()
    def embed(self, module: SimSongModule, dataset: SongDataset, songs: np.ndarray | None = None) -> np.ndarray:
        """Embeddings of `songs` (default: the whole catalog); `self.skipped` tells why songs lack audio."""
        n_songs = len(dataset.catalog)
        songs = np.arange(n_songs) if songs is None else np.asarray(songs)
        use_audio = self.fuse != "lyrics" and dataset.has_audio
        if self.fuse == "audio" and not dataset.has_audio:
            raise ValueError(f"{dataset.root}: no shards, so no audio to embed; use fuse='lyrics' or 'both'")
        audio = self._embed_audio(module, dataset, songs) if use_audio else None
        lyrics = None
        if self.fuse != "audio":
            lyrics = np.zeros((n_songs, module.hparams.embed_dim), dtype=np.float32)
            lyrics[songs] = embed_lyrics(module, dataset.catalog.iloc[songs])
        return fuse_embeddings(audio, lyrics)

    def _embed_audio(self, module: SimSongModule, dataset: SongDataset, songs: np.ndarray) -> np.ndarray:
        out = np.zeros((len(dataset.catalog), module.hparams.embed_dim), dtype=np.float32)
        self.skipped = Counter()
        embedded = 0
        for batch_songs, windows, counts in self._window_batches(module, dataset, songs):
            chunks = module.embed_audio(windows).float().cpu().split(counts)
            for song, chunk in zip(batch_songs, chunks):
                out[song] = F.normalize(chunk.mean(0), dim=0).numpy()
            embedded += len(batch_songs)
        missing = len(songs) - embedded
        if missing:
            if missing > self.skipped["undecodable audio"]:
                self.skipped["not found in the shards"] += missing - self.skipped["undecodable audio"]
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()) if n)
            log.warning("%s: %d of %d songs have no audio embedding (%s)", dataset.root, missing, len(songs), reasons)
        return out

    def _window_batches(
        self, module: SimSongModule, dataset: SongDataset, songs: np.ndarray
    ) -> Iterator[tuple[list[int], torch.Tensor, list[int]]]:
        """(songs, their windows stacked, windows per song) in batches; from the cache when it holds them."""
        if self._cache is not None:
            yield from self._cache
            return
        length = int(round(module.hparams.segment_seconds * module.hparams.sample_rate))
        cache: list | None = [] if self.max_cached_mb > 0 else None
        cached_bytes, pending = 0, []
        stream = dataset.iter_songs(songs, skipped=self.skipped)
        if self.show_progress:
            stream = tqdm(stream, total=len(songs), desc="embedding audio", unit="song")
        for song, wave in stream:
            pending.append((song, song_windows(wave, length, self.crop)))
            if sum(len(w) for _, w in pending) >= self.batch_segments:
                batch = _stack(pending)
                pending = []
                cache, cached_bytes = self._keep(cache, batch, cached_bytes)
                yield batch
        if pending:
            batch = _stack(pending)
            cache, cached_bytes = self._keep(cache, batch, cached_bytes)
            yield batch
        self._cache = cache

    def _keep(self, cache: list | None, batch: tuple, cached_bytes: int) -> tuple[list | None, int]:
        if cache is None:
            return None, cached_bytes
        cached_bytes += batch[1].numel() * batch[1].element_size()
        if cached_bytes > self.max_cached_mb * 2**20:
            log.info("SongEmbedder: decoded windows exceed max_cached_mb=%d; decoding them each time",
                     self.max_cached_mb)
            return None, cached_bytes
        return cache + [batch], cached_bytes


def _stack(pending: list[tuple[int, torch.Tensor]]) -> tuple[list[int], torch.Tensor, list[int]]:
    return [s for s, _ in pending], torch.cat([w for _, w in pending]), [len(w) for _, w in pending]


@torch.no_grad()
def embed_lyrics(module: SimSongModule, catalog: pd.DataFrame, batch_size: int = 64) -> np.ndarray:
    """[len(catalog), D] lyric embeddings of catalog rows; zero rows for songs without lyrics."""
    lyrics = catalog["lyrics"].fillna("").astype(str).tolist()
    out = np.zeros((len(lyrics), module.hparams.embed_dim), dtype=np.float32)
    have = [i for i, text in enumerate(lyrics) if text.strip()]
    for start in range(0, len(have), batch_size):
        rows = have[start : start + batch_size]
        out[rows] = module.embed_lyrics([lyrics[i] for i in rows]).cpu().numpy()
    return out
