"""Embed a whole catalog with a trained SimSong model: audio from the shards, lyrics from the catalog."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from songdata.shards import SHARDS_DIR, iter_shard_songs
from lightning_modules.simsong import SimSongModule

log = logging.getLogger(__name__)

Fuse = Literal["audio", "lyrics", "both"]


def _segments(wave: np.ndarray, length: int) -> torch.Tensor:
    wave_t = torch.from_numpy(wave)
    if len(wave_t) < length:
        return F.pad(wave_t, (0, length - len(wave_t)))[None]
    return wave_t.unfold(0, length, length)


@torch.no_grad()
def embed_audio_catalog(
    module: SimSongModule, root: str | Path, n_songs: int, batch_segments: int = 64, skipped: Counter | None = None
) -> np.ndarray:
    """[n_songs, D] mean of each song's segment embeddings; zero rows for songs without audio.

    Why songs have no audio is counted in `skipped` (see `iter_shard_songs`; songs in no readable
    shard count as `not found in the shards`) and logged, so that no song drops out unreported.
    """
    length = int(round(module.hparams.segment_seconds * module.hparams.sample_rate))
    out = np.zeros((n_songs, module.hparams.embed_dim), dtype=np.float32)
    pending: list[tuple[int, torch.Tensor]] = []
    skipped = Counter() if skipped is None else skipped
    embedded: set[int] = set()

    def flush() -> None:
        segments = torch.cat([s for _, s in pending])
        embeddings = module.embed_audio(segments).cpu()
        for (song, s), chunk in zip(pending, embeddings.split([len(s) for _, s in pending])):
            out[song] = F.normalize(chunk.mean(0), dim=0).numpy()
        pending.clear()

    for song, wave in tqdm(iter_shard_songs(root, skipped=skipped), total=n_songs, desc="embedding audio", unit="song"):
        pending.append((song, _segments(wave, length)))
        embedded.add(song)
        if sum(len(s) for _, s in pending) >= batch_segments:
            flush()
    if pending:
        flush()
    missing = n_songs - len(embedded)
    if missing:
        if missing > skipped["undecodable audio"]:
            skipped["not found in the shards"] += missing - skipped["undecodable audio"]
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()) if n)
        log.warning("%s: %d of %d songs have no audio embedding (%s)", root, missing, n_songs, reasons)
    return out


@torch.no_grad()
def embed_lyrics_catalog(module: SimSongModule, catalog: pd.DataFrame, batch_size: int = 64) -> np.ndarray:
    """[n_songs, D] lyric embeddings; zero rows for songs without lyrics."""
    lyrics = catalog["lyrics"].fillna("").astype(str).tolist()
    out = np.zeros((len(lyrics), module.hparams.embed_dim), dtype=np.float32)
    have = [i for i, text in enumerate(lyrics) if text.strip()]
    for start in range(0, len(have), batch_size):
        rows = have[start : start + batch_size]
        out[rows] = module.embed_lyrics([lyrics[i] for i in rows]).cpu().numpy()
    return out


def fuse_embeddings(audio: np.ndarray | None, lyrics: np.ndarray | None) -> np.ndarray:
    """Mean of the unit vectors a song has (audio, lyrics or both), re-normalised; zeros if none."""
    parts = [p for p in (audio, lyrics) if p is not None]
    total = np.sum(parts, axis=0)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.divide(total, norm, out=np.zeros_like(total), where=norm > 0)


def embed_catalog(
    module: SimSongModule, root: str | Path, catalog: pd.DataFrame, fuse: Fuse = "both", skipped: Counter | None = None
) -> np.ndarray:
    """Song embeddings of the whole catalog, from audio, lyrics or both; `skipped` counts songs without audio."""
    has_shards = (Path(root) / SHARDS_DIR / "index.json").exists()
    use_audio = fuse != "lyrics" and has_shards
    audio = embed_audio_catalog(module, root, len(catalog), skipped=skipped) if use_audio else None
    lyrics = embed_lyrics_catalog(module, catalog) if fuse != "audio" else None
    if audio is None and lyrics is None:
        raise ValueError(f"{root}: no shards, so no audio to embed; use fuse='lyrics' or 'both'")
    return fuse_embeddings(audio, lyrics)
