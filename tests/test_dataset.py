"""The dataset folder: validation, splits, shard round trip."""

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import webdataset as wds

from songdata import SongDataset
from songdata.audio import decode_audio_bytes
from songdata.dataset import DatasetError, load_tables
from songdata.splits import SplitConfig, split_interactions
from tests.conftest import ToneSource


def test_load_validates_and_names_file_and_column(tiny_dataset):
    catalog = pd.read_parquet(tiny_dataset / "catalog.parquet")
    catalog.drop(columns=["title"]).to_parquet(tiny_dataset / "catalog.parquet")
    with pytest.raises(DatasetError, match=r"catalog\.parquet: missing column\(s\) \['title'\]"):
        load_tables(tiny_dataset)
    pd.concat([catalog, catalog.iloc[:1]]).to_parquet(tiny_dataset / "catalog.parquet")
    with pytest.raises(DatasetError, match=r"catalog\.parquet: column 'song_id' has 1 duplicate"):
        load_tables(tiny_dataset)
    catalog.to_parquet(tiny_dataset / "catalog.parquet")

    interactions = pd.read_parquet(tiny_dataset / "interactions.parquet")
    bad = interactions.copy()
    bad.loc[0, "song_id"] = "nope"
    bad.to_parquet(tiny_dataset / "interactions.parquet")
    with pytest.raises(DatasetError, match=r"interactions\.parquet: column 'song_id' has 1 song id\(s\) not in"):
        load_tables(tiny_dataset)
    interactions.to_parquet(tiny_dataset / "interactions.parquet")

    similarity = pd.read_parquet(tiny_dataset / "similarity.parquet")
    similarity.loc[0, "score"] = 1.5
    similarity.to_parquet(tiny_dataset / "similarity.parquet")
    with pytest.raises(DatasetError, match=r"similarity\.parquet: column 'score' has 1 value\(s\) out of range .*expected a number in \[0, 1\]"):
        load_tables(tiny_dataset)


def test_unreadable_table_is_named(tiny_dataset):
    (tiny_dataset / "interactions.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match=r"interactions\.parquet: not a readable parquet"):
        load_tables(tiny_dataset)


def _interactions(seed=0, n_users=40, n_songs=60):
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"s{s}", 1.0, p) for u in range(n_users) for p, s in enumerate(rng.choice(n_songs, 20, replace=False))]
    return pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])


def test_splits_are_seeded_disjoint_and_hold_out_cold_songs():
    interactions = _interactions()
    splits, meta = split_interactions(interactions, SplitConfig(seed=3))
    again, _ = split_interactions(interactions.sample(frac=1, random_state=1), SplitConfig(seed=3))
    for name in splits:
        pd.testing.assert_frame_equal(splits[name], again[name])
    other, _ = split_interactions(interactions, SplitConfig(seed=4))
    assert not splits["test"].equals(other["test"])

    cold = set(meta["cold_song_ids"])
    assert len(cold) == 6  # 10% of 60 songs
    assert not cold & set(splits["train"]["song_id"]) and not cold & set(splits["val"]["song_id"])
    assert cold <= set(splits["test"]["song_id"])
    keys = [set(zip(df.user_id, df.song_id)) for df in splits.values()]
    assert sum(map(len, keys)) == len(interactions) and not (keys[0] & keys[1] or keys[0] & keys[2])
    warm_test = splits["test"][~splits["test"]["song_id"].isin(cold)]
    assert abs(len(warm_test) / len(interactions) - 0.1 * 0.9) < 0.03


def test_cold_fraction_zero_turns_the_holdout_off():
    splits, meta = split_interactions(_interactions(), SplitConfig(cold_fraction=0.0))
    assert meta["cold_song_ids"] == []
    assert len(splits["train"]) / sum(map(len, splits.values())) == pytest.approx(0.8, abs=0.01)


def test_interaction_data_indexes_splits_and_keeps_order(tiny_dataset):
    opened = SongDataset(tiny_dataset)
    data = opened.interactions
    dataset = opened.tables
    assert data.train.shape == (12, 24)
    assert data.train.nnz == len(dataset.splits["train"])
    assert data.test.nnz == len(dataset.splits["test"])
    assert data.train[:, data.cold_songs].nnz == 0 and len(data.cold_songs) == 5
    positions = dataset.interactions.set_index(["user_id", "song_id"])["position"]
    for user, history in zip(data.user_ids, data.histories):
        ids = [data.song_ids[i] for i in history]
        assert [positions[(user, s)] for s in ids] == sorted(positions[(user, s)] for s in ids)
    assert data.similarity is not None and (data.similarity != data.similarity.T).nnz == 0
    assert opened.interactions is data and data.similarity is opened.similarity  # built once


def test_shard_round_trip_and_index(tiny_dataset):
    dataset = load_tables(tiny_dataset)
    index = json.loads((tiny_dataset / "shards" / "index.json").read_text())
    assert sum(e["count"] for entries in index["splits"].values() for e in entries) == 24
    cold = set(dataset.split_meta["cold_song_ids"])
    seen = {}
    for split, entries in index["splits"].items():
        for entry in entries:
            for sample in wds.WebDataset(str(tiny_dataset / "shards" / entry["url"]), shardshuffle=False):
                meta = json.loads(sample["json"])
                seen[meta["song_id"]] = split
                row = dataset.catalog.iloc[meta["song_index"]]
                assert sample["txt"].decode() == row["lyrics"] and meta["tags"] == list(row["tags"])
                expected = ToneSource()({"song_index": meta["song_index"]})
                np.testing.assert_allclose(decode_audio_bytes(sample["flac"]), expected, atol=1 / 32768)
    assert len(seen) == 24
    assert {s for s, split in seen.items() if split == "train"}.isdisjoint(cold)
    assert {s for s, split in seen.items() if split == "test"} == cold


def test_shard_writing_resumes_without_rewriting_finished_shards(tiny_dataset):
    from songdata.shards import assign_shard_splits, write_shards

    dataset = load_tables(tiny_dataset)
    shards = sorted((tiny_dataset / "shards").glob("*.tar"))
    mtimes = {p: p.stat().st_mtime_ns for p in shards}
    shards[0].unlink()
    assignment = assign_shard_splits(dataset.catalog, dataset.split_meta["cold_song_ids"], 0.2, 0)
    report = write_shards(tiny_dataset, dataset.catalog, assignment, ToneSource(), songs_per_shard=4, workers=1)
    assert report.written["samples"] == 4
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in shards[1:])
    assert tarfile.is_tarfile(shards[0])


def test_song_dataset_answers_from_one_opened_folder(tiny_dataset, tmp_path):
    dataset = SongDataset(tiny_dataset)
    assert dataset.has_audio and dataset.name == tiny_dataset.name and len(dataset.catalog) == 24
    train_urls = dataset.shard_urls("train")
    assert train_urls and all(Path(url).parent == tiny_dataset / "shards" for url in train_urls)
    assert sum(dataset.num_samples(split) for split in ("train", "val", "test")) == 24
    wanted = {0, 5, 7}
    assert {index for index, _ in dataset.iter_songs(wanted)} == wanted
    elsewhere = SongDataset(tiny_dataset, shard_url_template="pipe:cat /bucket/{name}")
    assert elsewhere.shard_urls("train") == [f"pipe:cat /bucket/{Path(u).name}" for u in train_urls]

    shutil.copytree(tiny_dataset, tmp_path / "no_audio", ignore=shutil.ignore_patterns("shards"))
    silent = SongDataset(tmp_path / "no_audio")
    assert not silent.has_audio and silent.interactions.n_songs == 24
    with pytest.raises(DatasetError, match="no audio shards"):
        next(silent.iter_songs())
