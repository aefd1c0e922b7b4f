"""The demo world: deterministic, complete, leak-free, resumable, and with structure a model can find."""

import dataclasses
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
from prepare.demo.calibration import gini, interaction_statistics
from prepare.demo.difficulty import style_oracle_recall
from prepare.demo.identity import LATENT_DIMS, draw_identity
from prepare.demo.styles import Vocabulary
from prepare.demo.world import DIFFICULTIES, identities, make_interactions, make_songs
from songdata.audio import SAMPLE_RATE, decode_audio_bytes
from songdata.dataset import load_tables
from songdata.shards import read_index

TINY = dict(scale=0.06, song_seconds=3.0)  # 42 songs, 30 listeners
TABLES = ("catalog.parquet", "interactions.parquet", "song_features.parquet")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "world"
    report = build_demo_world(root, seed=0, workers=2, **TINY)
    assert not report.skipped
    return root


@pytest.fixture(scope="module")
def easy_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "easy"
    build_demo_world(root, difficulty="easy", seed=0, workers=2, scale=0.1, song_seconds=3.0)
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
    dataset = load_tables(world)
    catalog = dataset.catalog
    assert len(catalog) == 42 and catalog["song_id"].iloc[0] == "demo-0001"
    assert dataset.interactions["user_id"].nunique() == 30
    assert (dataset.interactions["weight"] >= 1).all()
    assert dataset.similarity is None  # a similarity must come from training co-listening, not from hidden labels
    index = read_index(world)
    counts = sum(shard["count"] for shards in index["splits"].values() for shard in shards)
    assert counts == len(catalog)  # nothing skipped
    assert set(shard_samples(world)) == set(catalog["song_id"])
    features = pd.read_parquet(world / "song_features.parquet")
    assert list(features["song_id"]) == list(catalog["song_id"])
    assert not set(features.columns) - {"song_id"} & set(catalog.columns)  # hidden labels stay out of the catalog
    known = {tag for s in STYLES for tag in (s.genre, s.mood, *s.extra_tags)}
    assert set().union(*map(set, catalog["tags"])) <= known
    assert (catalog["tags"].map(len) == 0).any() or (catalog["tags"].map(len) < 2).any()  # tags are partial


def test_easy_world_is_the_first_world(easy_world):
    """Songs are their style's type: audio, lyrics and tags carry the style and nothing more."""
    catalog = load_tables(easy_world).catalog
    features = pd.read_parquet(easy_world / "song_features.parquet")
    assert len(catalog) == 40
    assert (features.groupby("style")[list(LATENT_DIMS)].nunique() == 1).all().all()
    styles = {s.name: s for s in STYLES}
    for tags, style, tempo in zip(catalog["tags"], features["style"], features["tempo"]):
        assert list(tags[:2]) == [styles[style].genre, styles[style].mood]
        assert styles[style].tempo[0] <= tempo <= styles[style].tempo[1]
    with pytest.raises(ValueError, match="difficulty must be one of"):
        build_demo_world(easy_world, difficulty="medium")


def test_identity_drives_audio_and_lyrics_within_a_style():
    """Beyond the style, a song's latent identity moves its tempo, mode, lyrics' words and shape, with noise."""
    songs = make_songs(400, seed=0, config=DIFFICULTIES["hard"])
    within = songs.groupby("style")
    tempo = songs["tempo"] - within["tempo"].transform("mean")
    energy = songs["energy"] - within["energy"].transform("mean")
    assert 0.3 < np.corrcoef(tempo, energy)[0, 1] < 0.95
    lines = songs["lyrics"].str.count("\n") + 1
    assert np.corrcoef(lines - lines.groupby(songs["style"]).transform("mean"), energy)[0, 1] > 0.3
    minor = songs["mode"].isin(["minor", "phrygian", "dorian"])
    dark = songs["darkness"] - within["darkness"].transform("mean")
    assert dark[minor].mean() > dark[~minor].mean() + 0.05
    dark_words = songs["lyrics"].str.lower().str.count(r"\b(?:dark|grim|black|bleak|bitter)\b")
    assert np.corrcoef(dark_words, dark)[0, 1] > 0.15
    # Styles overlap: some songs of one style are faster than some of the next style's range.
    assert (songs.groupby("style")["tempo"].agg(["min", "max"]).diff(axis=1)["max"] > 0).all()
    assert draw_identity("calm folk", seed=1, spread=0.2) != draw_identity("calm folk", seed=2, spread=0.2)


def test_histories_follow_drifting_tastes_in_the_latent_space():
    config = dataclasses.replace(DIFFICULTIES["hard"], songs=300, users=60, history_median=30)
    songs = make_songs(config.songs, seed=0, config=config)
    interactions = make_interactions(songs, config.users, seed=0, config=config)
    latent = pd.DataFrame(np.stack([i.vector() for i in identities(songs)]), index=songs["song_id"])
    x = latent.loc[interactions["song_id"]].to_numpy()
    same_user = (interactions["user_id"].to_numpy()[1:] == interactions["user_id"].to_numpy()[:-1])
    consecutive = np.linalg.norm(x[1:] - x[:-1], axis=1)[same_user].mean()
    shuffled = np.linalg.norm(x - x[np.random.default_rng(0).permutation(len(x))], axis=1).mean()
    assert consecutive < 0.9 * shuffled


def test_cold_songs_stay_out_of_training(world):
    dataset = load_tables(world)
    cold = set(dataset.split_meta["cold_song_ids"])
    assert cold
    assert not cold & set(dataset.splits["train"]["song_id"])
    assert not cold & set(dataset.splits["val"]["song_id"])
    splits = {song: sample["split"] for song, sample in shard_samples(world).items()}
    assert all(splits[song] == "test" for song in cold)
    assert {song for song, split in splits.items() if split == "test"} == cold


def test_easy_styles_sound_alike_within_and_apart_across(easy_world):
    """The easy world's planted structure: mean log-mel spectra are closer within a style than across styles."""
    world = easy_world
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


def test_difficulty_json_holds_the_reference_figures(world):
    figures = json.loads((world / "difficulty.json").read_text())
    validation = figures["validation"]
    val_songs = {song for song, sample in shard_samples(world).items() if sample["split"] == "val"}
    assert validation["gallery_songs"] == len(val_songs)
    assert validation["chance_a2l_R@10"] == pytest.approx(min(1.0, 10 / len(val_songs)), abs=1e-4)
    style_of = pd.read_parquet(world / "song_features.parquet").set_index("song_id")["style"]
    styles = style_of.loc[sorted(val_songs)].to_numpy()
    assert validation["style_oracle_a2l_R@10"] == pytest.approx(style_oracle_recall(styles), abs=1e-4)
    assert 0.0 <= validation["nn_style_accuracy_mean_log_mel"] <= 1.0
    demo = figures["calibration"]["demo"]
    assert demo == interaction_statistics(load_tables(world).interactions)


def test_style_oracle_and_calibration_statistics():
    assert style_oracle_recall(np.array(["a"] * 20 + ["b"] * 5)) == pytest.approx((20 * 0.5 + 5 * 1.0) / 25)
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0.0] * 9 + [1.0])) == pytest.approx(0.9)
    plays = pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2", "u2"], "song_id": ["a", "b", "a", "c", "d"], "weight": [96.0, 1, 1, 1, 1],
    })
    stats = interaction_statistics(plays)
    assert stats["history_median"] == 2.5 and stats["top1pct_play_share"] == pytest.approx(97 / 100)


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
