"""Per-song production of a rendered demo song: brightness (a low-pass tilt), room (reverb) and a noise floor.

The composer's `SongPlan` says how much of each; the easy world's plans ask for none, so its audio is untouched.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from prepare.demo.composer import SongPlan

PEAK = 0.89
# Comb delays (seconds) and their feedback: a small room, cheap enough for every song.
COMB_DELAYS_S: tuple[float, ...] = (0.0297, 0.0371, 0.0411, 0.0437)
COMB_FEEDBACK = 0.78


def low_pass(wave: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """One-pole low-pass: a gentle treble roll-off, as a darker mix or an older recording."""
    c = float(np.exp(-2 * np.pi * cutoff_hz / sample_rate))
    return lfilter([1.0 - c], [1.0, -c], wave).astype(np.float32)


def feedback_comb(wave: np.ndarray, delay: int, feedback: float) -> np.ndarray:
    """y[n] = x[n] + feedback * y[n - delay], a block of `delay` samples at a time."""
    out = wave.astype(np.float32).copy()
    for start in range(delay, len(out), delay):
        stop = min(start + delay, len(out))
        out[start:stop] += feedback * out[start - delay : stop - delay]
    return out


def reverb(wave: np.ndarray, amount: float, sample_rate: int) -> np.ndarray:
    """Parallel feedback combs mixed in at `amount` (0 = dry)."""
    wet = sum(feedback_comb(wave, int(d * sample_rate), COMB_FEEDBACK) for d in COMB_DELAYS_S)
    wet *= (1 - COMB_FEEDBACK) / len(COMB_DELAYS_S) * 2.5
    return (1 - amount) * wave + amount * wet


def produce(wave: np.ndarray, plan: SongPlan, sample_rate: int, seed: int) -> np.ndarray:
    """`wave` with the plan's brightness, reverb and noise floor, peak-normalised (a copy)."""
    out = wave.astype(np.float32)
    if plan.brightness < 1.0:
        out = low_pass(out, 700.0 * 2.0 ** (3.5 * plan.brightness), sample_rate)
    if plan.reverb > 0:
        out = reverb(out, plan.reverb, sample_rate)
    if plan.noise > 0:
        out = out / max(np.abs(out).max(), 1e-9)
        out = out + plan.noise * np.random.default_rng([seed, 4]).standard_normal(len(out)).astype(np.float32)
    peak = np.abs(out).max()
    return (out * (PEAK / peak) if peak > 0 else out).astype(np.float32)
