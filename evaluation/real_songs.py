"""The real-song check: held-out audio↔lyrics retrieval on karaoke melodies, against chance and a counting baseline.

A dataset folder from `prepare_data.py midi --clip_lyrics true` holds real melodies (rendered)
and the lyrics sung within the rendered audio. On its validation songs (never trained on),
each song's audio must find its own lyrics among all validation lyrics (a2l), and back (l2a).

The trivial baseline knows no content, only counts: a karaoke melody has about one note per
syllable, so it matches a melody's note count and sounding time (read from the MIDI the audio
was rendered from) with a lyric's syllable and word counts, through a linear map fitted on the
training songs. A model that does not beat it has learnt to count, not to listen.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prepare.importers.midi import read_midi
from songdata import SongDataset

RECALL_AT = (1, 5, 10)
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def syllables(word: str) -> int:
    """Vowel groups in a word (a silent final `e` dropped), at least 1: a rough English syllable count."""
    word = re.sub(r"[^a-z]", "", word.lower())
    if not word:
        return 0
    groups = len(_VOWEL_GROUPS.findall(word[:-1] if word.endswith("e") and len(word) > 2 else word))
    return max(groups, 1)


def lyric_counts(text: str) -> np.ndarray:
    """[log(1 + syllables), log(1 + words)] of a lyric."""
    words = text.split()
    return np.log1p([sum(syllables(w) for w in words), len(words)])


def melody_counts(path: str | Path, max_seconds: float) -> np.ndarray:
    """[log(1 + notes), log(1 + sounding seconds)] of a MIDI's notes that start before `max_seconds`."""
    notes = [n for i in read_midi(path).instruments if not i.is_drum for n in i.notes if n.start < max_seconds]
    sounding = sum(min(n.end, max_seconds) - n.start for n in notes)
    return np.log1p([len(notes), sounding])


def retrieval_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each query row's own item (the diagonal) among all columns; ties count in its favour."""
    positive = scores.diagonal().unsqueeze(1)
    return (scores > positive).sum(dim=1) + 1


def summarise_ranks(ranks: torch.Tensor, prefix: str) -> dict[str, float]:
    """R@1/5/10 and the median rank, as `SimSongModule` logs them."""
    ranks = ranks.float()
    figures = {f"{prefix}_R@{k}": float((ranks <= k).float().mean()) for k in RECALL_AT}
    figures[f"{prefix}_medr"] = float(ranks.median())
    return figures


def split_song_indices(dataset: SongDataset) -> dict[str, list[int]]:
    """Catalog rows per shard split (the shards of `val` hold the val songs)."""
    return {split: dataset.shard_songs(split).tolist() for split in dataset.shard_splits}


def counting_baseline(
    catalog: pd.DataFrame, midi_paths: dict[str, Path], train: list[int], val: list[int], max_seconds: float
) -> dict[str, float]:
    """a2l and l2a figures of the counting baseline on the `val` rows, its map fitted on the `train` rows."""
    def features(rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = catalog["song_id"].iloc[rows]
        melody = np.stack([melody_counts(midi_paths[song], max_seconds) for song in ids])
        lyric = np.stack([lyric_counts(text) for text in catalog["lyrics"].iloc[rows]])
        return melody, lyric

    train_melody, train_lyric = features(train)
    design = np.column_stack([train_lyric, np.ones(len(train))])
    weights, *_ = np.linalg.lstsq(design, train_melody, rcond=None)
    melody, lyric = features(val)
    predicted = np.column_stack([lyric, np.ones(len(val))]) @ weights
    scale = train_melody.std(0) + 1e-6
    distance = torch.from_numpy((((melody[:, None] - predicted[None]) / scale) ** 2).sum(-1))
    return {**summarise_ranks(retrieval_ranks(-distance), "a2l"), **summarise_ranks(retrieval_ranks(-distance.T), "l2a")}


def chance_figures(n: int) -> dict[str, float]:
    """Expected figures of a random ranking of `n` items (median rank (n + 1) / 2)."""
    figures = {}
    for prefix in ("a2l", "l2a"):
        figures.update({f"{prefix}_R@{k}": min(1.0, k / n) for k in RECALL_AT})
        figures[f"{prefix}_medr"] = (n + 1) / 2
    return figures


def model_figures(audio: np.ndarray, lyrics: np.ndarray) -> dict[str, float]:
    """a2l and l2a figures of unit-length audio and lyric embeddings of the same songs (row i = song i)."""
    scores = torch.from_numpy(audio) @ torch.from_numpy(lyrics).T
    return {**summarise_ranks(retrieval_ranks(scores), "a2l"), **summarise_ranks(retrieval_ranks(scores.T), "l2a")}
