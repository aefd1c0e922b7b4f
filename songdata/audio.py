"""Audio I/O: decode anything libsndfile reads, mono at 16 kHz, and FLAC bytes for shards."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16_000


def to_mono_16k(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix `[frames]` or `[frames, channels]` audio to mono float32 at 16 kHz."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
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


def decode_audio_bytes(data: bytes) -> np.ndarray:
    """Decode audio bytes from a shard to mono float32 at 16 kHz."""
    wave, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_mono_16k(wave, sample_rate)


def decode_segments(data: bytes, length: int, starts: Callable[[int], Sequence[int]]) -> tuple[np.ndarray, int]:
    """`[len(starts), length]` segments of a song, and its length in frames, decoding only the segments.

    `starts(frames)` picks where they begin. Shards hold 16 kHz mono FLAC, where libsndfile seeks
    sample-exactly, so two 3-s crops of a 3-minute song cost two 3-s decodes instead of 180 s (16× faster,
    see benchmarks/README.md); other rates or channel counts are decoded whole and converted first.
    Segments running past the end are zero-padded.
    """
    with sf.SoundFile(io.BytesIO(data)) as f:
        if f.samplerate == SAMPLE_RATE and f.channels == 1:
            frames = f.frames
            segments = []
            for start in starts(frames):
                f.seek(start)
                segments.append(f.read(length, dtype="float32"))
        else:
            wave = to_mono_16k(f.read(dtype="float32", always_2d=False), f.samplerate)
            frames = len(wave)
            segments = [wave[start : start + length] for start in starts(frames)]
    padded = [np.pad(s, (0, length - len(s))) if len(s) < length else s for s in segments]
    return np.stack(padded).astype(np.float32, copy=False), frames
