"""Audio I/O: decode anything libsndfile reads, mono at 16 kHz, and FLAC bytes for shards."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_DECODE_SECONDS = 20 * 60
"""Whole-song decoding (content embeddings, taste scores) stops here: a 10-hour member is not decoded whole."""


def to_mono_16k(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix `[frames]` or `[frames, channels]` audio to mono float32 at 16 kHz."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave[:, 0] if wave.shape[1] == 1 else wave.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        wave = AF.resample(torch.from_numpy(wave), sample_rate, SAMPLE_RATE).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def read_audio(path: str | Path) -> np.ndarray:
    """Decode an audio file (wav, flac, ogg, mp3, ...) to mono float32 at 16 kHz."""
    wave, sample_rate = sf.read(str(path), dtype="float32", always_2d=False)
    return to_mono_16k(wave, sample_rate)


def encode_flac(wave: np.ndarray) -> bytes:
    """16-bit FLAC bytes of a mono 16 kHz waveform (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_audio_bytes(data: bytes, max_seconds: float = MAX_DECODE_SECONDS) -> np.ndarray:
    """Decode audio bytes from a shard to mono float32 at 16 kHz: at most the first `max_seconds`.

    Decoded ten seconds at a time, so memory stays bounded by the output whatever the file holds
    (a 10-hour or 48 kHz stereo member costs no more than `max_seconds` at 16 kHz mono).

    Raises:
        ValueError: The audio has no samples, or NaN or infinite ones.
    """
    with sf.SoundFile(io.BytesIO(data)) as f:
        wanted = min(f.frames, int(max_seconds * f.samplerate))
        blocks = [to_mono_16k(block, f.samplerate)
                  for block in f.blocks(blocksize=10 * f.samplerate, frames=wanted, dtype="float32", always_2d=True)]
        if f.frames > wanted:
            log.warning("audio of %.0f s: only its first %.0f s are decoded", f.frames / f.samplerate, max_seconds)
    wave = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    _require_samples(wave)
    return wave


def _require_samples(wave: np.ndarray) -> None:
    if wave.size == 0:
        raise ValueError("audio has 0 samples")
    if not np.isfinite(wave).all():
        raise ValueError(f"audio has {int((~np.isfinite(wave)).sum())} NaN or infinite sample(s)")


def decode_segments(data: bytes, length: int, starts: Callable[[int], Sequence[int]]) -> tuple[np.ndarray, int]:
    """`[len(starts), length]` segments of a song, and its length in frames, decoding only the segments.

    `starts(frames)` picks where they begin (in 16 kHz frames). Shards hold 16 kHz mono FLAC, where
    libsndfile seeks sample-exactly, so two 3-s crops of a 3-minute song cost two 3-s decodes instead
    of 180 s (16× faster, see benchmarks/README.md). Other rates and channel counts are read the same
    way, only the stretch of each segment, then mixed and resampled: an hours-long member costs no
    more memory than a short one. Segments running past the end are zero-padded.
    """
    with sf.SoundFile(io.BytesIO(data)) as f:
        frames = f.frames * SAMPLE_RATE // f.samplerate
        segments = [_read_16k(f, start, length) for start in starts(frames)]
    padded = [np.pad(s, (0, length - len(s))) if len(s) < length else s for s in segments]
    return np.stack(padded).astype(np.float32, copy=False), frames


def _read_16k(f: sf.SoundFile, start: int, length: int) -> np.ndarray:
    """`length` frames of mono 16 kHz audio from 16 kHz frame `start`, decoding only that stretch."""
    if f.samplerate == SAMPLE_RATE:
        f.seek(min(start, f.frames))
        return to_mono_16k(f.read(length, dtype="float32", always_2d=True), SAMPLE_RATE)
    f.seek(min(start * f.samplerate // SAMPLE_RATE, f.frames))
    block = f.read(-(-length * f.samplerate // SAMPLE_RATE), dtype="float32", always_2d=True)
    return to_mono_16k(block, f.samplerate)[:length]
