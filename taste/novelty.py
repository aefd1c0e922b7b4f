"""Novelty: is a generated (or imported) song a near-copy of a song the user already has?

Each candidate gets its nearest history song twice: by MIDI similarity (cosine of the
`MidiSimilarity` feature vectors of the two songs) and by lyric overlap (share of the
candidate's distinct word trigrams, within lines, that the history song also has). A candidate
is a **near-copy** when either reaches its threshold:

- `midi >= 0.98`: the two transcriptions agree in pitch classes, transitions, intervals and
  note statistics almost exactly (re-encoded copies of a song score ~1.0; different songs of one
  composer and style stay lower), and
- `lyrics >= 0.8`: four fifths of the candidate's phrases appear verbatim in one history song.

Recommendations are unseen songs by construction; a near-copy would score near the top of any
taste score, so it is reported apart from the mean, never silently included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from taste.base import TasteSong
from taste.midi_similarity import MidiSimilarity

MIDI_COPY_THRESHOLD = 0.98
LYRIC_COPY_THRESHOLD = 0.8
SECTION = re.compile(r"^\s*\[[^\]]*\]\s*$")  # "[Verse]", "[Chorus]": structure, not words


def words(text: str) -> list[str]:
    """Lower-case words (apostrophes kept inside words) of one line or text."""
    return [w.strip("'") for w in re.findall(r"[a-z0-9']+", text.lower()) if w.strip("'")]


def lyric_lines(lyrics: str) -> list[list[str]]:
    """The word lists of a lyric's sung lines (section markers and empty lines left out)."""
    lines = [words(line) for line in lyrics.splitlines() if not SECTION.match(line)]
    return [line for line in lines if line]


@lru_cache(maxsize=65536)
def ngrams(lyrics: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """Distinct word n-grams within the lines of `lyrics` (kept: each history song meets every generated song)."""
    return frozenset(tuple(line[i : i + n]) for line in lyric_lines(lyrics) for i in range(len(line) - n + 1))


def ngram_overlap(candidate: str, reference: str, n: int = 3) -> float | None:
    """Share of the candidate's distinct word n-grams that also occur in `reference` (None: it has none)."""
    mine = ngrams(candidate, n)
    return len(mine & ngrams(reference, n)) / len(mine) if mine else None


@dataclass
class Nearest:
    """A candidate's nearest history songs and whether it is a near-copy."""

    midi: float | None
    midi_song: str | None
    lyrics: float | None
    lyrics_song: str | None

    @property
    def near_copy(self) -> bool:
        return (self.midi or -1.0) >= MIDI_COPY_THRESHOLD or (self.lyrics or 0.0) >= LYRIC_COPY_THRESHOLD


def _best(values: list[tuple[float, str]]) -> tuple[float | None, str | None]:
    return max(values) if values else (None, None)


def nearest_history(midi: MidiSimilarity, candidate: TasteSong, history: Sequence[TasteSong]) -> Nearest:
    """The history songs closest to `candidate` by MIDI cosine and by lyric trigram overlap."""
    return Nearest(*_nearest_by_midi(midi, candidate, history), *_nearest_by_lyrics(candidate, history))


def _nearest_by_midi(midi: MidiSimilarity, candidate: TasteSong, history: Sequence[TasteSong]):
    mine = midi.song_vector(candidate)
    theirs = [(vector, song.id) for song in history if (vector := midi.song_vector(song)) is not None]
    if mine is None or not theirs:
        return None, None
    matrix = np.stack([vector for vector, _ in theirs])
    norms = np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(mine), 1e-12)
    return _best([(round(float(c), 6), song_id) for c, (_, song_id) in zip(matrix @ mine / norms, theirs)])


def _nearest_by_lyrics(candidate: TasteSong, history: Sequence[TasteSong]):
    return _best([(v, s.id) for s in history if (v := ngram_overlap(candidate.lyrics, s.lyrics)) is not None])
