"""Both taste scorers and the catalog songs they need: one panel scores every row against one reference.

Shared by the leaderboard's generative stage and the `GenerativeComparison` callback. A
candidate is never part of its own reference: a candidate that is a reference song is scored
against the other reference songs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from songdata import SongDataset
from taste import EmbeddingLyricJudge, LLMLyricJudge, MidiSimilarity, OpenAIChatBackend, TasteScorer, TasteSong
from taste.catalog_audio import HASHES_FILE, MIDI_CACHE, CatalogAudio

TASTE_METRICS = ("midi_similarity", "lyric_relevance")


@dataclass
class JudgeConfig:
    """The lyric judge.

    Args:
        backend: `embedding` (offline MiniLM cosine, kind "embedding, not LLM") or `openai` (an LLM
            on any OpenAI-compatible server, rubric-graded: vLLM, Ollama, llama.cpp's server).
        model: `openai`: the model name (required); `embedding`: a sentence encoder, empty = the shipped MiniLM.
        base_url: `openai`: the server, e.g. http://localhost:8000/v1.
        api_key_env: `openai`: environment variable holding the key (never written anywhere).
    """

    backend: Literal["embedding", "openai"] = "embedding"
    model: str | None = None
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"


def build_judge(config: JudgeConfig, cache_dir: Path) -> TasteScorer:
    if config.backend == "embedding":
        return EmbeddingLyricJudge(config.model, cache_dir=cache_dir)
    if not config.model:
        raise ValueError("generative.judge.model: the openai judge needs a model name, got none")
    return LLMLyricJudge(OpenAIChatBackend(config.model, config.base_url, api_key_env=config.api_key_env))


class TastePanel:
    """A panel of both taste scorers (`TasteScorer`s) and the catalog songs they need, transcribed once."""

    def __init__(
        self,
        dataset: SongDataset,
        cache_dir: Path,
        judge: TasteScorer,
        reference_songs: int,
        seed: int,
        show_progress: bool = False,
    ) -> None:
        self.data, self.cache_dir = dataset.interactions, Path(cache_dir)
        self.midi = MidiSimilarity(self.cache_dir / MIDI_CACHE, show_progress=show_progress)
        self.catalog = CatalogAudio(dataset, self.midi.transcriber, self.cache_dir / HASHES_FILE)
        self.judge = judge
        self.reference_songs, self.seed = reference_songs, seed
        self._rows: dict[tuple[str, int], tuple[TasteSong, ...]] = {}

    @property
    def scorers(self) -> dict[str, TasteScorer]:
        return {"midi_similarity": self.midi, "lyric_relevance": self.judge}

    def prepare(self, indices: Sequence[int], others: Sequence[TasteSong] = ()) -> None:
        """Make catalog songs `indices` (and, before the first fit, MIDI similarity's reference sample) and
        songs from elsewhere (`others`, e.g. generated) ready to score: transcribed, lyrics embedded."""
        stats = self.cache_dir / MIDI_CACHE / "reference_stats.json"
        reference = []
        if self.midi.scalar_mean is None and not stats.exists():
            rng = np.random.default_rng(self.seed)
            reference = rng.choice(self.data.n_songs, min(self.reference_songs, self.data.n_songs), replace=False)
        self.catalog.ensure({int(i) for i in indices} | {int(i) for i in reference})
        if self.midi.scalar_mean is None:
            if stats.exists():
                self.midi.load_reference(stats)
            else:
                self.midi.fit([self.catalog.song(i) for i in reference])
        songs = [*(self.catalog.song(i) for i in indices), *others]
        self.midi.prepare(songs)
        self.judge.prepare(songs)

    def song(self, index: int, weight: float = 1.0) -> TasteSong:
        return self.catalog.song(index, weight)

    def _songs(self, split: Literal["train", "val", "test"], user: int) -> tuple[TasteSong, ...]:
        """A user's songs of one split, built once: every row of a stage scores against the same reference."""
        key = (split, user)
        if key not in self._rows:
            row = getattr(self.data, split)[user]
            self._rows[key] = tuple(self.song(i, w) for i, w in zip(row.indices, row.data))
        return self._rows[key]

    def history(self, user: int) -> tuple[TasteSong, ...]:
        """The user's training songs, weighted by play count."""
        return self._songs("train", user)

    def heldout(self, user: int, split: Literal["val", "test"] = "test") -> tuple[TasteSong, ...]:
        """The user's held-out songs of `split` (what they listened to next), weighted by play count."""
        return self._songs(split, user)

    def score(self, candidates: Sequence[TasteSong], reference: Sequence[TasteSong]) -> dict[str, list]:
        """Per scorer, one `TasteResult` per candidate; a candidate that is in `reference` is left out of it."""
        ids = {song.id for song in reference}
        results: dict[str, list] = {name: [None] * len(candidates) for name in self.scorers}
        by_reference: dict[str | None, list[int]] = {}  # None: the whole reference; else the song left out of it
        for i, song in enumerate(candidates):
            by_reference.setdefault(song.id if song.id in ids else None, []).append(i)
        groups = [
            (positions, [s for s in reference if s.id != left_out]) for left_out, positions in by_reference.items()
        ]
        for positions, songs in groups:
            for name, scorer in self.scorers.items():
                for position, result in zip(positions, scorer.score([candidates[i] for i in positions], songs)):
                    results[name][position] = result
        return results
