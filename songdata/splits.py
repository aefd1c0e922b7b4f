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

from songdata.dataset import SPLIT_COLUMNS, SPLIT_NAMES, SPLITS_DIR, write_json_atomic, write_parquet_atomic


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
    a user's train and test.
    """
    interactions = (
        interactions.groupby(["user_id", "song_id"], as_index=False, sort=True)
        .agg(weight=("weight", "sum"), position=("position", "min"))
        .reset_index(drop=True)
    )
    cold = choose_cold_songs(interactions["song_id"], config.cold_fraction, config.seed)
    is_cold = interactions["song_id"].isin(set(cold)).to_numpy()
    warm = interactions[~is_cold].copy()
    rng = np.random.default_rng([config.seed, 2])
    warm["_order"] = rng.random(len(warm))
    warm = warm.sort_values(["user_id", "_order"], kind="stable")
    rank = warm.groupby("user_id").cumcount().to_numpy()
    size = warm.groupby("user_id")["song_id"].transform("size").to_numpy()
    n_test = np.floor(size * config.test_fraction + 0.5).astype(int)
    n_val = np.floor(size * config.val_fraction + 0.5).astype(int)
    # Users with very short histories keep at least one training interaction.
    n_test = np.minimum(n_test, np.maximum(size - 1, 0))
    n_val = np.minimum(n_val, np.maximum(size - 1 - n_test, 0))
    part = np.where(rank < n_test, "test", np.where(rank < n_test + n_val, "val", "train"))
    splits = {name: warm[part == name] for name in SPLIT_NAMES}
    splits["test"] = pd.concat([splits["test"], interactions[is_cold]])
    splits = {
        name: df.sort_values(["user_id", "song_id"], kind="stable")[list(SPLIT_COLUMNS)].reset_index(drop=True)
        for name, df in splits.items()
    }
    meta = {
        **asdict(config),
        "cold_song_ids": cold,
        "counts": {name: len(df) for name, df in splits.items()},
    }
    return splits, meta


def write_splits(root: str | Path, interactions: pd.DataFrame, config: SplitConfig) -> dict:
    """Split and write `splits/{train,val,test}.parquet` and `splits/meta.json`; returns the meta."""
    splits, meta = split_interactions(interactions, config)
    split_dir = Path(root) / SPLITS_DIR
    for name, df in splits.items():
        write_parquet_atomic(df, split_dir / f"{name}.parquet")
    write_json_atomic(meta, split_dir / "meta.json")
    return meta
