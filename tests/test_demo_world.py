"""The demo world: deterministic, complete, leak-free, resumable, and with structure a model can find."""

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pytest
import torch
import torchaudio

from songdata.audio import SAMPLE_RATE, decode_audio_bytes
from songdata.dataset import load_dataset
from prepare.demo import (
    STYLES,
    build_demo_world,
    compose_song,
    default_demo_root,
    ensure_demo_world,
    plan_song,
    render_midi,
    write_lyrics,
)
from prepare.demo.styles import Vocabulary
from songdata.shards import read_index

TINY = dict(scale=0.1, song_seconds=3.0)
TABLES = ("catalog.parquet", "interactions.parquet", "similarity.parquet", "song_features.parquet")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "world"
    report = build_demo_world(root, seed=0, workers=2, **TINY)
    assert not report.skipped
    return root


def shard_samples(root: Path) -> dict[str, dict]:
    """song_id → {"split", "flac", "txt"} over every shard."""
    samples = {}
    for tar_path in sorted((root / "shards").glob("*.tar")):
        members: dict[str, dict] = {}
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                members.setdefault(key, {})[ext] = tar.extractfile(member).read()
        for parts in members.values():
            song_id = json.loads(parts["json"])["song_id"]
            split = tar_path.name.split("-")[0]
            samples[song_id] = {"split": split, "flac": parts["flac"], "txt": parts["txt"].decode()}
    return samples


def test_same_seed_gives_the_same_world(world, tmp_path):
    again = tmp_path / "again"
    build_demo_world(again, seed=0, workers=1, **TINY)
    for table in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(world / table), pd.read_parquet(again / table), obj=table)
    for name in ("train", "val", "test"):
        split = Path("splits") / f"{name}.parquet"
        pd.testing.assert_frame_equal(pd.read_parquet(world / split), pd.read_parquet(again / split), obj=str(split))
    first, second = shard_samples(world), shard_samples(again)
    assert first.keys() == second.keys()
    assert all(first[song]["flac"] == second[song]["flac"] for song in first)


def test_another_seed_gives_another_world_in_the_same_folder(world, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(world, other)
    build_demo_world(other, seed=1, workers=1, **TINY)
    for table in TABLES:
        assert not pd.read_parquet(world / table).equals(pd.read_parquet(other / table)), table
    # The shards were rendered again (parameters changed), so audio follows the new seed.
    first, second = shard_samples(world), shard_samples(other)
    assert first["demo-0001"]["flac"] != second["demo-0001"]["flac"]
    catalog = pd.read_parquet(other / "catalog.parquet").set_index("song_id")
    assert all(second[song]["txt"] == catalog.loc[song, "lyrics"] for song in second)


def test_layout_is_complete_and_valid(world):
    dataset = load_dataset(world)
    catalog = dataset.catalog
    assert len(catalog) == 40 and catalog["song_id"].iloc[0] == "demo-0001"
    assert dataset.interactions["user_id"].nunique() == 30
    assert (dataset.interactions["weight"] >= 1).all()
    assert dataset.similarity["score"].between(0, 1).all()
    assert dataset.similarity.groupby("song_a").size().max() <= 20
    index = read_index(world)
    counts = sum(shard["count"] for shards in index["splits"].values() for shard in shards)
    assert counts == len(catalog)  # nothing skipped
    assert set(shard_samples(world)) == set(catalog["song_id"])
    features = pd.read_parquet(world / "song_features.parquet")
    assert list(features["song_id"]) == list(catalog["song_id"])
    styles = {s.name: s for s in STYLES}
    for tags, style, tempo in zip(catalog["tags"], features["style"], features["tempo"]):
        assert list(tags[:2]) == [styles[style].genre, styles[style].mood]
        assert styles[style].tempo[0] <= tempo <= styles[style].tempo[1]


def test_cold_songs_stay_out_of_training(world):
    dataset = load_dataset(world)
    cold = set(dataset.split_meta["cold_song_ids"])
    assert cold
    assert not cold & set(dataset.splits["train"]["song_id"])
    assert not cold & set(dataset.splits["val"]["song_id"])
    splits = {song: sample["split"] for song, sample in shard_samples(world).items()}
    assert all(splits[song] == "test" for song in cold)
    assert {song for song, split in splits.items() if split == "test"} == cold


def test_styles_sound_alike_within_and_apart_across(world):
    """The planted structure: mean log-mel spectra are closer within a style than across styles."""
    style_of = pd.read_parquet(world / "song_features.parquet").set_index("song_id")["style"]
    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=512, n_mels=48)
    songs, features = [], []
    for song, sample in shard_samples(world).items():
        wave = torch.from_numpy(decode_audio_bytes(sample["flac"]))
        songs.append(style_of[song])
        features.append(torch.log(mel(wave) + 1e-6).mean(dim=1).numpy())
    x = np.stack(features)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    distance = np.linalg.norm(x[:, None] - x[None], axis=-1)
    styles = np.array(songs)
    same = styles[:, None] == styles[None]
    off_diagonal = ~np.eye(len(styles), dtype=bool)
    assert distance[same & off_diagonal].mean() < 0.6 * distance[~same].mean()
    np.fill_diagonal(distance, np.inf)
    assert (styles[distance.argmin(1)] == styles).mean() > 0.8


def test_histories_and_similarity_follow_the_styles(world):
    dataset = load_dataset(world)
    style_of = pd.read_parquet(world / "song_features.parquet").set_index("song_id")["style"]
    listened = dataset.interactions.assign(style=dataset.interactions["song_id"].map(style_of))
    top_share = listened.groupby("user_id")["style"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert top_share.mean() > 0.45  # 8 styles: uniform listening would give about 0.2
    pairs = dataset.similarity
    same = pairs["song_a"].map(style_of) == pairs["song_b"].map(style_of)
    assert pairs.loc[same, "score"].mean() > pairs.loc[~same, "score"].mean() + 0.2


def test_rerun_rewrites_only_missing_shards(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world, copy)
    shards = sorted((copy / "shards").glob("*.tar"))
    assert len(shards) >= 3
    removed = shards[0]
    before = {p.name: p.stat().st_mtime_ns for p in shards[1:]}
    removed.unlink()
    build_demo_world(copy, seed=0, workers=1, **TINY)
    assert removed.exists()
    assert {p.name: p.stat().st_mtime_ns for p in shards[1:]} == before
    assert shard_samples(copy).keys() == shard_samples(world).keys()


def test_ensure_demo_world_returns_a_built_world_at_once(world, monkeypatch, tmp_path):
    index = world / "shards" / "index.json"
    mtime = index.stat().st_mtime_ns
    assert ensure_demo_world(world) == world
    assert index.stat().st_mtime_ns == mtime
    monkeypatch.setenv("SIMSONG_DATA", str(tmp_path))
    assert default_demo_root() == tmp_path / "demo"


def test_composer_and_synth_are_reusable():
    style = STYLES[0]
    pm = compose_song(style.name, seed=3, duration_s=4.0)
    assert pm.get_end_time() <= 4.0
    assert pm.get_tempo_changes()[1][0] == pytest.approx(plan_song(style, 3).tempo)
    assert {i.is_drum for i in pm.instruments} == {False, True}
    # Any MIDI renders: an exotic program (sound effects family) and an unmapped drum key too.
    other = pretty_midi.PrettyMIDI()
    for program, is_drum, pitch in ((125, False, 60), (0, True, 81)):
        instrument = pretty_midi.Instrument(program, is_drum=is_drum)
        instrument.notes.append(pretty_midi.Note(90, pitch, 0.1, 0.6))
        other.instruments.append(instrument)
    wave = render_midi(other)
    assert wave.dtype == np.float32 and np.isfinite(wave).all() and np.abs(wave).max() > 0.1


def test_lyrics_use_the_style_or_a_given_vocabulary():
    rng = np.random.default_rng(0)
    metal = write_lyrics("aggressive metal", rng)
    assert 5 <= len(metal.splitlines()) <= 7
    assert any(word in metal.lower() for word in STYLES[-1].vocabulary.nouns)
    space = Vocabulary(("star",), ("orbit",), ("silver",), ("the moon",))
    assert "star" in write_lyrics(STYLES[0], rng, vocabulary=space)
