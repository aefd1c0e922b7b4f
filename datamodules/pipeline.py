"""Webdataset pipelines that turn shards into batches of song segments.

Training (open_clip's recipe): shards are resampled with replacement and every worker yields
the same number of full batches, so under DDP no rank runs dry and collectives never hang.
Evaluation: finite shards dealt to workers, and samples dealt to ranks by song index, so each
sample is seen exactly once across ranks × workers even when there are fewer shards than ranks.

Bad samples never stop a run: they are dropped and counted per reason, and the counts travel
with the next batch (`batch["skipped"]`) out of the worker processes.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import webdataset as wds

from songdata.audio import SAMPLE_RATE, decode_segments

log = logging.getLogger(__name__)

SKIP_REASONS = (
    "missing audio or metadata member",
    "malformed metadata json",
    "lyrics not UTF-8",
    "missing lyrics",
    "undecodable audio",
    "empty audio",
    "unreadable shard data",
)
"""Why a sample is dropped. A count's key may add the error type in parentheses: `unreadable shard data (ReadError)`."""


@dataclass
class SkipCounter:
    """Per-worker counts of dropped samples; each worker process holds its own copy."""

    counts: Counter = field(default_factory=Counter)

    def handler(self, error: Exception) -> bool:
        """Webdataset exception handler: count the error (a broken tar member, say) and go on.

        A shard that vanished cannot be skipped: with resampling the stream would spin forever.
        """
        if isinstance(error, FileNotFoundError):
            raise error
        self.counts[f"unreadable shard data ({type(error).__name__})"] += 1
        log.warning("skipping unreadable shard data: %s", error)
        return True

    def take(self) -> dict[str, int]:
        counts = dict(self.counts)
        self.counts.clear()
        return counts


@dataclass
class SegmentSpec:
    """How songs are cut into the two segments of a training or evaluation sample."""

    segment_seconds: float = 3.0
    require_lyrics: bool = True

    @property
    def length(self) -> int:
        return int(round(self.segment_seconds * SAMPLE_RATE))


def random_starts(length: int, rng: random.Random) -> Callable[[int], list[int]]:
    """Two independent random crops of the same song: the audio↔audio positives."""
    def starts(frames: int) -> list[int]:
        room = max(frames - length, 0)
        return [rng.randint(0, room), rng.randint(0, room)]

    return starts


def fixed_starts(length: int) -> Callable[[int], list[int]]:
    """The song's first and last segment: deterministic, and as far apart as the song allows."""
    return lambda frames: [0, max(frames - length, 0)]


def decode_sample(
    raw: dict, spec: SegmentSpec, counter: SkipCounter, starts: Callable[[int], list[int]]
) -> dict | None:
    """Decode one raw webdataset sample into its two segments (`audio`, `[2, T]`), chosen by `starts`;
    return None (counted) when it cannot be used."""
    key = raw.get("__key__", "?")
    if "flac" not in raw or "json" not in raw:
        counter.counts["missing audio or metadata member"] += 1
        return None
    try:
        meta = json.loads(raw["json"])
    except (UnicodeDecodeError, json.JSONDecodeError):
        counter.counts["malformed metadata json"] += 1
        return None
    try:
        lyrics = raw.get("txt", b"").decode("utf-8").strip()
    except UnicodeDecodeError:
        counter.counts["lyrics not UTF-8"] += 1
        return None
    if spec.require_lyrics and not lyrics:
        counter.counts["missing lyrics"] += 1
        return None
    try:
        audio, frames = decode_segments(raw["flac"], spec.length, starts)
    except Exception as error:  # libsndfile raises several types for corrupt audio
        counter.counts["undecodable audio"] += 1
        log.debug("sample %s: undecodable audio (%s)", key, error)
        return None
    if frames == 0 or not np.isfinite(audio).all():
        counter.counts["empty audio"] += 1
        return None
    return {"audio": audio, "lyrics": lyrics, "song_index": int(meta["song_index"]), "song_id": str(meta["song_id"])}


def collate(samples: list[dict], counter: SkipCounter) -> dict:
    """Stack segments into `[B, 2, T]` and attach the skip counts gathered since the last batch."""
    return {
        "audio": torch.from_numpy(np.stack([s["audio"] for s in samples])),
        "lyrics": [s["lyrics"] for s in samples],
        "song_index": torch.tensor([s["song_index"] for s in samples], dtype=torch.long),
        "song_id": [s["song_id"] for s in samples],
        "skipped": counter.take(),
    }


class _Stage:
    """Picklable pipeline stages bound to one spec, counter and seed."""

    def __init__(
        self, spec: SegmentSpec, counter: SkipCounter, seed: int, train: bool, shuffle_buffer: int = 0, epoch: int = 0
    ):
        self.spec, self.counter, self.seed, self.train = spec, counter, seed, train
        self.shuffle_buffer = shuffle_buffer
        self.epoch = epoch - 1  # advances per pass; persistent workers keep it across epochs

    def samples(self, source: Iterable[dict]) -> Iterator[dict]:
        worker = torch.utils.data.get_worker_info()
        self.epoch += 1
        # Seeded by epoch, not by history: a run resumed at epoch k sees what an unbroken run sees.
        rng = random.Random(f"{self.seed}-{worker.id if worker else 0}-{self.epoch}")
        if self.shuffle_buffer > 1:
            source = wds.shuffle(self.shuffle_buffer, initial=min(self.shuffle_buffer, 64), rng=rng)(source)
        starts = random_starts(self.spec.length, rng) if self.train else fixed_starts(self.spec.length)
        for raw in source:
            sample = decode_sample(raw, self.spec, self.counter, starts)
            if sample is not None:
                yield sample

    def collate(self, samples: list[dict]) -> dict:
        return collate(samples, self.counter)


def _rank_filter(rank: int, world_size: int):
    def keep(raw: dict) -> bool:
        return int(raw["__key__"]) % world_size == rank

    return keep


def train_pipeline(
    urls: list[str],
    spec: SegmentSpec,
    batch_size: int,
    batches_per_worker: int,
    seed: int,
    shuffle_buffer: int,
    start_epoch: int = 0,
) -> wds.DataPipeline:
    """Endless resampled stream cut to `batches_per_worker` full batches per worker and epoch.

    Shard choice, shuffling and crops are seeded by (seed, worker, epoch), so `start_epoch`
    lets a resumed run continue with the data an uninterrupted run would have seen.
    """
    counter = SkipCounter()
    stage = _Stage(spec, counter, seed, train=True, shuffle_buffer=shuffle_buffer, epoch=start_epoch)
    shards = wds.ResampledShards(urls, seed=seed, deterministic=True)
    shards.epoch = start_epoch - 1  # it advances once per pass, like the stage
    return wds.DataPipeline(
        shards,
        wds.tarfile_to_samples(handler=counter.handler),
        stage.samples,
        wds.batched(batch_size, collation_fn=stage.collate, partial=False),
    ).with_epoch(batches_per_worker)


def eval_pipeline(
    urls: list[str], spec: SegmentSpec, batch_size: int, rank: int = 0, world_size: int = 1
) -> wds.DataPipeline:
    """Finite pass: shards dealt to workers, samples dealt to ranks by song index."""
    counter = SkipCounter()
    stage = _Stage(spec, counter, seed=0, train=False)
    return wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=counter.handler),
        wds.select(_rank_filter(rank, world_size)),
        stage.samples,
        wds.batched(batch_size, collation_fn=stage.collate, partial=True),
    )
