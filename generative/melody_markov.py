"""Melody, rhythm and harmony from a user's history alone: a Markov chain over transcribed note events.

Dataset-agnostic: it sees only basic-pitch transcriptions (start, end, pitch, amplitude) of the
user's history songs. Notes starting within `onset_window_s` of each other form one event; an
event becomes a token (top pitch = melody, lowest pitch = bass/harmony, time to the next event
quantised = rhythm). An order-`order` chain over tokens (play-weighted counts, back-off to
shorter contexts) writes new event sequences, which `render_notes` plays.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

# Quantised inter-onset intervals (seconds): every gap is snapped to the nearest.
IOI_BINS = np.array([0.125, 0.1875, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0])
START = ("<s>",)
Token = tuple[int, int, float]  # (top pitch, bass pitch, seconds to the next event)


def note_events(notes: np.ndarray, onset_window_s: float = 0.05) -> list[Token]:
    """A transcription's notes [n, 4] as events (top pitch, bass pitch, quantised gap to the next event)."""
    if len(notes) == 0:
        return []
    notes = notes[np.argsort(notes[:, 0], kind="stable")]
    groups: list[list[np.ndarray]] = [[notes[0]]]
    for note in notes[1:]:
        if note[0] - groups[-1][0][0] <= onset_window_s:
            groups[-1].append(note)
        else:
            groups.append([note])
    starts = np.array([g[0][0] for g in groups])
    gaps = np.append(np.diff(starts), IOI_BINS[4])  # the last event lasts a half second
    events = []
    for group, gap in zip(groups, gaps):
        pitches = [int(n[2]) for n in group]
        ioi = float(IOI_BINS[np.argmin(np.abs(IOI_BINS - min(gap, IOI_BINS[-1])))])
        events.append((max(pitches), min(pitches), ioi))
    return events


class EventMarkov:
    """An order-`order` Markov chain over note events with back-off to shorter contexts.

    Args:
        order: Events of context.
    """

    def __init__(self, order: int = 2) -> None:
        self.order = order
        self.counts: dict[tuple, Counter] = defaultdict(Counter)

    def fit(self, songs: Sequence[list[Token]], weights: Sequence[float] | None = None) -> EventMarkov:
        """Count each song's event transitions (every context length), scaled by the song's weight."""
        weights = weights if weights is not None else [1.0] * len(songs)
        for events, weight in zip(songs, weights):
            tokens = [START] * self.order + list(events)
            for i in range(self.order, len(tokens)):
                for n in range(0, self.order + 1):
                    context = tuple(tokens[i - n : i]) if n else ()
                    self.counts[context][tokens[i]] += float(weight)
        return self

    @property
    def empty(self) -> bool:
        return not self.counts

    def _next(self, history: list, rng: np.random.Generator) -> Token:
        for n in range(self.order, -1, -1):
            options = self.counts.get(tuple(history[-n:]) if n else ())
            if options:
                tokens = sorted(options)
                p = np.array([options[t] for t in tokens], dtype=np.float64)
                return tokens[int(rng.choice(len(tokens), p=p / p.sum()))]
        raise ValueError("EventMarkov: fit on at least one song with notes before sampling")

    def sample(self, seconds: float, rng: np.random.Generator) -> list[tuple[float, Token]]:
        """(onset time, event) pairs filling `seconds`."""
        history: list = [START] * self.order
        out, clock = [], 0.0
        while clock < seconds:
            token = self._next(history, rng)
            out.append((clock, token))
            history.append(token)
            clock += token[2]
        return out


def render_notes(
    events: Sequence[tuple[float, Token]], seconds: float, sample_rate: int = 16_000, harmonics: int = 4
) -> np.ndarray:
    """A generic synthesiser: each event's melody and bass notes as decaying additive tones, peak 0.8."""
    length = int(round(seconds * sample_rate))
    wave = np.zeros(length, dtype=np.float64)
    for onset, (top, bass, ioi) in events:
        start = int(onset * sample_rate)
        n = min(int(max(ioi, 0.1) * sample_rate), length - start)
        if n <= 0:
            continue
        t = np.arange(n) / sample_rate
        envelope = np.minimum(t / 0.01, 1.0) * np.exp(-3.0 * t)
        for pitch, gain in ((top, 0.6), (bass, 0.4)) if bass != top else ((top, 0.8),):
            freq = 440.0 * 2 ** ((pitch - 69) / 12)
            tone = sum(
                np.sin(2 * np.pi * h * freq * t) / h for h in range(1, harmonics + 1) if h * freq < sample_rate / 2
            )
            wave[start : start + n] += gain * envelope * tone
    peak = np.abs(wave).max()
    return (0.8 * wave / peak if peak > 0 else wave).astype(np.float32)
