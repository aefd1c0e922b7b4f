"""The real-song check on a few karaoke melodies of lmd-lyrics-melody (skipped when the folder is absent)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from evaluation.real_songs import (
    chance_figures,
    counting_baseline,
    lyric_counts,
    model_figures,
    split_song_indices,
    syllables,
)
from lightning_modules.song_embeddings import SongEmbedder, embed_lyrics
from prepare.importers.midi import import_midi
from songdata import SongDataset
from songdata.dataset import load_tables
from songdata.splits import SplitConfig
from tests.conftest import SHARED_DATASETS
from tests.test_encoders import make_tiny_simsong

LMD = Path(os.environ.get("SIMSONG_DATASETS", SHARED_DATASETS)) / "lmd-lyrics-melody"
SECONDS = 6.0


def test_syllable_and_word_counts():
    assert [syllables(w) for w in ("the", "love", "hello", "beautiful", "I'm", "--")] == [1, 1, 2, 3, 1, 0]
    assert np.allclose(lyric_counts("hello my love"), np.log1p([4, 3]))


@pytest.fixture(scope="module")
def karaoke(tmp_path_factory) -> tuple[Path, Path]:
    if not LMD.is_dir():
        pytest.skip(f"{LMD} not found")
    folder = tmp_path_factory.mktemp("lmd")
    midi = folder / "midi"
    midi.mkdir()
    for path in sorted((LMD / "midi").glob("*.mid"))[:12]:
        (midi / path.name).symlink_to(path)
    out = folder / "set"
    import_midi(
        midi, out, split=SplitConfig(val_fraction=0.4), metadata=LMD / "metadata.csv", workers=1,
        max_seconds=SECONDS, renderer="synth", songs_per_shard=4, clip_lyrics=True,
    )
    return out, midi


def test_lyrics_are_clipped_to_the_rendered_audio(karaoke):
    out, _ = karaoke
    catalog = load_tables(out, require_splits=False).catalog
    full = pd.read_csv(LMD / "metadata.csv").assign(song_id=lambda m: m["file"].map(lambda f: Path(f).stem))
    full = full.set_index("song_id")["lyrics"]
    words = catalog["lyrics"].str.split().map(len)
    assert (words > 0).all() and (words < full.loc[catalog["song_id"]].str.split().map(len).to_numpy()).all()
    assert (catalog["duration_s"] <= SECONDS).all()


def test_baseline_and_model_figures_on_held_out_songs(karaoke, tmp_path):
    out, midi = karaoke
    catalog = load_tables(out, require_splits=False).catalog
    splits = split_song_indices(SongDataset(out, require_splits=False))
    assert sorted(splits["train"] + splits["val"]) == list(range(len(catalog))) and len(splits["val"]) >= 4
    paths = {p.stem: p for p in midi.glob("*.mid")}
    baseline = counting_baseline(catalog, paths, splits["train"], splits["val"], SECONDS)
    n = len(splits["val"])
    for prefix in ("a2l", "l2a"):
        assert 0 <= baseline[f"{prefix}_R@1"] <= baseline[f"{prefix}_R@10"] <= 1
        assert 1 <= baseline[f"{prefix}_medr"] <= n
    assert chance_figures(n)["a2l_medr"] == (n + 1) / 2
    module = make_tiny_simsong(tmp_path).eval()
    with torch.inference_mode():
        audio = SongEmbedder(fuse="audio").embed(module, SongDataset(out, require_splits=False))[splits["val"]]
        lyrics = embed_lyrics(module, catalog.iloc[splits["val"]])
    figures = model_figures(audio, lyrics)
    assert set(figures) == set(baseline) and all(np.isfinite(v) for v in figures.values())
