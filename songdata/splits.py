"""Seeded train/val/test splits of interactions, with a cold-start song holdout.

Warm protocol (RecBole's "RO" ratio split): each user's interactions are shuffled and
cut 80/10/10. Cold protocol: a fraction of songs is held out entirely: every interaction
with them goes to test, so test holds songs no recommender saw during fitting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from songdata.atomic_files import write_json_atomic
from songdata.dataset import SPLIT_NAMES, SPLITS_DIR, write_parquet_atomic


@dataclass
class SplitConfig:
    """How interactions are split.

    Args:
        seed: Seed for every random choice of the split.
        val_fraction: Share of each user's warm interactions that goes to validation.
        test_fraction: Share of each user's warm interactions that goes to test.
        cold_fraction: Share of songs (with interactions) held out as cold-start songs; 0 turns it off.
    """

    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    cold_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction", "cold_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"SplitConfig.{name} must lie in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("SplitConfig: val_fraction + test_fraction must be < 1")


def choose_cold_songs(song_ids: pd.Series, fraction: float, seed: int) -> list[str]:
    """Pick a seeded fraction of the distinct songs in `song_ids` (sorted, so input order does not matter)."""
    unique = np.sort(song_ids.unique().astype(str))
    n_cold = int(round(fraction * len(unique)))
    rng = np.random.default_rng([seed, 1])
    return sorted(rng.choice(unique, size=n_cold, replace=False).tolist()) if n_cold else []


def split_interactions(
    interactions: pd.DataFrame, config: SplitConfig
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Split interactions per user, after moving cold-start songs' interactions to test.

    Repeated (user, song) rows are merged first (weights summed), so a song never lands in both
    a user's train and test. Every split lists its rows by (user_id, song_id). Ids are handled as integer
    codes of their sorted values, so tens of millions of rows split in seconds, not in string sorts.
    """
    (users, songs), merged = _merge_repeats(interactions)
    cold = choose_cold_songs(pd.Series(songs), config.cold_fraction, config.seed)
    is_cold = songs.isin(cold)[merged["song"].to_numpy()]
    part = np.full(len(merged), SPLIT_NAMES.index("test"), dtype=np.int8)
    part[~is_cold] = _warm_parts(merged["user"].to_numpy()[~is_cold], len(users), config)
    splits = {
        name: pd.DataFrame({
            "user_id": users.take(merged["user"].to_numpy()[part == i]),
            "song_id": songs.take(merged["song"].to_numpy()[part == i]),
            "weight": merged["weight"].to_numpy()[part == i],
        })
        for i, name in enumerate(SPLIT_NAMES)
    }
    meta = {
        **asdict(config),
        "cold_song_ids": cold,
        "counts": {name: len(df) for name, df in splits.items()},
    }
    return splits, meta


def _merge_repeats(interactions: pd.DataFrame) -> tuple[tuple[pd.Index, pd.Index], pd.DataFrame]:
    """(sorted user ids, sorted song ids) and one row per (user, song) as codes into them, weights summed,
    in (user_id, song_id) order."""
    user_codes, users = pd.factorize(interactions["user_id"], sort=True)
    song_codes, songs = pd.factorize(interactions["song_id"], sort=True)
    key = user_codes.astype(np.int64) * len(songs) + song_codes
    merged = interactions[["weight"]].groupby(key, sort=True).agg(weight=("weight", "sum"))
    return (pd.Index(users), pd.Index(songs)), pd.DataFrame({
        "user": merged.index.to_numpy() // len(songs), "song": merged.index.to_numpy() % len(songs),
        "weight": merged["weight"].to_numpy(),
    })


def _warm_parts(user: np.ndarray, n_users: int, config: SplitConfig) -> np.ndarray:
    """Index into SPLIT_NAMES of each warm row (rows in (user, song) order): each user's rows are shuffled
    (seeded) and cut test | val | train."""
    rng = np.random.default_rng([config.seed, 2])
    order = np.lexsort((rng.random(len(user)), user))
    size = np.bincount(user, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.arange(len(user)) - start[user[order]]
    size = size[user[order]]
    n_test = np.floor(size * config.test_fraction + 0.5).astype(int)
    n_val = np.floor(size * config.val_fraction + 0.5).astype(int)
    # Users with very short histories keep at least one training interaction.
    n_test = np.minimum(n_test, np.maximum(size - 1, 0))
    n_val = np.minimum(n_val, np.maximum(size - 1 - n_test, 0))
    names = np.array([SPLIT_NAMES.index(name) for name in ("test", "val", "train")], dtype=np.int8)
    part = np.empty(len(user), dtype=np.int8)
    part[order] = names[(rank >= n_test).astype(int) + (rank >= n_test + n_val)]
    return part


def write_splits(root: str | Path, interactions: pd.DataFrame, config: SplitConfig) -> dict:
    """Split and write `splits/{train,val,test}.parquet` and `splits/meta.json`; returns the meta."""
    splits, meta = split_interactions(interactions, config)
    split_dir = Path(root) / SPLITS_DIR
    for name, df in splits.items():
        write_parquet_atomic(df, split_dir / f"{name}.parquet")
    write_json_atomic(split_dir / "meta.json", meta, indent=2, sort_keys=True)
    return meta
