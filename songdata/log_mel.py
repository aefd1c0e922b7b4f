"""A song's mean log-mel spectrum: the cheapest audio summary, shared by the audio-only baseline and reference figures."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from songdata.audio import SAMPLE_RATE

N_MELS = 48


@lru_cache(maxsize=1)
def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=512, n_mels=N_MELS)


def mean_log_mel(wave: np.ndarray) -> np.ndarray:
    """float32 [N_MELS]: the log-mel spectrogram of a 16 kHz mono waveform, averaged over time."""
    with torch.no_grad():
        spectrogram = _mel()(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    return torch.log(spectrogram + 1e-6).mean(dim=1).numpy().astype(np.float32)
