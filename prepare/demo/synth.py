"""A small additive/FM synthesiser that renders any `PrettyMIDI` to mono audio, with no sound font.

Every General MIDI program gets a `Timbre` (its family's, or a program-specific one): a
harmonic spectrum whose upper partials may die faster (plucks, filter sweeps), an ADSR
envelope, optional FM, detune, vibrato, breath noise and saturation. Drum notes (on
`is_drum` instruments) are noise-and-tone hits looked up by GM percussion key. Each note
is rendered as one vectorised numpy expression; rendering is deterministic for a given MIDI.
Pitch bends and controllers are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pretty_midi
from scipy.signal import lfilter

from songdata.audio import SAMPLE_RATE

PEAK = 0.89


@dataclass(frozen=True)
class Timbre:
    """How one instrument sounds.

    Attributes:
        harmonics: Amplitude of partial 1, 2, 3, ... (partials above Nyquist are dropped).
        attack, decay, sustain, release: Envelope in seconds (sustain is a level); decay is exponential.
        damping: Extra decay rate (1/s) per partial number: high partials fade first, like a pluck or a closing filter.
        fm_ratio, fm_index: Modulator frequency (× f0) and depth (radians) of a simple FM voice; index 0 turns it off.
        detune_cents: A second, detuned oscillator (chorus) when non-zero.
        vibrato_hz, vibrato_cents: Pitch vibrato.
        noise: Share of envelope-shaped white noise (breath, bow, pick).
        drive: tanh saturation (0 = clean), for overdriven guitars and leads.
        gain: Level in the mix.
    """

    harmonics: tuple[float, ...] = (1.0,)
    attack: float = 0.01
    decay: float = 0.3
    sustain: float = 0.7
    release: float = 0.1
    damping: float = 0.0
    fm_ratio: float = 0.0
    fm_index: float = 0.0
    detune_cents: float = 0.0
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    noise: float = 0.0
    drive: float = 0.0
    gain: float = 1.0


def _saw(n: int) -> tuple[float, ...]:
    return tuple(1.0 / k for k in range(1, n + 1))


def _square(n: int) -> tuple[float, ...]:
    return tuple((1.0 / k if k % 2 else 0.0) for k in range(1, n + 1))


# One timbre per General MIDI family (program // 8), so every program has a sensible sound.
FAMILY_TIMBRES: tuple[Timbre, ...] = (
    Timbre((1, 0.6, 0.3, 0.2, 0.12, 0.08, 0.05), 0.003, 1.2, 0.0, 0.25, damping=1.5),  # piano
    Timbre((1, 0, 0.4, 0, 0.15), 0.002, 0.8, 0.0, 0.4, fm_ratio=3.5, fm_index=1.5),  # chromatic percussion
    Timbre((1, 0.8, 0.6, 0.5, 0.3, 0.3, 0.2, 0.2), 0.02, 0.1, 1.0, 0.08, vibrato_hz=6, vibrato_cents=8),  # organ
    Timbre(_saw(10), 0.003, 1.0, 0.05, 0.15, damping=3.0, noise=0.02),  # guitar
    Timbre((1, 0.5, 0.2, 0.1), 0.005, 0.6, 0.4, 0.08, damping=2.0, gain=1.3),  # bass
    Timbre(_saw(12), 0.12, 0.3, 0.85, 0.3, vibrato_hz=5.5, vibrato_cents=12, noise=0.02, gain=0.7),  # strings
    Timbre(_saw(8), 0.25, 0.5, 0.9, 0.5, detune_cents=9, gain=0.6),  # ensemble
    Timbre(_saw(14), 0.05, 0.2, 0.8, 0.1, damping=0.3, vibrato_hz=5, vibrato_cents=6, gain=0.7),  # brass
    Timbre(_square(11), 0.04, 0.2, 0.8, 0.1, vibrato_hz=5, vibrato_cents=10, noise=0.04, gain=0.8),  # reed
    Timbre((1, 0.15, 0.05), 0.06, 0.2, 0.85, 0.15, vibrato_hz=5, vibrato_cents=10, noise=0.08),  # pipe
    Timbre(_saw(16), 0.01, 0.2, 0.8, 0.1, detune_cents=12, gain=0.6),  # synth lead
    Timbre(_saw(6), 0.4, 0.8, 0.8, 0.8, detune_cents=15, gain=0.5),  # synth pad
    Timbre((1, 0.3, 0.2), 0.2, 1.0, 0.5, 0.6, fm_ratio=1.5, fm_index=2.0, gain=0.5),  # synth effects
    Timbre(_saw(8), 0.003, 0.6, 0.0, 0.2, damping=4.0),  # ethnic (plucked)
    Timbre((1, 0.5, 0.3), 0.001, 0.25, 0.0, 0.05, fm_ratio=2.7, fm_index=3.0),  # percussive
    Timbre((1.0,), 0.1, 0.5, 0.5, 0.3, noise=0.6, gain=0.4),  # sound effects
)

# Programs that the demo styles use and that should not sound like the rest of their family.
PROGRAM_TIMBRES: dict[int, Timbre] = {
    4: Timbre((1, 0.2, 0.05), 0.003, 1.5, 0.1, 0.3, fm_ratio=1.0, fm_index=1.8, damping=1.0),  # Rhodes-like e-piano
    7: Timbre(_square(12), 0.001, 0.18, 0.0, 0.04, damping=6.0, drive=1.5, gain=0.8),  # clavinet
    11: Timbre((1, 0, 0, 0.3), 0.001, 1.5, 0.0, 0.5, fm_ratio=4.0, fm_index=0.8),  # vibraphone
    24: Timbre(_saw(8), 0.003, 1.2, 0.0, 0.2, damping=5.0, noise=0.01),  # nylon guitar
    25: Timbre(_saw(14), 0.002, 1.5, 0.0, 0.2, damping=3.0, noise=0.03),  # steel guitar
    29: Timbre(_saw(12), 0.003, 0.8, 0.6, 0.1, damping=1.0, drive=4.0, gain=0.6),  # overdriven guitar
    30: Timbre(_saw(16), 0.002, 0.6, 0.7, 0.08, damping=0.5, drive=9.0, detune_cents=8, gain=0.55),  # distortion guitar
    32: Timbre((1, 0.4, 0.15), 0.01, 0.9, 0.2, 0.1, damping=3.0, gain=1.4),  # acoustic bass
    34: Timbre(_saw(8), 0.002, 0.5, 0.5, 0.06, damping=2.0, drive=1.5, gain=1.1),  # picked bass
    36: Timbre(_saw(10), 0.001, 0.3, 0.3, 0.05, damping=5.0, fm_ratio=1.0, fm_index=1.0, gain=1.2),  # slap bass
    38: Timbre(_saw(12), 0.002, 0.25, 0.6, 0.05, damping=4.0, drive=2.0, gain=1.0),  # synth bass
    61: Timbre(_saw(16), 0.03, 0.15, 0.7, 0.06, damping=0.2, detune_cents=6, gain=0.55),  # brass section
    73: Timbre((1, 0.1, 0.03), 0.05, 0.2, 0.8, 0.12, vibrato_hz=5, vibrato_cents=12, noise=0.1),  # flute
    80: Timbre(_square(15), 0.005, 0.1, 0.7, 0.05, gain=0.45),  # square lead
    81: Timbre(_saw(20), 0.005, 0.3, 0.7, 0.1, detune_cents=18, drive=1.0, gain=0.45),  # saw lead
    89: Timbre(_saw(8), 0.6, 1.0, 0.9, 1.0, detune_cents=20, vibrato_hz=0.3, vibrato_cents=6, gain=0.45),  # warm pad
}


def timbre_for(program: int) -> Timbre:
    """The timbre of a General MIDI program (0-127); unknown programs fall back to their family's."""
    return PROGRAM_TIMBRES.get(program, FAMILY_TIMBRES[(program % 128) // 8])


def envelope(t: np.ndarray, duration: float, timbre: Timbre) -> np.ndarray:
    """ADSR with exponential decay; the release starts from wherever the note was when it ended."""
    a = max(timbre.attack, 1e-4)
    decay_rate = 1.0 / max(timbre.decay, 1e-3)

    def ads(x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        rise = x / a
        fall = timbre.sustain + (1.0 - timbre.sustain) * np.exp(-(x - a) * decay_rate)
        return np.where(x < a, rise, fall)

    level_at_end = float(ads(duration))
    release = level_at_end * np.clip(1.0 - (t - duration) / max(timbre.release, 1e-3), 0.0, 1.0)
    return np.where(t < duration, ads(t), release)


def render_note(
    timbre: Timbre, pitch: int, velocity: int, duration: float, sample_rate: int, seed: int | list[int] = 0
) -> np.ndarray:
    """One pitched note, including its release tail (float32; `seed` fixes its noise)."""
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    n = max(int(round((duration + timbre.release) * sample_rate)), 1)
    t = np.arange(n) / sample_rate
    env = envelope(t, duration, timbre).astype(np.float32)
    amps = np.asarray(timbre.harmonics, dtype=np.float64)
    k = np.arange(1, len(amps) + 1)
    keep = (k * f0 < 0.45 * sample_rate) & (amps != 0)
    k, amps = k[keep], amps[keep] / max(np.abs(amps[keep]).sum(), 1e-9)
    partial_env = (amps[:, None] * np.exp(-timbre.damping * (k[:, None] - 1) * t[None, :] / 4.0)).astype(np.float32)
    wave = np.zeros(n, dtype=np.float32)
    detunes = (0.0, timbre.detune_cents) if timbre.detune_cents else (0.0,)
    for cents in detunes:
        f = f0 * 2.0 ** (cents / 1200.0)
        phase = 2 * np.pi * f * t
        if timbre.vibrato_cents:
            depth = f * (2.0 ** (timbre.vibrato_cents / 1200.0) - 1.0)
            phase += depth / timbre.vibrato_hz * np.sin(2 * np.pi * timbre.vibrato_hz * t)
        phase = np.mod(phase, 2 * np.pi).astype(np.float32)  # float32 from here: exact enough once wrapped
        modulation = 0.0
        if timbre.fm_index:
            modulation = timbre.fm_index * env * np.sin(2 * np.pi * timbre.fm_ratio * f * t).astype(np.float32)
        wave += np.einsum("kn,kn->n", partial_env, np.sin(k[:, None].astype(np.float32) * phase + modulation))
    wave /= len(detunes)
    if timbre.noise:
        noise = np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
        wave = (1 - timbre.noise) * wave + timbre.noise * 0.5 * noise
    if timbre.drive:
        wave = np.tanh(timbre.drive * wave) / np.tanh(timbre.drive)
    return wave * env * np.float32(timbre.gain * velocity / 127.0)


@dataclass(frozen=True)
class DrumSound:
    """A drum hit: a pitch-swept sine plus filtered noise.

    Attributes:
        tone_hz: Body frequency (0 = no tone); sweep multiplies it at the very start (kick "thump").
        tone_decay, noise_decay: Exponential decay times in seconds.
        noise: Level of the noise part relative to the tone.
        colour: One-pole filter coefficient for the noise: > 0 low-passes, < 0 high-passes (hats, cymbals).
        length: Seconds rendered.
    """

    tone_hz: float
    sweep: float
    tone_decay: float
    noise: float
    noise_decay: float
    colour: float
    length: float
    gain: float = 1.0


DRUM_SOUNDS: dict[str, DrumSound] = {
    "kick": DrumSound(55, 3.0, 0.25, 0.08, 0.02, 0.5, 0.4, 1.4),
    "snare": DrumSound(190, 0.5, 0.08, 0.9, 0.15, -0.3, 0.3, 0.9),
    "clap": DrumSound(0, 0, 0.01, 1.0, 0.12, -0.5, 0.25, 0.7),
    "closed_hat": DrumSound(0, 0, 0.01, 1.0, 0.04, -0.9, 0.08, 0.35),
    "open_hat": DrumSound(0, 0, 0.01, 1.0, 0.3, -0.9, 0.4, 0.3),
    "ride": DrumSound(520, 0, 0.6, 0.7, 0.6, -0.8, 0.8, 0.25),
    "crash": DrumSound(0, 0, 0.01, 1.0, 1.0, -0.7, 1.2, 0.35),
    "tom": DrumSound(110, 0.6, 0.25, 0.2, 0.08, 0.3, 0.4, 1.0),
    "rim": DrumSound(800, 0, 0.02, 0.5, 0.02, -0.5, 0.06, 0.5),
    "other": DrumSound(400, 0, 0.05, 0.6, 0.05, 0.0, 0.15, 0.4),
}

# General MIDI percussion keys → sound; unlisted keys use "other".
DRUM_KEYS: dict[int, str] = {
    35: "kick", 36: "kick", 37: "rim", 38: "snare", 39: "clap", 40: "snare",
    42: "closed_hat", 44: "closed_hat", 46: "open_hat", 49: "crash", 57: "crash",
    51: "ride", 53: "ride", 59: "ride",
    41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom",
}


@lru_cache(maxsize=256)
def drum_hit(key: int, sample_rate: int) -> np.ndarray:
    """The waveform of one GM percussion key at full velocity (cached; toms are tuned by key)."""
    sound = DRUM_SOUNDS[DRUM_KEYS.get(key, "other")]
    n = int(sound.length * sample_rate)
    t = np.arange(n) / sample_rate
    tone_hz = sound.tone_hz * (2.0 ** ((key - 45) / 12.0) if DRUM_KEYS.get(key) == "tom" else 1.0)
    freq = tone_hz * (1.0 + sound.sweep * np.exp(-t / 0.02))
    tone = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / sound.tone_decay)
    white = np.random.default_rng(key).standard_normal(n)
    c = abs(sound.colour)
    lowpassed = lfilter([1.0 - c], [1.0, -c], white)
    coloured = lowpassed if sound.colour >= 0 else white - lowpassed
    noise = coloured / max(np.abs(coloured).max(), 1e-9) * np.exp(-t / sound.noise_decay)
    wave = (tone + sound.noise * noise) * sound.gain
    wave[: int(0.002 * sample_rate)] *= np.linspace(0, 1, int(0.002 * sample_rate))
    return wave.astype(np.float32)


def render_midi(
    pm: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Render every instrument of `pm` to mono float32 audio, peak-normalised.

    Args:
        pm: Any MIDI; programs map to `timbre_for(program)`, notes on drum instruments to `DRUM_SOUNDS`.
        sample_rate: Output rate in Hz.
        max_seconds: Stop after this many seconds (notes starting later are not rendered).
    """
    end = pm.get_end_time() + 1.0
    if max_seconds is not None:
        end = min(end, max_seconds)
    out = np.zeros(max(int(round(end * sample_rate)), 1), dtype=np.float32)
    notes: dict[tuple, np.ndarray] = {}  # velocity only scales a note, so repeated notes are rendered once
    for instrument in pm.instruments:
        timbre = timbre_for(instrument.program)
        for note in instrument.notes:
            start = int(round(note.start * sample_rate))
            if start >= len(out) or note.end <= note.start:
                continue
            if instrument.is_drum:
                wave = drum_hit(note.pitch, sample_rate)
            else:
                length = int(round(min(note.end - note.start, end - note.start) * sample_rate))
                key = (instrument.program, note.pitch, length)
                if key not in notes:
                    notes[key] = render_note(timbre, note.pitch, 127, length / sample_rate, sample_rate, seed=list(key))
                wave = notes[key]
            stop = min(start + len(wave), len(out))
            out[start:stop] += wave[: stop - start] * np.float32(note.velocity / 127.0)
    peak = np.abs(out).max()
    if peak > 0:
        out *= PEAK / peak
    return out
