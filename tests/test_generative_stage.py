"""The leaderboard's generative stage (taste scores of generated songs and of every model's top-k) and the
GenerativeComparison callback, on the tiny tone dataset."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
from lightning.pytorch.loggers import CSVLogger

from evaluation.generative_stage import GenerativeConfig
from evaluation.leaderboard import Leaderboard
from recommenders import ALSRecommender, PopularityRecommender
from tests.conftest import write_tiny_dataset

STAGE = dict(enabled=True, num_users=3, reference_songs=6, generate_args=["--generator.seconds", "2"])


def leaderboard(**generative) -> Leaderboard:
    return Leaderboard(
        baselines=[PopularityRecommender(), ALSRecommender(factors=4, iterations=3)], run_dirs=[], ks=[5, 10],
        n_bootstrap=50, wandb=False, show_progress=False, report_metrics=["recall@10"],
        generative=GenerativeConfig(**generative),
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("generative")
    root = write_tiny_dataset(tmp / "tiny")
    out = tmp / "report"
    first = leaderboard(**STAGE).run(root, out, checkpoints=[])
    meta_first = json.loads((out / "run.json").read_text())["generative"]
    second = leaderboard(**STAGE).run(root, out, checkpoints=[])
    meta_second = json.loads((out / "run.json").read_text())["generative"]
    return {"root": root, "out": out, "first": first, "second": second, "meta": (meta_first, meta_second), "tmp": tmp}


def test_rows_gain_taste_scores_with_cis_and_generators_get_rows(two_runs: dict) -> None:
    rows = {(r["model"], r["slice"]): r for r in json.loads((two_runs["out"] / "leaderboard.json").read_text())}
    for key in [("popularity", "warm"), ("als", "warm"), ("generated-local", "generated")]:
        row = rows[key]
        for metric in ["midi_similarity", "lyric_relevance"]:
            lo, hi = row["ci95"][metric]
            assert -1 <= lo <= row["metrics"][metric] <= hi <= 1, (key, metric)
    assert "embedding, not LLM" in rows["generated-local", "generated"]["note"]
    assert rows["generated-local", "generated"]["n_users"] == 3
    assert "midi_similarity" not in rows["als", "cold"]["metrics"]  # a note row stays as it was
    meta = two_runs["meta"][0]
    assert meta["judge"]["kind"] == "embedding, not LLM"
    assert set(meta["failures"]) == {"popularity", "als", "generated-local"}  # counted per model and metric
    assert "lyric_relevance" in (two_runs["out"] / "leaderboard.csv").read_text().splitlines()[0]


def test_second_run_reuses_songs_and_transcriptions(two_runs: dict) -> None:
    first, second = two_runs["meta"]
    assert first["generation_counts"]["local"] == {"complete": 3}
    assert second["generation_counts"]["local"] == {"skipped_complete": 3}  # nothing generated again
    assert first["transcriber"]["misses"] > 0 and first["catalog_songs_decoded"] > 0
    assert second["transcriber"]["misses"] == 0 and second["catalog_songs_decoded"] == 0
    assert two_runs["first"].rows == two_runs["second"].rows  # same seed, same scores


def test_disabled_stage_adds_no_taste_columns(two_runs: dict) -> None:
    out = two_runs["tmp"] / "off"
    report = leaderboard(enabled=False).run(two_runs["root"], out, checkpoints=[])
    assert not any("lyric_relevance" in r["metrics"] or r["slice"] == "generated" for r in report.rows)
    assert "midi_similarity" not in (out / "leaderboard.csv").read_text()
    assert not (out / "generated").exists()


def test_callback_logs_taste_scalars_beside_generated_songs(two_runs: dict, tmp_path: Path) -> None:
    from callbacks.generative import GenerativeComparison
    from datamodules.music import MusicDataModule
    from lightning_modules.simsong import SimSongModule
    from tests.test_encoders import make_tiny_bert

    L.seed_everything(0)
    module = SimSongModule(
        audio_channels=8, audio_layers=2, n_mels=64, embed_dim=32, segment_seconds=1.0, warmup_steps=1,
        lyrics_model=str(make_tiny_bert(tmp_path / "bert", n_layers=2)), lyrics_max_length=32,
    )
    callback = GenerativeComparison(
        manifest_dir=str(two_runs["out"] / "generated" / "local"), num_users=2, k=2,
        cache_dir=str(two_runs["out"] / "cache"),  # the stage's transcriptions and reference statistics
    )
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=CSVLogger(tmp_path, name="csv", version=""), callbacks=[callback],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_train_batches=1, limit_val_batches=1,
    )
    trainer.fit(module, datamodule=MusicDataModule(str(two_runs["root"]), batch_size=4, num_workers=0,
                                                    segment_seconds=1.0))
    metrics = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    for name in ["simsong", "generated-local"]:
        for key in ["midi_similarity", "lyric_relevance"]:
            assert metrics[f"gen/{name}/{key}"].dropna().between(-1, 1).all() and len(metrics[f"gen/{name}/{key}"].dropna()) == 1
