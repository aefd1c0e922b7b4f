"""The vectorised split and history ordering give what the plain per-user definitions give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from songdata.dataset import DatasetTables, normalise_catalog
from songdata.interactions import InteractionData
from songdata.splits import SplitConfig, choose_cold_songs, split_interactions


def _reference_split(interactions: pd.DataFrame, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """The split as first written, with string sorts and pandas groupbys (slow at scale, plain to read)."""
    merged = interactions.groupby(["user_id", "song_id"], as_index=False, sort=True).agg(weight=("weight", "sum"))
    is_cold = merged["song_id"].isin(set(choose_cold_songs(merged["song_id"], config.cold_fraction, config.seed)))
    warm = merged[~is_cold.to_numpy()].copy()
    warm["_order"] = np.random.default_rng([config.seed, 2]).random(len(warm))
    warm = warm.sort_values(["user_id", "_order"], kind="stable")
    rank = warm.groupby("user_id").cumcount().to_numpy()
    size = warm.groupby("user_id")["song_id"].transform("size").to_numpy()
    n_test = np.minimum(np.floor(size * config.test_fraction + 0.5).astype(int), np.maximum(size - 1, 0))
    n_val = np.minimum(np.floor(size * config.val_fraction + 0.5).astype(int), np.maximum(size - 1 - n_test, 0))
    part = np.where(rank < n_test, "test", np.where(rank < n_test + n_val, "val", "train"))
    splits = {name: warm[part == name] for name in ("train", "val", "test")}
    splits["test"] = pd.concat([splits["test"], merged[is_cold.to_numpy()]])
    return {name: df.sort_values(["user_id", "song_id"])[["user_id", "song_id", "weight"]].reset_index(drop=True)
            for name, df in splits.items()}


@pytest.mark.parametrize("seed", range(4))
def test_the_split_is_the_per_user_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    interactions = pd.DataFrame({
        "user_id": rng.choice([f"u{i}" for i in range(int(rng.integers(1, 30)))], n),
        "song_id": rng.choice([f"s{i}" for i in range(int(rng.integers(2, 60)))], n),  # with repeats to merge
        "weight": rng.random(n) * 3 + 0.1, "position": rng.integers(0, 9, n),
    })
    config = SplitConfig(seed=seed, cold_fraction=0.1 * (seed % 2), val_fraction=0.1 + 0.1 * seed)
    splits, meta = split_interactions(interactions, config)
    expected = _reference_split(interactions, config)
    for name in expected:
        pd.testing.assert_frame_equal(splits[name], expected[name], check_exact=True)
    assert meta["counts"] == {name: len(df) for name, df in expected.items()}


def test_histories_follow_the_first_listening_position_then_the_training_table():
    catalog = normalise_catalog(pd.DataFrame({"song_id": ["a", "b", "c", "d"], "artist": "x", "title": "t",
                                              "lyrics": "", "tags": [[]] * 4, "duration_s": 1.0}))
    interactions = pd.DataFrame({
        "user_id": ["u2", "u2", "u2", "u2", "u1", "u3"], "song_id": ["c", "a", "c", "b", "d", "a"],
        "weight": 1.0, "position": [5, 3, 1, 3, 0, 0],  # u2 heard c first at 5 (its later row says 1)
    })
    train = pd.DataFrame({"user_id": ["u2", "u2", "u2", "u2", "u1"], "song_id": ["c", "b", "d", "a", "d"],
                          "weight": 1.0})  # u2's d has no interaction row: it comes first (position -1)
    empty = train.iloc[:0]
    tables = DatasetTables(Path("t"), catalog, interactions, None, {"train": train, "val": empty, "test": empty}, {})
    data = InteractionData.from_tables(tables)
    assert data.user_ids == ["u1", "u2", "u3"]
    assert [h.tolist() for h in data.histories] == [[3], [3, 1, 0, 2], []]  # b and a tie at 3: table order
    assert all(h.dtype == np.int64 for h in data.histories)
    assert data.train.toarray().tolist() == [[0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
