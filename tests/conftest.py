"""Shared test setup: offline, CPU-only, seeded."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def wandb_records(run_dir: Path, complete: Callable[[list], bool], timeout_s: float = 30.0) -> list:
    """The records of an offline W&B run (its `.wandb` file, as `wandb sync` reads it), once `complete(records)`.

    W&B's service writes the file after `run.finish()` returns, so a test reads it again until the records
    it looks for have arrived (or the time is up, and the test's own assertions say what is missing).
    """
    import time

    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal.datastore import DataStore

    deadline = time.monotonic() + timeout_s
    while True:
        records = []
        for path in sorted(Path(run_dir).glob("*.wandb")):
            store = DataStore()
            store.open_for_scan(str(path))
            while (data := store.scan_data()) is not None:
                record = wandb_internal_pb2.Record()
                record.ParseFromString(data)
                records.append(record)
        if complete(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


class ToneSource:
    """Picklable audio source for tests: a song-specific tone, 2 s at 16 kHz."""

    def __call__(self, row: dict) -> np.ndarray:
        t = np.arange(32_000) / 16_000
        return (0.3 * np.sin(2 * np.pi * (200 + 10 * row["song_index"]) * t)).astype(np.float32)


def write_tiny_dataset(root: Path, n_songs: int = 24, n_users: int = 12, seed: int = 0) -> Path:
    """A small dataset folder with tone audio: catalog, interactions, similarity, splits and shards."""
    from songdata.dataset import write_tables
    from songdata.shards import assign_shard_splits, write_shards
    from songdata.splits import SplitConfig, write_splits

    rng = np.random.default_rng(seed)
    catalog = pd.DataFrame(
        {
            "song_id": [f"s{i:03d}" for i in range(n_songs)],
            "artist": [f"artist {i % 5}" for i in range(n_songs)],
            "title": [f"title {i}" for i in range(n_songs)],
            "lyrics": [f"la la line {i}\nsecond line {i}" for i in range(n_songs)],
            "tags": [["pop", "happy"] if i % 2 else ["rock", "sad"] for i in range(n_songs)],
            "duration_s": 2.0,
        }
    )
    rows = [
        (f"u{u:02d}", f"s{s:03d}", float(rng.integers(1, 5)), pos)
        for u in range(n_users)
        for pos, s in enumerate(rng.choice(n_songs, size=10, replace=False))
    ]
    interactions = pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])
    pairs = [(f"s{i:03d}", f"s{(i + 2) % n_songs:03d}", float(rng.random())) for i in range(n_songs)]
    similarity = pd.DataFrame(pairs, columns=["song_a", "song_b", "score"])
    write_tables(root, catalog, interactions, similarity)
    meta = write_splits(root, interactions, SplitConfig(seed=seed, cold_fraction=0.2))
    assignment = assign_shard_splits(catalog, meta["cold_song_ids"], 0.2, seed)
    write_shards(root, catalog, assignment, ToneSource(), songs_per_shard=4, workers=1)
    return root


@pytest.fixture(autouse=True)
def _finish_wandb_runs():
    """Each test's W&B run ends with the test, as it does with a process; a later logger would join it."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "tiny")
