"""Catalog songs for taste scoring and the history generator: transcribed once, then known by audio hash.

Audio is decoded from the dataset's shards only for songs not transcribed before; each song's
audio hash is kept in `<cache>/catalog_audio_hashes.json`, so a later run whose transcriptions
are cached (`<cache>/midi/`) decodes nothing. Layout shared by the leaderboard's generative stage
and the `history` generator, so one transcribes what the other needs.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from songdata import SongDataset
from songdata.atomic_files import write_json_atomic
from taste.base import TasteSong
from taste.transcription import Transcriber, Transcription

log = logging.getLogger(__name__)

HASHES_FILE = "catalog_audio_hashes.json"
MIDI_CACHE = "midi"


class CatalogAudio:
    """Catalog songs (lyrics + audio hash) of a `SongDataset`, transcribed into `transcriber`'s cache.

    Args:
        dataset: The `SongDataset` (its catalog and, for decoding, its shards).
        transcriber: Where transcriptions are cached (by audio hash).
        hashes_path: JSON map of catalog index -> audio hash.
    """

    def __init__(self, dataset: SongDataset, transcriber: Transcriber, hashes_path: Path) -> None:
        self.dataset, self.transcriber, self.hashes_path = dataset, transcriber, Path(hashes_path)
        self._songs: dict[int, TasteSong] = {}
        self.decoded = 0
        self.skipped: Counter = Counter()  # shard data that could not be read, by reason

    def ensure(self, indices: Iterable[int]) -> None:
        """Make `indices` known: hash-only songs where transcribed before; decode and transcribe the rest."""
        wanted = {int(i) for i in indices} - set(self._songs)
        if not wanted:
            return
        hashes = json.loads(self.hashes_path.read_text()) if self.hashes_path.exists() else {}
        for index in list(wanted):
            known = hashes.get(str(index))
            if known and self.transcriber.is_cached(known):
                self._songs[index] = self._song(index, known)
                wanted.discard(index)
        if wanted and self.dataset.has_audio:
            for index, wave in self.dataset.iter_songs(wanted, skipped=self.skipped):
                song = TasteSong(str(index), "", wave)
                try:
                    self.transcriber.transcribe(song)  # cached now; later reads come from the cache
                except Exception as error:  # scored as "no audio" later
                    log.warning("catalog song %s could not be transcribed: %s", index, error)
                    continue
                self.decoded += 1
                hashes[str(index)] = song.audio_hash
                self._songs[index] = self._song(index, song.audio_hash)
                wanted.discard(index)
        for index in wanted:  # not in the shards, or untranscribable: "no audio"
            self._songs[index] = self._song(index, None)
        if self.hashes_path.exists():  # with what another evaluation sharing the cache added meanwhile
            hashes = {**json.loads(self.hashes_path.read_text()), **hashes}
        write_json_atomic(self.hashes_path, hashes, sort_keys=True)

    def _song(self, index: int, audio_hash: str | None) -> TasteSong:
        row = self.dataset.catalog.iloc[index]
        lyrics = row["lyrics"] if isinstance(row["lyrics"], str) else ""
        return TasteSong(str(row["song_id"]), lyrics, None, audio_hash=audio_hash)

    def song(self, index: int, weight: float = 1.0) -> TasteSong:
        """A light copy of a known song (call `ensure` first) with its own weight."""
        base = self._songs[int(index)]
        return TasteSong(base.id, base.lyrics, None, weight, base._hash)

    def transcription(self, index: int) -> Transcription | None:
        """The song's notes, or None when it has no audio."""
        song = self._songs[int(index)]
        return self.transcriber.transcribe(song) if song.has_audio else None


def catalog_audio(dataset: SongDataset, cache_dir: str | Path) -> CatalogAudio:
    """The catalog's audio with the shared cache layout under `cache_dir`."""
    cache_dir = Path(cache_dir)
    return CatalogAudio(dataset, Transcriber(cache_dir / MIDI_CACHE), cache_dir / HASHES_FILE)
