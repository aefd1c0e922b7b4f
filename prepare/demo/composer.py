"""Seeded songs in a style, as MIDI: melody, chords, bass and drums in 4/4 on a sixteenth-note grid.

`plan_song` draws what a song is (tempo, key, mode, instruments, density, register, production),
`compose_song` writes its notes; both depend only on (style, seed, identity), so a song can be
re-composed anywhere from those values. A song's latent identity (`identity.py`) moves its plan
away from its style's type; without one a song is its style's type, as in the easy world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pretty_midi

from prepare.demo.identity import Identity
from prepare.demo.styles import DRUM_PATTERNS, MODES, Style, get_style

STEPS_PER_BAR = 16


# Modes from bright to dark, and instruments shared across styles from mellow to bright: a song's
# identity picks among them, so styles overlap audibly.
MODE_ORDER: tuple[str, ...] = ("major", "mixolydian", "dorian", "minor", "phrygian")
PITCH_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MELODY_POOL: tuple[int, ...] = (73, 0, 11, 4, 61, 80, 29, 81, 30)
CHORD_POOL: tuple[int, ...] = (89, 0, 4, 25, 7, 30)


@dataclass(frozen=True)
class SongPlan:
    """What a song is before its notes: the values prompts and summaries talk about, and its production.

    Without an identity a plan follows its style alone (tempo and key drawn in the style's ranges);
    with one, the identity moves every field, with noise.
    """

    style: str
    tempo: float
    key: str
    mode: str
    melody_program: int
    chord_program: int | None
    density: float
    register: int
    mix: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # melody, chords, bass, drums
    brightness: float = 1.0
    reverb: float = 0.0
    noise: float = 0.0

    @property
    def tonic_pc(self) -> int:
        return pretty_midi.note_name_to_number(self.key + "0") % 12


def _pick(pool: tuple, position: float, rng: np.random.Generator, sd: float) -> object:
    """The pool entry at `position` in [0, 1], moved by Gaussian noise of sd `sd` (in pool widths)."""
    index = int(np.clip(round(position * (len(pool) - 1) + rng.normal(0, sd * len(pool))), 0, len(pool) - 1))
    return pool[index]


def _plan_from_identity(style: Style, identity: Identity, rng: np.random.Generator) -> SongPlan:
    """Tempo, key, mode, instruments, density, register and production moved by `identity`, with noise."""
    low, high = style.tempo
    margin = 0.5 * (high - low) + 8
    feel = np.clip(0.6 * identity.tempo_feel + 0.4 * identity.energy + rng.normal(0, 0.1), 0, 1)
    tempo = float(round(low - margin + feel * (high - low + 2 * margin)))
    key = str(style.tonics[rng.integers(len(style.tonics))]) if rng.random() < 0.5 else PITCH_NAMES[rng.integers(12)]
    mode_position = 0.5 * MODE_ORDER.index(style.mode) / (len(MODE_ORDER) - 1) + 0.5 * identity.darkness
    mode = str(_pick(MODE_ORDER, mode_position, rng, 0.1))
    tone = 0.5 * identity.brightness + 0.5 * identity.energy
    melody = style.melody_program if rng.random() < 0.4 else int(_pick(MELODY_POOL, tone, rng, 0.15))
    chords = style.chord_program
    if chords is not None and rng.random() >= 0.4:
        chords = int(_pick(CHORD_POOL, tone, rng, 0.15))
    return SongPlan(
        style.name, tempo, key, mode, melody, chords,
        density=float(style.density * (0.6 + 0.8 * identity.energy) * rng.lognormal(0, 0.1)),
        register=int(style.register + round(10 * (0.5 - identity.darkness) + rng.normal(0, 2))),
        mix=tuple(float(g) for g in rng.uniform(0.6, 1.2, 4)),
        brightness=float(np.clip(identity.brightness + rng.normal(0, 0.08), 0, 1)),
        reverb=float(np.clip(0.6 * (1 - identity.energy) + rng.normal(0, 0.12), 0, 0.8)),
        noise=float(rng.uniform(0.0, 0.02)),
    )


def plan_song(style: Style | str, seed: int, identity: Identity | None = None) -> SongPlan:
    """What song `seed` in `style` is (cheap: no notes); `identity` moves it away from the style's type."""
    style = get_style(style)
    rng = np.random.default_rng([seed, 0])
    if identity is not None:
        return _plan_from_identity(style, identity, rng)
    tempo = float(round(rng.uniform(*style.tempo)))
    key = str(style.tonics[rng.integers(len(style.tonics))])
    return SongPlan(style.name, tempo, key, style.mode, style.melody_program, style.chord_program, style.density, style.register)


@dataclass
class _Grid:
    """Times of sixteenth steps, with swing on the off-beat sixteenths."""

    step_s: float
    swing: float

    def time(self, step: int) -> float:
        return step * self.step_s + (self.swing * self.step_s if step % 2 else 0.0)


def _pitch(plan: SongPlan, degree: int, centre: int) -> int:
    """MIDI pitch of a scale degree (any integer), in the octave nearest `centre` for degree 0."""
    scale = MODES[plan.mode]
    octave, index = divmod(degree, len(scale))
    base = centre - ((centre - plan.tonic_pc) % 12)
    return base + 12 * octave + scale[index]


def _note(instrument: pretty_midi.Instrument, pitch: int, velocity: float, start: float, end: float) -> None:
    velocity = int(np.clip(round(velocity), 1, 127))
    instrument.notes.append(pretty_midi.Note(velocity, int(np.clip(pitch, 0, 127)), start, max(end, start + 0.02)))


def _note_lengths(pattern: str) -> list[tuple[int, int]]:
    """(step, steps until the next onset or bar end) for each onset of a 16-step pattern."""
    onsets = [i for i, c in enumerate(pattern) if c != "."]
    return [(s, (onsets[j + 1] if j + 1 < len(onsets) else STEPS_PER_BAR) - s) for j, s in enumerate(onsets)]


def _chords(
    style: Style, plan: SongPlan, roots: list[int], grid: _Grid, rng: np.random.Generator
) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(plan.chord_program, name="chords")
    centre = plan.register - 12
    for bar, root in enumerate(roots):
        tones = [_pitch(plan, root + step, centre) for step in style.chord_steps]
        for j, (step, length) in enumerate(_note_lengths(style.comp_pattern)):
            start = grid.time(bar * STEPS_PER_BAR + step)
            end = start + length * grid.step_s * style.legato
            chosen = [tones[j % len(tones)]] if style.arpeggio else tones
            velocity = style.velocity * plan.mix[1] * (0.75 if step % 4 else 0.85) + rng.normal(0, 4)
            for k, pitch in enumerate(chosen):
                _note(part, pitch, velocity, start + k * style.strum_s, end)
    return part


def _bass(
    style: Style, plan: SongPlan, roots: list[int], grid: _Grid, rng: np.random.Generator
) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(style.bass_program, name="bass")
    centre = plan.register - 24
    intervals = {"r": 0, "f": 4, "o": 7}
    for bar, root in enumerate(roots):
        for step, length in _note_lengths(style.bass_pattern):
            pitch = _pitch(plan, root + intervals[style.bass_pattern[step]], centre)
            start = grid.time(bar * STEPS_PER_BAR + step)
            _note(part, pitch, style.velocity * plan.mix[2] * 0.9 + rng.normal(0, 4), start, start + length * grid.step_s * 0.85)
    return part


def _drums(style: Style, plan: SongPlan, n_bars: int, grid: _Grid, rng: np.random.Generator) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(0, is_drum=True, name="drums")
    for bar in range(n_bars):
        for key, pattern in DRUM_PATTERNS[style.drums].items():
            for step, hit in enumerate(pattern):
                if hit == ".":
                    continue
                start = grid.time(bar * STEPS_PER_BAR + step) + rng.normal(0, 0.004)
                velocity = style.velocity * plan.mix[3] * (1.0 if hit == "x" else 0.5) + rng.normal(0, 5)
                _note(part, key, velocity, max(start, 0.0), max(start, 0.0) + 0.1)
    return part


def _motif(style: Style, density: float, bars: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(step, length, degree index into melody_degrees) of a melodic idea `bars` long."""
    p_onset = min(density / 4.0, 1.0)
    weights = np.array([2.0 if s % 4 == 0 else 1.2 if s % 2 == 0 else 0.6 for s in range(STEPS_PER_BAR)])
    steps = [s for s in range(bars * STEPS_PER_BAR) if rng.random() < min(p_onset * weights[s % STEPS_PER_BAR], 0.95)]
    steps = steps or [0]
    n_degrees = len(style.melody_degrees)
    position = int(rng.integers(n_degrees, 2 * n_degrees))
    notes = []
    for j, step in enumerate(steps):
        end = steps[j + 1] if j + 1 < len(steps) else bars * STEPS_PER_BAR
        position = int(np.clip(position + rng.choice([-2, -1, -1, 0, 1, 1, 2]), n_degrees // 2, 2 * n_degrees + 2))
        notes.append((step, end - step, position))
    return notes


def _melody(style: Style, plan: SongPlan, n_bars: int, grid: _Grid, rng: np.random.Generator) -> pretty_midi.Instrument:
    """An A A' B A phrase of two-bar motifs; A' is A moved by a scale step."""
    part = pretty_midi.Instrument(plan.melody_program, name="melody")
    a, b = _motif(style, plan.density, 2, rng), _motif(style, plan.density, 2, rng)
    shift = int(rng.choice([-1, 1]))
    phrase = [(a, 0), (a, shift), (b, 0), (a, 0)]
    n_degrees = len(style.melody_degrees)
    for index in range(math.ceil(n_bars / 2)):
        motif, offset = phrase[index % len(phrase)]
        for step, length, position in motif:
            octave, i = divmod(position + offset, n_degrees)
            degree = style.melody_degrees[i] + 7 * (octave - 1)
            start = grid.time(index * 2 * STEPS_PER_BAR + step)
            velocity = style.velocity * plan.mix[0] * (1.0 if step % 4 == 0 else 0.85) + rng.normal(0, 5)
            end = start + length * grid.step_s * style.legato
            _note(part, _pitch(plan, degree, plan.register), velocity, start, end)
    return part


def _trim(pm: pretty_midi.PrettyMIDI, duration_s: float) -> None:
    for instrument in pm.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < duration_s]
        for note in instrument.notes:
            note.end = min(note.end, duration_s)


def compose_song(
    style: Style | str, seed: int, duration_s: float = 12.0, identity: Identity | None = None
) -> pretty_midi.PrettyMIDI:
    """A new song in `style`, the same for the same seed and identity; notes end by `duration_s`.

    Tempo and key are those of `plan_song(style, seed, identity)` and are written into the MIDI as
    its tempo and key signature (relative major/minor for the church modes).
    """
    style = get_style(style)
    plan = plan_song(style, seed, identity)
    rng = np.random.default_rng([seed, 1])
    pm = pretty_midi.PrettyMIDI(initial_tempo=plan.tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    minor = MODES[plan.mode][2] == 3
    pm.key_signature_changes.append(
        pretty_midi.KeySignature(pretty_midi.key_name_to_key_number(f"{plan.key} {'minor' if minor else 'major'}"), 0.0)
    )
    grid = _Grid(60.0 / plan.tempo / 4.0, style.swing)
    n_bars = math.ceil(duration_s / (STEPS_PER_BAR * grid.step_s))
    progression = style.progressions[rng.integers(len(style.progressions))]
    roots = [progression[bar % len(progression)] for bar in range(n_bars)]
    pm.instruments.append(_melody(style, plan, n_bars, grid, rng))
    if plan.chord_program is not None:
        pm.instruments.append(_chords(style, plan, roots, grid, rng))
    if style.bass_program is not None:
        pm.instruments.append(_bass(style, plan, roots, grid, rng))
    if DRUM_PATTERNS[style.drums]:
        pm.instruments.append(_drums(style, plan, n_bars, grid, rng))
    _trim(pm, duration_s)
    return pm
