"""RecommendationEvaluation: logs `rec/...` every validation epoch to CSV and W&B, fits baselines once,
stays off other ranks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from callbacks.recommendation import RecommendationEvaluation
from datamodules.music import MusicDataModule
from recommenders import ALSRecommender, PopularityRecommender
from tests.test_encoders import make_tiny_simsong


class CountingPopularity(PopularityRecommender):
    fits = 0

    def fit(self, data):
        CountingPopularity.fits += 1
        return super().fit(data)


def test_logs_metrics_every_epoch_and_fits_baselines_once(tiny_dataset: Path, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = make_tiny_simsong(tmp_path / "bert")
    callback = RecommendationEvaluation(
        every_n_epochs=1, baselines=[CountingPopularity(), ALSRecommender(factors=4, iterations=3)],
        metrics=["recall@10", "ndcg@10"],
    )
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2,
        logger=[CSVLogger(tmp_path, name="csv", version=""), WandbLogger(save_dir=tmp_path, offline=True)],
        callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=1, log_every_n_steps=1,
    )
    trainer.fit(module, datamodule=MusicDataModule(str(tiny_dataset), batch_size=4, num_workers=0, segment_seconds=1.0))

    metrics = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    for model in ["simsong", "popularity", "als"]:
        for key in ["recall@10", "ndcg@10"]:
            values = metrics[f"rec/{model}/{key}"].dropna()
            assert len(values) == 2 and values.between(0, 1).all(), (model, key)
    assert CountingPopularity.fits == 1  # the sanity check does not count, and results are cached
    assert metrics["rec/popularity/ndcg@10"].dropna().nunique() == 1
    assert [(h["epoch"], h["model"]) for h in callback.history] == [
        (e, m) for e in (0, 1) for m in ("popularity", "als", "simsong")
    ]
    assert callback.embedder._cache is not None  # decoded once, reused in epoch 2
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))  # scalars and rec/table went to W&B too


def test_other_ranks_return_without_touching_data_or_model() -> None:
    """No data is loaded and nothing runs on rank > 0, so no rank can wait for another here."""
    callback = RecommendationEvaluation(every_n_epochs=1, baselines=[])
    trainer = SimpleNamespace(
        sanity_checking=False, state=SimpleNamespace(fn="fit"), is_global_zero=False, datamodule=None, loggers=[]
    )
    callback.on_validation_epoch_end(trainer, pl_module=None)  # would raise on rank 0: no datamodule
    assert callback.history == [] and callback._baseline_results is None


def test_runs_every_n_validations_only(monkeypatch: pytest.MonkeyPatch) -> None:
    callback = RecommendationEvaluation(every_n_epochs=3, baselines=[])
    calls = []
    monkeypatch.setattr(callback, "evaluate", lambda trainer, module: calls.append(trainer))
    trainer = SimpleNamespace(sanity_checking=False, state=SimpleNamespace(fn="fit"), is_global_zero=True)
    for _ in range(7):
        callback.on_validation_epoch_end(trainer, pl_module=None)
    assert len(calls) == 2


def test_rejects_unknown_metric_keys() -> None:
    with pytest.raises(ValueError, match="ndcg@10"):
        RecommendationEvaluation(metrics=["ndcg10"])


def test_song_windows_follow_one_short_song_rule() -> None:
    from lightning_modules.song_embeddings import song_windows

    wave = np.arange(10, dtype=np.float32)
    assert song_windows(wave, 4, "centre").tolist() == [[3, 4, 5, 6]]
    assert song_windows(wave, 4, "whole").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the rest (8, 9) is left out
    for crop in ("centre", "whole"):  # shorter than a window: padded at the end to one window
        assert song_windows(wave[:2], 4, crop).tolist() == [[0, 1, 0, 0]]
