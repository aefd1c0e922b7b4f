"""Recommendation metrics of the model being trained, next to classic baselines, on the validation split."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import WandbLogger

from callbacks.periodic import PeriodicEvaluation
from songdata.interactions import InteractionData
from evaluation.evaluator import SliceResult, evaluate_scorer
from evaluation.metrics import METRIC_NAMES
from songdata.shards import iter_shard_songs
from lightning_modules.song_embeddings import embed_catalog, embed_lyrics_catalog, fuse_embeddings
from recommenders.base import Recommender, training_only
from recommenders.embedding import EmbeddingRecommender
from recommenders.matrix_factorization import ALSRecommender
from recommenders.popularity import PopularityRecommender
from recommenders.word2vec import Word2VecRecommender

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
        baselines: Recommenders to compare with; default popularity, ALS and Word2Vec with
            their default settings. Fitted on the training split the first time they are needed.
        metrics: Metric keys to log, e.g. "ndcg@10" (recall, precision, ndcg, map, hit, mrr or coverage @ K).
        fuse: Embed songs from their `audio`, their `lyrics`, or `both`.
        name: Name of the model being trained in the metric keys.
        whole_songs: Embed whole songs (every segment) instead of one centre crop.
        max_cached_mb: Most memory kept for decoded crops; above it they are decoded again each time.
        batch_size: Crops embedded at once.
        data_root: Dataset folder; default the datamodule's `root`. Centre crops are read through
            the datamodule's `shard_url_template` when it has one (shards in object storage), else
            from the folder's shards (as `whole_songs` always is).
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
        data_root: str | None = None,
    ) -> None:
        super().__init__(every_n_epochs)
        bad = [key for key in metrics if not METRIC_KEY.match(key)]
        if bad or not metrics:
            raise ValueError(
                f"RecommendationEvaluation: metrics {bad or metrics} are not keys like 'ndcg@10' "
                f"(metric in {list(METRIC_NAMES) + ['coverage']})"
            )
        self.baselines = list(baselines) if baselines is not None else [
            PopularityRecommender(), ALSRecommender(), Word2VecRecommender()
        ]
        taken = [b.name for b in self.baselines]
        if name in taken or len(set(taken)) < len(taken):
            raise ValueError(f"RecommendationEvaluation: model names must differ; name={name!r}, baselines: {taken}")
        self.metrics, self.fuse, self.name = list(metrics), fuse, name
        self.ks = sorted({int(METRIC_KEY.match(key).group(2)) for key in metrics})
        self.whole_songs, self.max_cached_mb, self.batch_size = whole_songs, max_cached_mb, batch_size
        self.data_root = data_root
        self._data: InteractionData | None = None
        self._baseline_results: dict[str, SliceResult] | None = None
        self._crops: list[tuple[np.ndarray, torch.Tensor]] | None = None
        self._shard_url_template: str | None = None

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        clock = time.perf_counter()
        data = self._load(trainer)
        results = {**self._baselines(data), self.name: self._evaluate_model(pl_module, data)}
        self._log(trainer, results, time.perf_counter() - clock)

    # ---- data and models ------------------------------------------------------------------
    def _load(self, trainer: L.Trainer) -> InteractionData:
        if self._data is None:
            root = self.data_root or getattr(trainer.datamodule, "root", None)
            if root is None:
                raise ValueError(
                    "RecommendationEvaluation: no dataset folder: the trainer has no datamodule with a `root`; "
                    "set data_root"
                )
            self._data = InteractionData.load(root)
            hparams = getattr(trainer.datamodule, "hparams", {})
            self._shard_url_template = hparams.get("shard_url_template")
        return self._data

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

    def _evaluate_model(self, pl_module: L.LightningModule, data: InteractionData) -> SliceResult:
        model = EmbeddingRecommender(self.embed(pl_module, data))
        model.name = self.name
        return self._evaluate(model.fit(training_only(data)), data)

    # ---- embeddings -----------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, pl_module: L.LightningModule, data: InteractionData) -> np.ndarray:
        """[n_songs, D] embeddings of the warm songs with the current model; zero rows for cold songs."""
        if self.whole_songs:
            return embed_catalog(pl_module, data.root, data.catalog, self.fuse)
        warm = np.setdiff1d(np.arange(data.n_songs), data.cold_songs)
        dim = pl_module.hparams.embed_dim
        audio = lyrics = None
        if self.fuse != "lyrics":
            audio = np.zeros((data.n_songs, dim), dtype=np.float32)
            for songs, crops in self._crop_batches(data.root, warm, _segment_length(pl_module)):
                audio[songs] = pl_module.embed_audio(crops).float().cpu().numpy()
        if self.fuse != "audio":
            lyrics = np.zeros((data.n_songs, dim), dtype=np.float32)
            lyrics[warm] = embed_lyrics_catalog(pl_module, data.catalog.iloc[warm])
        return fuse_embeddings(audio, lyrics)

    def _crop_batches(self, root: Path, songs: np.ndarray, length: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(song indices, [n, length] centre crops) in batches; kept after the first pass if they fit the budget."""
        if self._crops is not None:
            yield from self._crops
            return
        cache: list | None = []
        wanted = set(songs.tolist())
        batch_songs, batch_crops, cached_bytes = [], [], 0
        for song, wave in iter_shard_songs(root, self._shard_url_template):
            if song not in wanted:
                continue
            batch_songs.append(song)
            batch_crops.append(_centre_crop(wave, length))
            if len(batch_songs) == self.batch_size:
                batch = (np.array(batch_songs), torch.stack(batch_crops))
                batch_songs, batch_crops = [], []
                cache, cached_bytes = self._keep(cache, batch, cached_bytes)
                yield batch
        if batch_songs:
            batch = (np.array(batch_songs), torch.stack(batch_crops))
            cache, cached_bytes = self._keep(cache, batch, cached_bytes)
            yield batch
        self._crops = cache

    def _keep(self, cache: list | None, batch: tuple, cached_bytes: int) -> tuple[list | None, int]:
        if cache is None:
            return None, cached_bytes
        cached_bytes += batch[1].numel() * batch[1].element_size()
        if cached_bytes > self.max_cached_mb * 2**20:
            log.info("RecommendationEvaluation: crops exceed max_cached_mb=%d; decoding them each time",
                     self.max_cached_mb)
            return None, cached_bytes
        return cache + [batch], cached_bytes

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


def _segment_length(pl_module: L.LightningModule) -> int:
    return int(round(pl_module.hparams.segment_seconds * pl_module.hparams.sample_rate))


def _centre_crop(wave: np.ndarray, length: int) -> torch.Tensor:
    """The middle `length` samples (zero-padded at the end when the song is shorter)."""
    wave_t = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if len(wave_t) < length:
        return F.pad(wave_t, (0, length - len(wave_t)))
    start = (len(wave_t) - length) // 2
    return wave_t[start : start + length]
