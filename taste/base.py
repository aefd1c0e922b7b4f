"""The taste-scorer seam: songs in, one result per candidate out, failures kept apart from scores.

Generated songs (audio files + lyrics) and recommended catalog songs (waveforms from the
shards + catalog lyrics) both become `TasteSong`s, so every scorer runs the same code on both.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from songdata import SongDataset
from songdata.audio import SAMPLE_RATE, read_audio

AudioSource = np.ndarray | str | Path | Callable[[], np.ndarray] | None


def waveform_hash(wave: np.ndarray) -> str:
    """sha1 of the float32 samples: the same waveform gives the same hash wherever it came from."""
    return hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()


def file_hash(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """sha1 of a file's bytes (no decoding, so a cached song is never decoded again)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class TasteSong:
    """A song as taste scorers see it: an id, its lyrics and (lazily) its audio.

    Args:
        id: Any identifier (catalog song id, generated song id); only reported back.
        lyrics: Plain text, "" for an instrumental or unknown lyrics.
        audio: A mono 16 kHz float32 waveform, a path to any audio file `read_audio` decodes,
            a zero-argument callable returning the waveform (decoded on first use), or None.
        weight: How much the song counts in a user's history (e.g. its play count).
        audio_hash: The content hash if already known (skips hashing). A song with a hash and
            no audio is enough for scorers whose cache already holds that audio's analysis.

    The audio's content hash (sha1 of the file bytes for a path, of the float32 samples
    otherwise) is computed once per song and keys every on-disk cache.
    """

    def __init__(
        self, id: str, lyrics: str = "", audio: AudioSource = None, weight: float = 1.0, audio_hash: str | None = None
    ) -> None:
        self.id = str(id)
        self.lyrics = lyrics or ""
        self.weight = float(weight)
        self._audio = audio
        self._wave: np.ndarray | None = None
        self._hash = audio_hash

    @classmethod
    def from_file(cls, path: str | Path, id: str | None = None, lyrics: str = "", weight: float = 1.0) -> TasteSong:
        """A generated song: audio file on disk (hashed by its bytes)."""
        return cls(id if id is not None else Path(path).stem, lyrics, Path(path), weight)

    @property
    def has_audio(self) -> bool:
        return self._audio is not None or self._hash is not None

    def light(self) -> TasteSong:
        """The same song without its waveform: id, lyrics, weight and audio hash (hashing now if needed).

        Keep these for a whole catalog once its audio was analysed (e.g. by `MidiSimilarity.fit`).
        """
        source = self._audio if isinstance(self._audio, (str, Path)) else None
        return TasteSong(self.id, self.lyrics, source, self.weight, self.audio_hash if self.has_audio else None)

    @property
    def audio_path(self) -> Path | None:
        return Path(self._audio) if isinstance(self._audio, (str, Path)) else None

    def waveform(self) -> np.ndarray:
        """Mono float32 at 16 kHz, decoded (or loaded) once and kept."""
        if self._wave is None:
            if self._audio is None:
                detail = " (only its hash, and no cached analysis of it)" if self._hash else ""
                raise ValueError(f"song {self.id!r}: has no audio{detail}")
            if isinstance(self._audio, np.ndarray):
                wave = self._audio
            elif isinstance(self._audio, (str, Path)):
                wave = read_audio(self._audio)
            else:
                wave = self._audio()
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"song {self.id!r}: audio has shape {wave.shape}, expected a mono [frames] waveform")
            self._wave = wave
        return self._wave

    def release_audio(self) -> None:
        """Forget the decoded waveform (the hash is kept); a loader or path can decode it again."""
        if not isinstance(self._audio, np.ndarray):
            self._wave = None

    @property
    def duration_s(self) -> float:
        return len(self.waveform()) / SAMPLE_RATE

    @property
    def audio_hash(self) -> str:
        """Content hash of the audio, computed on first use."""
        if self._hash is None:
            path = self.audio_path
            self._hash = file_hash(path) if path is not None else waveform_hash(self.waveform())
        return self._hash

    def __repr__(self) -> str:
        kind = type(self._audio).__name__ if not isinstance(self._audio, Path) else f"path {self._audio}"
        return f"TasteSong(id={self.id!r}, lyrics={len(self.lyrics)} chars, audio={kind}, weight={self.weight})"


def iter_catalog_songs(dataset: SongDataset) -> Iterator[tuple[int, TasteSong]]:
    """(song index, song) for every decodable song in a dataset's shards; id and lyrics from its catalog.

    Shards are read in order, not by song, so iterate once: analyse each song (e.g. feed the
    iterator to `MidiSimilarity.fit`) and keep `song.light()` to score catalog songs later.
    """
    for index, wave in dataset.iter_songs():
        row = dataset.catalog.iloc[index]
        lyrics = row["lyrics"] if isinstance(row["lyrics"], str) else ""
        yield index, TasteSong(str(row["song_id"]), lyrics, wave)


@dataclass(frozen=True)
class TasteResult:
    """One candidate's judgement: a value, or the reason there is none (never both).

    Attributes:
        value: The score (each scorer documents its range), None on failure.
        failure: Why there is no value ("no lyrics", "unparseable: ...", "http 500 after 3 attempts").
        details: Scorer-specific extras (sub-scores, rationale, sizes) for reports.
    """

    value: float | None
    failure: str | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.value is None) == (self.failure is None):
            raise ValueError(f"TasteResult needs exactly one of value / failure, got {self.value!r} / {self.failure!r}")

    @classmethod
    def ok(cls, value: float, **details: object) -> TasteResult:
        return cls(float(value), None, details)

    @classmethod
    def failed(cls, failure: str, **details: object) -> TasteResult:
        return cls(None, failure, details)


class TasteScorer(ABC):
    """Score candidate songs against one user's history.

    Attributes:
        name: Short name for leaderboards (e.g. "midi_similarity", "lyric_judge/openai:gpt-4o-mini").
        kind: What produces the value, e.g. "llm" or "embedding, not LLM", so readers never
            mistake one kind of judge for another.
    """

    name: str = "taste"
    kind: str = "taste"

    @abstractmethod
    def score(self, candidates: Sequence[TasteSong], history: Sequence[TasteSong]) -> list[TasteResult]:
        """One `TasteResult` per candidate, in order; failures are results, not exceptions."""

    def prepare(self, songs: Sequence[TasteSong]) -> None:
        """Get ready to score `songs` in one pass (a scorer with per-song work batches it here); optional."""


def summarise(results: Iterable[TasteResult]) -> dict:
    """Mean over scored candidates, counts, and failures grouped by reason (for leaderboards)."""
    results = list(results)
    values = [r.value for r in results if r.value is not None]
    failures = Counter(r.failure for r in results if r.failure is not None)
    return {
        "mean": float(np.mean(values)) if values else None,
        "n_scored": len(values),
        "n_failed": sum(failures.values()),
        "failures": dict(failures.most_common()),
    }
