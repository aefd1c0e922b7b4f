"""The non-oracle generators (history, random) and the novelty check, on the tiny tone dataset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation.taste_panel import JudgeConfig, TastePanel, build_judge
from generative import choose_users, generate_for_users, load_config
from generative.generators.random_songs import WORDS
from songdata import SongDataset
from taste import TasteSong
from taste.novelty import nearest_history, ngram_overlap, words
from tests.conftest import write_tiny_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[SongDataset, Path]:
    tmp = tmp_path_factory.mktemp("history")
    return SongDataset(write_tiny_dataset(tmp / "tiny")), tmp


def generate(dataset: SongDataset, backend: str, out: Path, users: np.ndarray):
    args = ["--generator.backend", backend, "--generator.seconds", "2", "--generator.cache_dir", str(out / "cache")]
    return generate_for_users(dataset, users, load_config(args), out / backend)


def test_history_songs_come_from_the_users_own_notes_and_words(tiny):
    dataset, tmp = tiny
    data = dataset.interactions
    users = choose_users(data, 2, seed=0)
    run = generate(dataset, "history", tmp / "a", users)
    assert run.counts == {"complete": 2} and len(run.songs) == 4
    for song in run.songs:
        wave, rate = sf.read(song["audio_path"])
        assert rate == 16_000 and len(wave) == 32_000 and np.abs(wave).max() > 0.1
        assert song["backend"] == "history" and song["metadata"]["history_songs"] > 0
        user = data.user_ids.index(song["user_id"])
        history = set(words(" ".join(data.catalog["lyrics"].iloc[data.histories[user]])))
        assert words(song["lyrics"]) and set(words(song["lyrics"])) <= history
    again = generate(dataset, "history", tmp / "b", users)  # seeded: the same songs again
    assert [s["lyrics"] for s in again.songs] == [s["lyrics"] for s in run.songs]
    for a, b in zip(run.songs, again.songs):
        assert np.array_equal(sf.read(a["audio_path"])[0], sf.read(b["audio_path"])[0])


def test_random_songs_use_random_words_only(tiny):
    dataset, tmp = tiny
    run = generate(dataset, "random", tmp / "r", choose_users(dataset.interactions, 2, seed=0))
    assert len(run.songs) == 4 and all(set(words(s["lyrics"])) <= set(WORDS) for s in run.songs)


def test_prompts_and_non_oracle_generators_do_not_import_the_demo_world():
    code = ("import sys, generative.prompts, generative.generators.history, generative.generators.random_songs; "
            "print(sorted(m for m in sys.modules if m.startswith('prepare.demo')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_copy_of_a_history_song_is_a_near_copy_and_a_random_song_is_not(tiny):
    dataset, tmp = tiny
    data = dataset.interactions
    user = int(choose_users(data, 1, seed=0)[0])
    panel = TastePanel(dataset, tmp / "cache", build_judge(JudgeConfig(), tmp / "cache"), reference_songs=8, seed=0)
    panel.prepare(sorted(data.train[user].indices))
    original = int(data.train[user].indices[0])
    (wave,) = [w for i, w in dataset.iter_songs([original])]
    sf.write(tmp / "copy.wav", wave, 16_000)
    lyrics = data.catalog["lyrics"].iat[original]
    copy = nearest_history(panel.midi, TasteSong.from_file(tmp / "copy.wav", "copy", lyrics), panel.history(user))
    assert copy.near_copy and copy.midi == pytest.approx(1.0, abs=1e-4) and copy.lyrics == 1.0
    song = generate(dataset, "random", tmp / "n", np.array([user])).songs[0]
    fresh = nearest_history(panel.midi, TasteSong.from_file(song["audio_path"], "new", song["lyrics"]), panel.history(user))
    assert not fresh.near_copy and fresh.lyrics == 0.0
    assert ngram_overlap("a b c d", "x a b c y") == pytest.approx(0.5) and ngram_overlap("a b", "a b") is None
