"""Taste scores of the model being trained beside those of generated songs, during training."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np

from callbacks.periodic import PeriodicEvaluation
from callbacks.recommendation import trainer_dataset
from evaluation.generative_stage import top_k
from evaluation.taste_panel import TASTE_METRICS, JudgeConfig, TastePanel, build_judge
from evaluation.taste_results import summarise_users
from lightning_modules.song_embeddings import SongEmbedder
from recommenders.base import training_only
from recommenders.embedding import EmbeddingRecommender
from songdata import InteractionData, SongDataset
from taste import TasteSong

log = logging.getLogger(__name__)


class GenerativeComparison(PeriodicEvaluation):
    """Every `every_n_epochs` validation runs, score the model's top-k with both taste scores beside generated songs.

    Users: those with generated songs in the manifests of `manifest_dir` (any backend's run
    folder(s), read with `generative.load_songs`) and a training history, sorted, at most
    `num_users`. The current model embeds the warm songs as `RecommendationEvaluation` does (one
    centre window each, kept in memory: `SongEmbedder`) and ranks each user's unseen warm songs (training songs masked: validation
    protocol). Generated songs are scored once and their values logged again each time, as flat
    reference lines. Logs `gen/<name>/midi_similarity` and `gen/<name>/lyric_relevance` for the
    model (`name`) and each `generated-<backend>`, plus `gen/seconds`. Every candidate is scored against
    the user's validation songs (`reference="heldout"`: what the ranking is judged on, the candidate left
    out), or against the training history (`"history"`: circular for generators prompted from it).

    Rank 0 only, nothing communicated between ranks (as in `RecommendationEvaluation`).

    Args:
        manifest_dir: Generation run folder(s) holding `manifest.jsonl`.
        every_n_epochs: Run on every N-th validation run (the sanity check does not count).
        num_users: Most users scored.
        k: Recommendations scored per user.
        fuse: Embed songs from their `audio`, their `lyrics`, or `both`.
        name: Name of the model being trained in the metric keys.
        cache_dir: Transcriptions and MIDI reference statistics; default `<manifest_dir[0]>/taste_cache`.
        judge: The lyric judge (default: embedding, offline).
        reference_songs: Catalog songs (seeded sample) for MIDI similarity's reference statistics.
        seed: Seed of that sample.
        reference: "heldout" (the user's validation songs; users without one are left out) or "history".

    The songs and interactions are the datamodule's `dataset`.
    """

    def __init__(
        self,
        manifest_dir: str | list[str],
        every_n_epochs: int = 1,
        num_users: int = 8,
        k: int = 5,
        fuse: Literal["audio", "lyrics", "both"] = "both",
        name: str = "simsong",
        cache_dir: str | None = None,
        judge: JudgeConfig | None = None,
        reference_songs: int = 32,
        seed: int = 0,
        reference: Literal["heldout", "history"] = "heldout",
    ) -> None:
        super().__init__(every_n_epochs)
        self.manifest_dirs = [Path(d) for d in ([manifest_dir] if isinstance(manifest_dir, str) else manifest_dir)]
        self.num_users, self.k, self.name = num_users, k, name
        self.cache_dir = Path(cache_dir) if cache_dir else self.manifest_dirs[0] / "taste_cache"
        self.judge_config = judge or JudgeConfig()
        self.reference_songs, self.seed, self.reference = reference_songs, seed, reference
        self.embedder = SongEmbedder(fuse, crop="centre", batch_segments=128, max_cached_mb=1024, show_progress=False)
        self._taste: TastePanel | None = None
        self._users: list[int] = []
        self._generated: dict[str, dict[str, float]] | None = None

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        clock = time.perf_counter()
        dataset = trainer_dataset(trainer, type(self).__name__)
        generated = self._generated_scores(dataset)
        values = {self.name: self._model_scores(pl_module, dataset), **generated}
        self._log(trainer, values, time.perf_counter() - clock)

    def _generated_songs(self, data: InteractionData) -> dict[str, dict[int, list[TasteSong]]]:
        from generative import load_songs

        index = {u: i for i, u in enumerate(data.user_ids)}
        by_backend: dict[str, dict[int, list[TasteSong]]] = {}
        for folder in self.manifest_dirs:
            for song in load_songs(folder):
                user = index.get(song["user_id"])
                if user is None or not song.get("audio_path") or len(data.histories[user]) == 0:
                    continue
                songs = by_backend.setdefault(f"generated-{song.get('backend', folder.name)}", {})
                songs.setdefault(user, []).append(
                    TasteSong.from_file(song["audio_path"], song["song_id"], song.get("lyrics") or ""))
        return by_backend

    def _generated_scores(self, dataset: SongDataset) -> dict[str, dict[str, float]]:
        """Generated songs' taste scores, computed on the first evaluation and kept."""
        if self._generated is not None:
            return self._generated
        data = dataset.interactions
        songs = self._generated_songs(data)
        users = sorted({u for per_user in songs.values() for u in per_user})
        if self.reference == "heldout":
            users = [u for u in users if data.val[u].nnz]
        users = users[: self.num_users]
        if not users:
            raise ValueError(
                f"GenerativeComparison: no finished generated song of a known user in {self.manifest_dirs}"
                + (" with validation songs (the reference)" if self.reference == "heldout" else "")
            )
        self._users = users
        judge = build_judge(self.judge_config, self.cache_dir)
        self._taste = TastePanel(dataset, self.cache_dir, judge, self.reference_songs, self.seed)
        references = data.val if self.reference == "heldout" else data.train
        self._taste.prepare(sorted({int(i) for u in users for i in references[u].indices}))
        self._generated = {name: self._score(per_user) for name, per_user in songs.items()}
        return self._generated

    def _model_scores(self, pl_module: L.LightningModule, dataset: SongDataset) -> dict[str, float]:
        data = dataset.interactions
        model = EmbeddingRecommender(self.embedder.embed(pl_module, dataset, data.warm_songs))
        model.fit(training_only(data))
        tops = dict(zip(self._users, top_k(model.score, data, np.array(self._users), self.k, split="val")))
        self._taste.prepare(sorted({int(i) for ids in tops.values() for i in ids}))
        return self._score({u: [self._taste.song(i) for i in ids] for u, ids in tops.items()})

    def _score(self, candidates: dict[int, list[TasteSong]]) -> dict[str, float]:
        per_metric: dict[str, list[list]] = {m: [] for m in TASTE_METRICS}
        for user in self._users:
            songs = candidates.get(user, [])
            reference = self._taste.heldout(user, "val") if self.reference == "heldout" else self._taste.history(user)
            results = self._taste.score(songs, reference) if songs else {m: [] for m in TASTE_METRICS}
            for m in TASTE_METRICS:
                per_metric[m].append(results[m])
        metrics, _, failures, _ = summarise_users(per_metric, 0, self.seed)
        if any(failures.values()):
            log.info("GenerativeComparison: failures (not scored): %s", failures)
        return metrics

    def _log(self, trainer: L.Trainer, values: dict[str, dict[str, float]], seconds: float) -> None:
        """Straight to the loggers (rank 0 only): no `self.log`, so no collective can be involved."""
        epoch, step = trainer.current_epoch, trainer.global_step
        scalars: dict[str, float] = {"gen/seconds": seconds, "epoch": epoch}
        for name, metrics in values.items():
            scalars.update({f"gen/{name}/{m}": v for m, v in metrics.items() if v is not None})
            self.history.append({"epoch": epoch, "step": step, "model": name, **metrics})
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
        log.info("epoch %d, taste scores: %s (%.1f s)", epoch, values, seconds)
