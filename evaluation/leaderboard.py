"""The leaderboard: every recommender ranked on one dataset's test split (or, for tuning, its
validation split), warm and cold songs apart.

`Leaderboard.run` goes through stages, each a plain function, so that a later stage (the taste
scores of generated songs, say) can sit between evaluation and reporting:

1. fit: baselines, content models (one per SimSong checkpoint) and hybrids, every one through
   `training_only(data)`, so any use of validation or test interactions while fitting raises;
2. `evaluate_models`: the test (or validation) split, warm and cold slices → leaderboard rows;
3. `evaluation.generative_stage` (with `generative.enabled`): `midi_similarity` and
   `lyric_relevance` of every model's top-k join its warm row's "metrics" and "ci95"; generators
   get rows of their own, slice "generated" (every writer takes its columns from the rows);
4. `write_reports`: leaderboard.{json,csv,md} and run.json; plots; `log_leaderboard` (W&B).

Rows and the files written from them: `evaluation.reports` (the row contract of leaderboard.json);
W&B: `evaluation.wandb_report`; which checkpoints: `evaluation.checkpoints`. Run metadata (paths,
time, timings) goes to run.json.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch

from evaluation import plots
from evaluation.checkpoints import find_checkpoints, latest_checkpoint, run_name_of
from evaluation.comparisons import Pair, write_single_run_comparisons
from evaluation.evaluator import evaluate_scorer
from evaluation.generative_stage import GenerativeConfig, add_taste_metrics, run_generative_stage
from evaluation.metrics import METRIC_NAMES, metric_keys
from evaluation.reports import SLICES, Report, has_ci, note_row, result_row, sort_rows, unique_name, write_reports
from evaluation.wandb_report import log_leaderboard
from recommenders.base import Recommender, training_only
from recommenders.embedding import EmbeddingRecommender
from recommenders.hybrid import HybridRecommender, fit_with_shared_components, settings_key
from songdata import InteractionData, SongDataset

log = logging.getLogger(__name__)

CANNOT_RANK_COLD = "cannot rank cold-start songs: no training interactions"


@dataclass
class HybridConfig:
    """A hybrid of one baseline and each content model (fused per user; warm songs from both, cold from content).

    Args:
        enabled: Add one hybrid per content model.
        base: Name of the baseline to fuse with (e.g. "als").
        fusion: "rrf" (reciprocal rank fusion) or "zscore".
        rrf_k: The k of reciprocal rank fusion.
        weights: Weights of [base, content model]; empty = equal.
    """

    enabled: bool = True
    base: str = "als"
    fusion: Literal["rrf", "zscore"] = "rrf"
    rrf_k: float = 60.0
    weights: list[float] | None = None


@dataclass
class FittedModels:
    """What the fitting stage hands on: models in leaderboard order and what it learnt on the way."""

    models: dict[str, Recommender] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Leaderboard:
    """Fit the baselines, load the content checkpoints, rank every model on the test split, write reports.

    Settings are chosen on `split: val` (a sweep over baselines, say) and reported on `split: test`:
    choosing them on the test split would make its figures optimistic.

    Args:
        baselines: Recommenders fitted on the training split (`class_path`/`init_args` in YAML).
        run_dirs: Training runs searched for checkpoints when none is given: in each, the newest
            `checkpoints/best-*.ckpt`, else `checkpoints/last.ckpt`.
        fuse: Content models embed a song from its `audio`, its `lyrics`, or `both`. On a dataset
            without audio shards, content models run only with `lyrics`.
        hybrid: A hybrid of one baseline and each content model.
        ks: Cut-offs K.
        primary_metric: Sorts the leaderboard, best first within each slice.
        report_metrics: Columns of the Markdown table and panels of metrics_ci.png.
        split: Held-out interactions ranked: "test" for the leaderboard, "val" for tuning (its cold
            slice is empty: every cold-start interaction is in test; needs `generative.enabled: false`,
            whose taste scores are drawn from test users).
        n_bootstrap: Bootstrap resamples of the 95% confidence intervals (0: none).
        seed: Seed of the bootstrap, the embedding map and torch.
        device: Where content models run their encoders: "auto" (CUDA when available), "cpu", "cuda".
        embedding_map: Projection of embedding_map.png: "pca" or "tsne".
        wandb: Log the table and the plots to W&B (offline unless W&B is configured).
        wandb_project: W&B project.
        show_progress: Progress bars while embedding and evaluating.
        generative: Taste scores of generated songs beside every model's top-k (`evaluation.generative_stage`).
        comparisons: Named pairs `{a, b, slice}` compared per user (one seed: the CI covers users only);
            written to comparisons.json, leaderboard.md and comparisons.png. Per-user metrics of every
            row always go to per_user.parquet (`study.py` compares over seeds from them).
    """

    def __init__(
        self,
        baselines: list[Recommender],
        run_dirs: list[str] = ["runs/simsong-wns", "runs/simsong-ns"],
        fuse: Literal["audio", "lyrics", "both"] = "both",
        hybrid: HybridConfig = HybridConfig(),
        ks: list[int] = [5, 10, 20, 50],
        primary_metric: str = "ndcg@10",
        report_metrics: list[str] = ["recall@10", "precision@10", "ndcg@10", "map@10", "hit@10", "coverage@10"],
        split: Literal["val", "test"] = "test",
        n_bootstrap: int = 1000,
        seed: int = 0,
        device: str = "auto",
        embedding_map: Literal["pca", "tsne"] = "pca",
        wandb: bool = True,
        wandb_project: str = "simsong",
        show_progress: bool = True,
        generative: GenerativeConfig = GenerativeConfig(),
        comparisons: list[Pair] = [],
    ) -> None:
        self.baselines = list(baselines)
        self.run_dirs = [Path(d) for d in run_dirs]
        self.fuse, self.hybrid = fuse, hybrid
        self.ks = sorted({int(k) for k in ks})
        self.primary_metric, self.report_metrics = primary_metric, list(report_metrics)
        self.split, self.n_bootstrap, self.seed = split, n_bootstrap, seed
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.embedding_map, self.use_wandb, self.wandb_project = embedding_map, wandb, wandb_project
        self.show_progress = show_progress
        self.generative = generative
        self.comparisons = list(comparisons)
        self._check_settings()

    def _check_settings(self) -> None:
        known = set(metric_keys(self.ks)) | {f"coverage@{k}" for k in self.ks}
        for name, keys in (("primary_metric", [self.primary_metric]), ("report_metrics", self.report_metrics)):
            unknown = [key for key in keys if key not in known]
            if unknown:
                raise ValueError(
                    f"Leaderboard: {name} has {unknown}; expected <metric>@<K> with metric in "
                    f"{list(METRIC_NAMES) + ['coverage']} and K in ks={self.ks}"
                )
        if self.split == "val" and self.generative.enabled:
            raise ValueError(
                "Leaderboard: split='val' with generative.enabled: the generative stage scores test users; "
                "set generative.enabled false to tune on the validation split"
            )
        names = [b.name for b in self.baselines]
        if self.hybrid.enabled and self.hybrid.base not in names:
            raise ValueError(f"Leaderboard: hybrid.base={self.hybrid.base!r} names no baseline; baselines: {names}")

    def run(
        self, dataset: SongDataset, out: str | Path | None = None, checkpoints: Sequence[str | Path] | None = None,
    ) -> Report:
        """Evaluate on `dataset` and write reports to `out` (default `reports/<dataset name>`).

        Without `checkpoints`, the latest checkpoint of each of `run_dirs` is used.
        """
        started, clock = datetime.now(UTC), time.perf_counter()
        L.seed_everything(self.seed, verbose=False)
        data = dataset.interactions
        out = Path(out) if out else default_out(dataset)
        discovered = checkpoints is None
        checkpoints = find_checkpoints(self.run_dirs) if discovered else [Path(c) for c in checkpoints]
        fitted = self.fit(dataset, checkpoints, discovered)
        results: list = []
        rows, eval_seconds = evaluate_models(
            fitted.models, data, self.ks, self.n_bootstrap, self.seed, self.show_progress, self.split, results
        )
        stage = None
        if self.generative.enabled and not dataset.has_audio:
            fitted.notes.append("generative stage skipped: the dataset has no audio shards to score by taste")
        if self.generative.enabled and dataset.has_audio:
            stage = run_generative_stage(
                self.generative, dataset, fitted.models, out, self.seed, self.n_bootstrap, self.show_progress
            )
            rows = add_taste_metrics(rows, stage)
        rows += [note_row(name, s, f"skipped: {why}") for name, why in fitted.skipped.items() for s in SLICES]
        rows = sort_rows(rows, self.primary_metric)
        split = {"test": "test", "val": "validation"}[self.split]
        title = f"Leaderboard: {dataset.name} ({split} split, sorted by {self.primary_metric})"
        report = write_reports(rows, out, self.primary_metric, self.report_metrics, title)
        report.files += write_single_run_comparisons(results, self.comparisons, out, self.seed)
        notes = fitted.notes + [f"{name} skipped: {why}" for name, why in fitted.skipped.items()]
        report.files += self.plots(rows, fitted, data, out, notes)
        wandb_dir = None
        if self.use_wandb:
            wandb_dir = log_leaderboard(report, dataset, self.wandb_project, self.settings(), self.report_metrics,
                                        stage.table if stage else None)
        timings = {name: {"fit_s": round(fitted.seconds.get(name, 0.0), 3), "eval_s": round(s, 3)}
                   for name, s in eval_seconds.items()}
        meta = {
            "dataset": str(dataset.root.resolve()), "out": str(out.resolve()), "started": started.isoformat(),
            "seconds": round(time.perf_counter() - clock, 3), "checkpoints": fitted.checkpoints,
            "notes": notes, "timings": timings, "wandb": wandb_dir, "settings": self.settings(),
            "files": sorted(p.name for p in report.files),
            "generative": stage.meta if stage else {"enabled": False},
        }
        (out / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        report.files.append(out / "run.json")
        return report

    # ---- stage 1: fit ---------------------------------------------------------------------
    def fit(self, dataset: SongDataset, checkpoints: Sequence[Path], discovered: bool = False) -> FittedModels:
        """Baselines, then content models, then hybrids; all fitted through `training_only(dataset.interactions)`.

        With `discovered`, a checkpoint that a running training has replaced since it was found
        is swapped for that run's latest one.
        """
        fitted = FittedModels()
        train = training_only(dataset.interactions)
        members: dict[str, tuple[Recommender, float]] = {}  # baselines by settings, for fusions to take
        for baseline in self.baselines:
            name = unique_name(baseline.name, fitted.models)
            baseline.name = name
            if baseline.needs_audio and not dataset.has_audio:
                log.warning("%s skipped: the dataset has no audio shards", name)
                fitted.skipped[name] = "the dataset has no audio shards"
                continue
            key = settings_key(baseline)
            if isinstance(baseline, HybridRecommender):
                log.info("fitting %s (taking members fitted for their own rows)", name)
                fitted.seconds[name] = fit_with_shared_components(baseline, train, members)
                fitted.models[name] = baseline
            else:
                fitted.models[name] = _timed_fit(baseline, train, fitted.seconds)
            members[key] = (baseline, fitted.seconds[name])
        for checkpoint in checkpoints:
            if discovered and not Path(checkpoint).is_file():
                newer = latest_checkpoint(Path(checkpoint).parents[1])
                log.warning("%s was replaced while evaluating; using %s", checkpoint, newer)
                checkpoint = newer or checkpoint
            self._fit_content(Path(checkpoint), dataset, fitted)
        if self.hybrid.enabled:
            base = fitted.models[self.hybrid.base]
            for name in list(fitted.embeddings):
                hybrid = HybridRecommender(
                    [base, fitted.models[name]], self.hybrid.fusion, self.hybrid.weights, self.hybrid.rrf_k,
                    fit_components=False,
                )
                hybrid.name = unique_name(f"{base.name}+{name}", fitted.models)
                fitted.models[hybrid.name] = _timed_fit(hybrid, train, fitted.seconds)
        return fitted

    def _fit_content(self, checkpoint: Path, dataset: SongDataset, fitted: FittedModels) -> None:
        """A content model from a checkpoint; its song embeddings are kept for the embedding map."""
        name = unique_name(run_name_of(checkpoint), fitted.models, suffix=checkpoint.stem)
        fitted.checkpoints[name] = str(checkpoint)
        reason = content_unavailable(dataset, self.fuse)
        if reason:
            log.warning("%s (%s) skipped: %s", name, checkpoint, reason)
            fitted.skipped[name] = reason
            return
        clock = time.perf_counter()
        embeddings, skipped = content_embeddings(checkpoint, dataset, self.fuse, self.device, name)
        if skipped:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items()))
            fitted.notes.append(f"{name}: songs without an audio embedding, by reason ({reasons})")
        model = EmbeddingRecommender(embeddings)  # a ContentRecommender whose embeddings are already computed
        model.name = name
        fitted.models[name] = model.fit(training_only(dataset.interactions))
        fitted.embeddings[name] = embeddings
        fitted.seconds[name] = time.perf_counter() - clock

    # ---- stage 4: report ------------------------------------------------------------------
    def plots(
        self, rows: list[dict], fitted: FittedModels, data: InteractionData, out: Path, notes: list[str]
    ) -> list[Path]:
        """recall_at_k.png, metrics_ci.png and (with a content model) embedding_map.png; a skipped plot adds a note."""
        files = [
            plots.recall_at_k(rows, self.ks, out / "recall_at_k.png"),
            plots.metrics_ci(rows, [m for m in self.report_metrics if has_ci(rows, m)], out / "metrics_ci.png"),
        ]
        if not fitted.embeddings:
            notes.append("embedding_map.png not drawn: no content model")
            log.info("embedding_map.png not drawn: no content model was evaluated")
            return files
        name, embeddings = next(iter(fitted.embeddings.items()))
        tags = [list(t)[0] if t is not None and len(t) else "untagged" for t in data.catalog["tags"]]
        cold = np.zeros(data.n_songs, dtype=bool)
        cold[data.cold_songs] = True
        title = f"{name}: song embeddings ({self.embedding_map}), coloured by first tag"
        files.append(plots.embedding_map(embeddings, tags, cold, out / "embedding_map.png", title,
                                         self.embedding_map, self.seed))
        return files

    def settings(self) -> dict:
        """The settings as plain values, for run.json and the W&B config."""
        return {
            "baselines": [f"{type(b).__module__}.{type(b).__name__} ({b.name})" for b in self.baselines],
            "fuse": self.fuse, "hybrid": asdict(self.hybrid), "ks": self.ks, "primary_metric": self.primary_metric,
            "report_metrics": self.report_metrics, "split": self.split, "n_bootstrap": self.n_bootstrap,
            "seed": self.seed, "comparisons": [asdict(p) for p in self.comparisons],
            "device": self.device, "run_dirs": [str(d) for d in self.run_dirs],
            "generative": asdict(self.generative),
        }


def default_out(dataset: SongDataset) -> Path:
    """`reports/<dataset folder name>`: where a leaderboard goes unless told otherwise."""
    return Path("reports") / dataset.name


# ---- content models ----------------------------------------------------------------------
def content_unavailable(dataset: SongDataset, fuse: str) -> str | None:
    """Why content models cannot run on this dataset with this `fuse`, or None when they can."""
    has_lyrics = bool(dataset.catalog["lyrics"].fillna("").astype(str).str.strip().ne("").any())
    if fuse == "lyrics":
        return None if has_lyrics else "fuse is 'lyrics' but the catalog has no lyrics"
    if not dataset.has_audio:
        hint = "set fuse: lyrics to rank by lyrics alone" if has_lyrics else "and the catalog has no lyrics either"
        return f"the dataset has no audio shards and fuse is {fuse!r}; {hint}"
    return None


def content_embeddings(
    checkpoint: Path, dataset: SongDataset, fuse: str, device: str, name: str
) -> tuple[np.ndarray, dict[str, int]]:
    """[n_songs, D] song embeddings of a SimSong checkpoint (the slow part, done once per model), and the
    count of songs without an audio embedding per reason (unreadable shard data, undecodable audio, ...)."""
    from recommenders.content import ContentRecommender

    log.info("%s: embedding %d songs with %s (%s, %s)", name, len(dataset.catalog), checkpoint, fuse, device)
    recommender = ContentRecommender(str(checkpoint), fuse=fuse, name=name, device=device)
    return recommender.song_embeddings_for(training_only(dataset.interactions)), dict(recommender.skipped)


def _timed_fit(model: Recommender, data: InteractionData, seconds: dict[str, float]) -> Recommender:
    clock = time.perf_counter()
    log.info("fitting %s", model.name)
    model.fit(data)
    seconds[model.name] = time.perf_counter() - clock
    return model


# ---- stage 2: evaluate --------------------------------------------------------------------
def evaluate_models(
    models: dict[str, Recommender], data: InteractionData, ks: Sequence[int], n_bootstrap: int, seed: int,
    show_progress: bool = True, split: Literal["val", "test"] = "test", results: list | None = None,
) -> tuple[list[dict], dict[str, float]]:
    """One row per model and slice on the split, and each model's evaluation seconds; every
    `SliceResult` (with its per-user metrics, for paired comparisons) is appended to `results`."""
    rows, seconds = [], {}
    for name, model in models.items():
        clock = time.perf_counter()
        for slice_name in SLICES:
            if slice_name == "cold" and len(data.cold_songs) == 0:
                rows.append(note_row(name, slice_name, "the dataset has no cold-start songs"))
            elif slice_name == "cold" and not model.can_rank_cold:
                rows.append(note_row(name, slice_name, CANNOT_RANK_COLD))
            else:
                result = evaluate_scorer(
                    model.score, data, split, slice_name, ks, n_bootstrap=n_bootstrap, seed=seed,
                    model=name, show_progress=show_progress,
                )
                if results is not None and result.n_users:
                    results.append(result)
                rows.append(result_row(result) if result.n_users else
                            note_row(name, slice_name, f"no {split} user has a {slice_name} song"))
        seconds[name] = time.perf_counter() - clock
    return rows, seconds
