"""Recommendation metrics of the model being trained, next to classic baselines, on the validation split."""

from __future__ import annotations

import logging
import re
import time
from typing import Literal

import lightning as L
import numpy as np
from lightning.pytorch.loggers import WandbLogger

from callbacks.periodic import PeriodicEvaluation
from configs import default_baselines
from evaluation.evaluator import SliceResult, evaluate_scorer
from evaluation.metrics import METRIC_NAMES
from lightning_modules.song_embeddings import SongEmbedder
from recommenders.base import Recommender, training_only
from recommenders.embedding import EmbeddingRecommender
from songdata import InteractionData, SongDataset

log = logging.getLogger(__name__)

METRIC_KEY = re.compile(rf"^({'|'.join(METRIC_NAMES)}|coverage)@([1-9][0-9]*)$")


class RecommendationEvaluation(PeriodicEvaluation):
    """Rank validation users' songs with the current model and log the metrics beside the baselines'.

    Every `every_n_epochs` validation runs, rank 0 embeds the warm songs with the model being
    trained, ranks each validation user's unseen songs by cosine to the mean of their training
    songs (the content recommender) and logs `rec/<model>/<metric>` for it and for the
    baselines, whose metrics are computed once (they do not change during training) and logged
    again each time so that they draw flat reference lines. Also logs `rec/seconds` (its own
    cost) and, with a WandbLogger, a `rec/table` of all models. `history` keeps every value.

    Other ranks return at once and nothing here communicates between ranks, so it cannot
    deadlock under DDP (they wait for rank 0 at their next collective, so one evaluation must
    stay within the process group timeout, 30 min by default); it refuses sharded strategies
    (FSDP, DeepSpeed), where rank 0 cannot run the model alone.

    Cost: songs are embedded from one `segment_seconds` crop each (the centre of the song,
    decoded once and kept in memory), one forward pass per warm song, about a sixth of a
    training epoch (which runs forward and backward on two crops per song). On the demo world
    on 2 CPU cores an evaluation took ~11 s against ~75 s per epoch (the first, which also
    decodes, embeds uncached lyrics and fits the baselines, ~25 s): `every_n_epochs: 4` keeps
    it near 5% of training. `whole_songs` embeds every segment of every song, as the
    leaderboard does, at several times the cost.

    Args:
        every_n_epochs: Run on every N-th validation run (the sanity check does not count).
        baselines: Recommenders to compare with; default those of `configs/baselines.yaml` (where
            their settings live). Fitted on the training split the first time they are needed.
        metrics: Metric keys to log, e.g. "ndcg@10" (recall, precision, ndcg, map, hit, mrr or coverage @ K).
        fuse: Embed songs from their `audio`, their `lyrics`, or `both`.
        name: Name of the model being trained in the metric keys.
        whole_songs: Embed whole songs (every segment) instead of one centre crop.
        max_cached_mb: Most memory kept for decoded crops; above it they are decoded again each time.
        batch_size: Crops embedded at once.

    The songs and interactions are the datamodule's `dataset` (shards read where it reads them).
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        baselines: list[Recommender] | None = None,
        metrics: list[str] = ["recall@10", "ndcg@10"],
        fuse: Literal["audio", "lyrics", "both"] = "both",
        name: str = "simsong",
        whole_songs: bool = False,
        max_cached_mb: int = 1024,
        batch_size: int = 128,
    ) -> None:
        super().__init__(every_n_epochs)
        bad = [key for key in metrics if not METRIC_KEY.match(key)]
        if bad or not metrics:
            raise ValueError(
                f"RecommendationEvaluation: metrics {bad or metrics} are not keys like 'ndcg@10' "
                f"(metric in {list(METRIC_NAMES) + ['coverage']})"
            )
        self.baselines = list(baselines) if baselines is not None else default_baselines()
        taken = [b.name for b in self.baselines]
        if name in taken or len(set(taken)) < len(taken):
            raise ValueError(f"RecommendationEvaluation: model names must differ; name={name!r}, baselines: {taken}")
        self.metrics, self.fuse, self.name = list(metrics), fuse, name
        self.ks = sorted({int(METRIC_KEY.match(key).group(2)) for key in metrics})
        self.whole_songs = whole_songs
        self.embedder = SongEmbedder(
            fuse, crop="whole" if whole_songs else "centre", batch_segments=batch_size,
            max_cached_mb=0 if whole_songs else max_cached_mb, show_progress=whole_songs,
        )
        self._baseline_results: dict[str, SliceResult] | None = None

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        clock = time.perf_counter()
        dataset = trainer_dataset(trainer, type(self).__name__)
        data = dataset.interactions
        results = {**self._baselines(data), self.name: self._evaluate_model(pl_module, dataset)}
        self._log(trainer, results, time.perf_counter() - clock)

    # ---- models ---------------------------------------------------------------------------
    def _baselines(self, data: InteractionData) -> dict[str, SliceResult]:
        if self._baseline_results is None:
            self._baseline_results = {}
            for baseline in self.baselines:
                clock = time.perf_counter()
                baseline.fit(training_only(data))
                self._baseline_results[baseline.name] = self._evaluate(baseline, data)
                log.info("RecommendationEvaluation: %s fitted and evaluated in %.1f s",
                         baseline.name, time.perf_counter() - clock)
        return self._baseline_results

    def _evaluate(self, model: Recommender, data: InteractionData) -> SliceResult:
        """Validation split, warm songs (every cold song's interactions are in test, so val has no cold slice)."""
        return evaluate_scorer(
            model.score, data, "val", "warm", self.ks, n_bootstrap=0, model=model.name, show_progress=False
        )

    def _evaluate_model(self, pl_module: L.LightningModule, dataset: SongDataset) -> SliceResult:
        model = EmbeddingRecommender(self.embed(pl_module, dataset))
        model.name = self.name
        data = dataset.interactions
        return self._evaluate(model.fit(training_only(data)), data)

    def embed(self, pl_module: L.LightningModule, dataset: SongDataset) -> np.ndarray:
        """[n_songs, D] embeddings with the current model: every song with `whole_songs`, else the warm songs
        (zero rows for cold songs, which validation never ranks)."""
        if self.whole_songs:
            return self.embedder.embed(pl_module, dataset)
        return self.embedder.embed(pl_module, dataset, dataset.interactions.warm_songs)

    # ---- logging --------------------------------------------------------------------------
    def _log(self, trainer: L.Trainer, results: dict[str, SliceResult], seconds: float) -> None:
        """Straight to the loggers (rank 0 only): no `self.log`, so no collective can be involved."""
        epoch, step = trainer.current_epoch, trainer.global_step
        scalars: dict[str, float] = {"rec/seconds": seconds, "epoch": epoch}
        rows = []
        for model, result in results.items():
            values = {key: float(result.metrics[key]) for key in self.metrics}
            scalars.update({f"rec/{model}/{key}": v for key, v in values.items() if np.isfinite(v)})
            self.history.append({"epoch": epoch, "step": step, "model": model, **values})
            rows.append([epoch, model, result.n_users, *values.values()])
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            if isinstance(logger, WandbLogger):
                logger.log_table("rec/table", columns=["epoch", "model", "n_users", *self.metrics], data=rows, step=step)
        key = self.metrics[-1]
        summary = ", ".join(f"{model} {key}={result.metrics[key]:.4f}" for model, result in results.items())
        log.info("epoch %d, validation (warm songs): %s (%.1f s)", epoch, summary, seconds)


def trainer_dataset(trainer: L.Trainer, owner: str) -> SongDataset:
    """The dataset the trainer's datamodule opened (`MusicDataModule.dataset`)."""
    dataset = getattr(trainer.datamodule, "dataset", None)
    if not isinstance(dataset, SongDataset):
        raise ValueError(f"{owner}: the trainer has no datamodule with a `dataset` (train with MusicDataModule)")
    return dataset
