"""MIDI similarity: how close a candidate's transcribed notes are to a user's history.

Each song is transcribed (basic-pitch, cached) and described by four blocks of symbolic features:

- ``pitch_class``: normalised pitch-class histogram (12),
- ``transitions``: pitch-class transition matrix between successive onsets (12 × 12, sums to 1),
- ``intervals``: histogram of intervals between successive onsets, clipped to ±12 semitones (25),
- ``scalars``: note density (notes/s), pitch range, mean pitch, polyphony (mean sounding
  notes), note-duration mean and std, z-scored with the reference set's (the catalog's) statistics.

Tempo is left out: basic-pitch writes every transcription at 120 BPM. Each block is scaled to
unit norm times its weight, so no block dominates by size, and the score is the cosine between
the candidate's vector and the user's profile (the weighted mean of the history's vectors), in [-1, 1].
"""

from __future__ import annotations

import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np
from tqdm.auto import tqdm

from songdata.atomic_files import write_json_atomic
from taste.base import TasteResult, TasteScorer, TasteSong
from taste.transcription import Transcriber, Transcription, TranscriptionConfig

log = logging.getLogger(__name__)

SCALARS = ("note_density", "pitch_range", "pitch_mean", "polyphony", "duration_mean", "duration_std")
BLOCKS = ("pitch_class", "transitions", "intervals", "scalars")
MAX_INTERVAL = 12
STATS_FILE = "reference_stats.json"


def note_features(transcription: Transcription) -> dict[str, np.ndarray] | None:
    """Raw (not z-scored, not weighted) feature blocks of a transcription; None if it has no notes."""
    notes = transcription.notes
    if len(notes) == 0:
        return None
    start, end, pitch = notes[:, 0], notes[:, 1], notes[:, 2].astype(np.int64)
    order = np.lexsort((pitch, start))  # successive onsets; chord tones low to high
    pitch = pitch[order]
    pc = pitch % 12
    pitch_class = np.bincount(pc, minlength=12).astype(np.float64)
    transitions = np.zeros((12, 12))
    np.add.at(transitions, (pc[:-1], pc[1:]), 1.0)
    steps = np.clip(np.diff(pitch), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    intervals = np.bincount(steps, minlength=2 * MAX_INTERVAL + 1)
    durations = (end - start).astype(np.float64)
    length = max(transcription.duration_s, float(end.max()), 1e-3)
    # In SCALARS order; polyphony = total sounding time / song length = mean notes sounding at once.
    scalars = np.array([
        len(notes) / length, pitch.max() - pitch.min(), pitch.mean(),
        durations.sum() / length, durations.mean(), durations.std(),
    ])
    return {
        "pitch_class": pitch_class / pitch_class.sum(),
        "transitions": transitions.ravel() / max(transitions.sum(), 1.0),
        "intervals": intervals / max(intervals.sum(), 1),
        "scalars": scalars,
    }


_ENDS = np.cumsum([0, 12, 144, 2 * MAX_INTERVAL + 1, len(SCALARS)]).tolist()
BLOCK_SPANS = dict(zip(BLOCKS, zip(_ENDS[:-1], _ENDS[1:])))  # where each block lies in a song's vector


def _memo_key(song: TasteSong) -> str | None:
    return song.audio_hash if song.has_audio else None


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denominator) if denominator > 0 else 0.0


class MidiSimilarity(TasteScorer):
    """Cosine between a candidate's symbolic features and the user's history profile, in [-1, 1].

    Args:
        cache_dir: Transcriptions (`<config>/<audio sha1>.npz`) and the reference statistics live here.
        weights: Weight per block (`BLOCKS`); a missing block gets 1, 0 drops a block.
        transcription: basic-pitch's settings.
        show_progress: A progress bar while transcribing.
        memory_size: Songs whose features are kept in memory (least recently used dropped): a stage
            scores each song against many users' references, and recomputing features is its main cost.

    Call `fit(reference_songs)` (the catalog) or `load_reference()` before `score`.
    """

    name = "midi_similarity"
    kind = "symbolic features (basic-pitch transcription), not LLM"

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        weights: dict[str, float] | None = None,
        transcription: TranscriptionConfig | None = None,
        show_progress: bool = True,
        memory_size: int = 16384,
    ) -> None:
        unknown = set(weights or {}) - set(BLOCKS)
        if unknown:
            raise ValueError(f"midi_similarity.weights: unknown block(s) {sorted(unknown)}, expected some of {BLOCKS}")
        self.weights = {block: float((weights or {}).get(block, 1.0)) for block in BLOCKS}
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.transcriber = Transcriber(cache_dir, transcription)
        self.show_progress = show_progress
        self.scalar_mean: np.ndarray | None = None
        self.scalar_std: np.ndarray | None = None
        self.memory_size = memory_size
        self._features: OrderedDict[str, dict[str, np.ndarray] | None] = OrderedDict()
        self._vector_memo: dict[str, np.ndarray] = {}  # valid for the current reference statistics only

    def features(self, song: TasteSong) -> dict[str, np.ndarray] | None:
        """Raw feature blocks of a song (transcribed or read from the cache); None without notes."""
        key = song.audio_hash
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        features = self._features[key] = note_features(self.transcriber.transcribe(song))
        if len(self._features) > self.memory_size:
            self._features.popitem(last=False)
        return features

    def _analyse(self, song: TasteSong) -> tuple[dict[str, np.ndarray] | None, str | None]:
        """(feature blocks, None), or (None, why not): no audio, undecodable audio, no notes."""
        if not song.has_audio:
            return None, "no audio"
        try:
            features = self.features(song)
        except Exception as error:  # one unreadable file must not stop a whole evaluation
            log.warning("midi_similarity: song %s: %s: %s", song.id, type(error).__name__, error)
            return None, f"audio error: {type(error).__name__}"
        finally:
            song.release_audio()
        return (features, None) if features is not None else (None, "no notes transcribed")

    def prepare(self, songs: Sequence[TasteSong]) -> None:
        """Features of `songs` (transcribing what is not cached), then the run's transcriptions packed into one file."""
        for song in tqdm(songs, desc="midi features", disable=not self.show_progress, unit="song"):
            self._analyse(song)
        added = self.transcriber.save_pack()
        if added:
            log.info("midi_similarity: %d transcription(s) added to the cache's pack", added)

    def fit(self, reference: Iterable[TasteSong]) -> Self:
        """z-score statistics of the scalar features over `reference`; saved next to the cache."""
        rows, skipped = [], Counter()
        for song in tqdm(reference, desc="midi features (reference)", disable=not self.show_progress, unit="song"):
            features, failure = self._analyse(song)
            if features is None:
                skipped[failure] += 1
            else:
                rows.append(features["scalars"])
        if not rows:
            raise ValueError(f"midi_similarity.fit: no reference song could be used ({dict(skipped)})")
        scalars = np.stack(rows)
        self.scalar_mean, self.scalar_std = scalars.mean(0), scalars.std(0)
        self._vector_memo.clear()
        if skipped:
            log.warning("midi_similarity.fit: %d reference song(s) left out: %s", sum(skipped.values()), dict(skipped))
        log.info("midi_similarity: reference statistics from %d songs", len(rows))
        if self.cache_dir is not None:
            self.save_reference(self.cache_dir / STATS_FILE, n_songs=len(rows))
        return self

    def save_reference(self, path: str | Path, n_songs: int | None = None) -> None:
        path = Path(path)
        stats = {
            "scalars": SCALARS, "mean": self.scalar_mean.tolist(), "std": self.scalar_std.tolist(), "n_songs": n_songs,
        }
        write_json_atomic(path, stats, indent=2)

    def load_reference(self, path: str | Path | None = None) -> Self:
        """Reference statistics saved by an earlier `fit` (default: `cache_dir/reference_stats.json`)."""
        if path is None:
            if self.cache_dir is None:
                raise ValueError("midi_similarity.load_reference: give a path or a cache_dir")
            path = self.cache_dir / STATS_FILE
        stats = json.loads(Path(path).read_text())
        if tuple(stats.get("scalars", ())) != SCALARS:
            raise ValueError(f"{path}: field 'scalars' is {stats.get('scalars')}, expected {list(SCALARS)}")
        self.scalar_mean, self.scalar_std = np.array(stats["mean"]), np.array(stats["std"])
        self._vector_memo.clear()
        return self

    def vector(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Concatenated blocks, each at unit norm × its weight (scalars z-scored first)."""
        if self.scalar_mean is None:
            raise RuntimeError("midi_similarity: call fit(reference songs) or load_reference() before scoring")
        z = (features["scalars"] - self.scalar_mean) / np.where(self.scalar_std > 0, self.scalar_std, 1.0)
        blocks = {**features, "scalars": z}
        return np.concatenate([self.weights[b] * _unit(blocks[b]) for b in BLOCKS])

    def song_vector(self, song: TasteSong) -> np.ndarray | None:
        """A song's feature vector, or None without usable audio or notes."""
        return self._vector(song)[0]

    def _vector(self, song: TasteSong) -> tuple[np.ndarray | None, str | None]:
        """(vector, None), or (None, why not); vectors are kept per audio until the reference statistics change."""
        key = _memo_key(song)
        if key in self._vector_memo:
            return self._vector_memo[key], None
        features, failure = self._analyse(song)
        if features is None:
            return None, failure
        vector = self._vector_memo[key] = self.vector(features)
        if len(self._vector_memo) > self.memory_size:
            self._vector_memo.pop(next(iter(self._vector_memo)))
        return vector, None

    def _vectors(self, songs: Sequence[TasteSong], desc: str) -> list[tuple[np.ndarray | None, str | None]]:
        """(vector, None) per song, or (None, why not); a progress bar only when some song must be analysed
        (a bar costs more than a whole prepared row)."""
        if self.show_progress and len(songs) > 1 and any(_memo_key(s) not in self._vector_memo for s in songs):
            songs = tqdm(songs, desc=desc, unit="song", leave=False)
        return [self._vector(song) for song in songs]

    def profile(self, history: Sequence[TasteSong]) -> tuple[np.ndarray | None, dict]:
        """Weighted mean of the history's vectors (song weights, e.g. play counts) and what was left out."""
        used, skipped = [], Counter()
        for song, (vector, failure) in zip(history, self._vectors(history, "midi features (history)")):
            if vector is None:
                skipped[failure] += 1
            else:
                used.append((vector, song.weight))
        info = {"history_songs": len(used), "history_skipped": dict(skipped)}
        if not used:
            return None, info
        weights = np.array([w for _, w in used])
        vectors = np.stack([v for v, _ in used])
        return np.average(vectors, axis=0, weights=weights if weights.sum() > 0 else None), info

    def score(self, candidates: Sequence[TasteSong], history: Sequence[TasteSong]) -> list[TasteResult]:
        """Cosine with the history profile per candidate.

        Failures: "no audio", "audio error: ...", "no notes transcribed", "no usable history audio".
        """
        if self.scalar_mean is None:  # fail before any transcription, not after the history's
            raise RuntimeError("midi_similarity: call fit(reference songs) or load_reference() before scoring")
        profile, info = self.profile(history)
        results = []
        for vector, failure in self._vectors(candidates, "midi features (candidates)"):
            if failure is not None:
                results.append(TasteResult.failed(failure))
            elif profile is None:
                results.append(TasteResult.failed("no usable history audio", **info))
            else:
                blocks = self._block_cosines(vector, profile)
                results.append(TasteResult.ok(_cosine(vector, profile), blocks=blocks, **info))
        return results

    def _block_cosines(self, vector: np.ndarray, profile: np.ndarray) -> dict[str, float]:
        return {b: round(_cosine(vector[i:j], profile[i:j]), 4) for b, (i, j) in BLOCK_SPANS.items()}
