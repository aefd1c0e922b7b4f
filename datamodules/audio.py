"""Audio I/O: decode anything libsndfile reads, mono at 16 kHz, and FLAC bytes for shards."""

from __future__ import annotations

import io
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
