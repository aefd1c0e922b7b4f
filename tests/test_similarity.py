"""WNS similarity sources: co-listening from the training split only, cached; imported files as given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from songdata import SongDataset
from songdata.similarity import CO_LISTENING_CACHE, co_listening_similarity, song_similarity
from tests.conftest import write_tiny_dataset


def test_co_listening_is_the_cosine_of_song_columns_top_k() -> None:
    # Users × songs: songs 0 and 1 share both listeners, song 2 shares one with each, song 3 none.
    train = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    full = co_listening_similarity(train, top_k=3).toarray()
    assert full[0, 1] == pytest.approx(1.0) and full[0, 2] == pytest.approx(1 / 2)
    assert np.allclose(full, full.T) and np.all(np.diag(full) == 0) and full[3].sum() == 0
    top1 = co_listening_similarity(train, top_k=1).toarray()
    # Song 2's single best neighbour is tied between 0 and 1; symmetrising keeps 0–1 and one of song 2's links.
    assert top1[0, 1] == pytest.approx(1.0) and (top1[2] > 0).sum() == 1
    assert ((full >= 0) & (full <= 1)).all()


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = write_tiny_dataset(tmp_path / "tiny")
    (root / "similarity.parquet").unlink()  # a folder without an imported similarity
    return root


def test_co_listening_ignores_validation_and_test_interactions(folder: Path) -> None:
    first = song_similarity(SongDataset(folder), "auto")
    note = json.loads((folder / (CO_LISTENING_CACHE + ".json")).read_text())
    assert "train" in note["built_from"] and note["top_k"] == 100
    for name in ("val", "test"):  # every held-out pair moves to another song, and a new user appears
        split = pd.read_parquet(folder / "splits" / f"{name}.parquet")
        split["song_id"] = split["song_id"].sample(frac=1.0, random_state=1).to_numpy()
        extra = pd.DataFrame({"user_id": ["new"] * 3, "song_id": ["s000", "s001", "s002"], "weight": 1.0})
        pd.concat([split, extra]).drop_duplicates(["user_id", "song_id"]).to_parquet(folder / "splits" / f"{name}.parquet")
    interactions = pd.read_parquet(folder / "interactions.parquet")  # a split's users must be the folder's users
    extra = pd.DataFrame({"user_id": ["new"] * 3, "song_id": ["s000", "s001", "s002"], "weight": 1.0, "position": 0})
    pd.concat([interactions, extra]).to_parquet(folder / "interactions.parquet")
    (folder / CO_LISTENING_CACHE).unlink()  # rebuild from scratch, not from the cache
    second = song_similarity(SongDataset(folder), "co_listening")
    assert (first.matrix != second.matrix).nnz == 0 and "co-listening" in second.source
    train = pd.read_parquet(folder / "splits" / "train.parquet")
    train.iloc[: len(train) // 2].to_parquet(folder / "splits" / "train.parquet")
    third = song_similarity(SongDataset(folder), "co_listening")  # the cache notices the training split changed
    assert (first.matrix != third.matrix).nnz > 0


def test_sources_file_lyrics_and_errors(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no similarity.parquet"):
        song_similarity(SongDataset(folder), "file")
    assert song_similarity(SongDataset(folder), "lyrics") is None
    imported = write_tiny_dataset(tmp_path / "imported")
    given = song_similarity(SongDataset(imported), "auto")
    table = pd.read_parquet(imported / "similarity.parquet")
    assert "imported" in given.source and given.matrix.nnz == 2 * len(table)
    block = given.lookup(torch.tensor([0, 1]), torch.tensor([2, 3]))  # s000–s002 is in the file
    assert block.shape == (2, 2) and block[0, 0] == pytest.approx(table.loc[0, "score"])
