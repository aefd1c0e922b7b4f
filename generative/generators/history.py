"""The `history` generator: new songs learnt from the user's history alone (works on any dataset with audio).

Melody, rhythm and harmony: an order-2 Markov chain over note events of the basic-pitch
transcriptions of the user's most played history songs (`generative.melody_markov`), rendered
by a generic additive synthesiser. Lyrics: a word trigram model of the history's lyrics
(`generative.lyric_ngram`). It knows nothing of how the dataset was made: no tags, no styles.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from generative.generators import HISTORY_MODEL
from generative.generators.base import GeneratedSong, Generator, GeneratorUnavailable, safe_name, write_wav_atomic
from generative.lyric_ngram import LyricNgram
from generative.melody_markov import EventMarkov, note_events, render_notes
from generative.prompts import Prompt
from songdata.audio import SAMPLE_RATE
from taste.catalog_audio import CatalogAudio, catalog_audio

log = logging.getLogger(__name__)


class HistoryGenerator(Generator):
    """Songs from Markov/n-gram models of one user's history.

    Args:
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.wav`.
        dataset: The `SongDataset` whose training histories and shards are read.
        cache_dir: Shared transcription cache (`taste.catalog_audio` layout).
        seconds: Length of each song.
        clips_per_request: Songs per request.
        seed: Mixed into each request's seed.
        max_history_songs: Most played history songs the models learn from.
        order: Markov order (events of context).
    """

    backend = "history"
    model = HISTORY_MODEL

    def __init__(
        self,
        audio_dir: Path,
        dataset,
        cache_dir: Path,
        seconds: float = 12.0,
        clips_per_request: int = 2,
        seed: int = 0,
        max_history_songs: int = 16,
        order: int = 2,
    ) -> None:
        if dataset is None or not dataset.has_audio:
            raise GeneratorUnavailable("history backend: needs a dataset folder with audio shards")
        self.audio_dir, self.data, self.seconds, self.seed = Path(audio_dir), dataset.interactions, seconds, seed
        self.clips_per_request, self.max_history_songs, self.order = clips_per_request, max_history_songs, order
        self.catalog: CatalogAudio = catalog_audio(dataset, cache_dir)

    def _history(self, user_id: str) -> tuple[list[int], list[float]]:
        """The user's most played training songs (ties: catalog order) and their plays."""
        row = self.data.train[self.data.user_ids.index(user_id)]
        order = np.lexsort((row.indices, -row.data))[: self.max_history_songs]
        return row.indices[order].tolist(), row.data[order].astype(float).tolist()

    def prepare(self, user_ids: list[str]) -> None:
        """Transcribe every needed history song in one pass over the shards."""
        self.catalog.ensure(i for user in user_ids for i in self._history(user)[0])

    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        songs, weights = self._history(user_id)
        self.catalog.ensure(songs)
        events, used = [], []
        for index, weight in zip(songs, weights):
            transcription = self.catalog.transcription(index)
            if transcription is not None and len(notes := note_events(transcription.notes)):
                events.append(notes)
                used.append(weight)
        if not events:
            raise GeneratorUnavailable(f"history backend: user {user_id} has no transcribable history song")
        melody = EventMarkov(self.order).fit(events, used)
        lyrics = [self.catalog.song(i).lyrics for i in songs]
        words = LyricNgram().fit(lyrics, weights)
        out = []
        for k in range(self.clips_per_request):
            seed = int(np.random.SeedSequence([self.seed, prompt.seed, k]).generate_state(1)[0])
            rng = np.random.default_rng(seed)
            wave = render_notes(melody.sample(self.seconds, rng), self.seconds, SAMPLE_RATE)
            clip_id = f"history-{seed:08x}"
            path = self.audio_dir / safe_name(user_id) / f"{clip_id}.wav"
            write_wav_atomic(wave, path)
            lines = [] if prompt.make_instrumental else words.lines(5, rng)
            text = "\n".join([*lines, lines[0]]) if lines else ""
            out.append(
                GeneratedSong(
                    clip_id=clip_id,
                    audio_path=path,
                    title=prompt.title,
                    lyrics=text,
                    tags=prompt.style,
                    model=self.model,
                    backend=self.backend,
                    duration_s=float(self.seconds),
                    metadata={"seed": seed, "history_songs": len(events), "order": self.order},
                )
            )
        return out
