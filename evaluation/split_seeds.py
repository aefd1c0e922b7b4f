"""The same dataset over several split seeds: baselines fitted and ranked once per split, summarised
as the mean over seeds with a 95% CI that resamples seeds and then users.

A split seed redraws which of each user's interactions go to train, validation and test (with the
fractions of the dataset's `splits/meta.json`); settings are not retuned per seed. Only users with
test songs in every seed enter the CI (`evaluation.comparisons.bootstrap_seeds_users`); the mean
is over each seed's own users, as a single-seed leaderboard reports it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from evaluation.comparisons import Pair, bootstrap_seeds_users
from evaluation.evaluator import SliceResult, evaluate_scorer
from recommenders.base import Recommender, training_only
from songdata import SongDataset
from songdata.interactions import InteractionData
from songdata.splits import SplitConfig, split_interactions

log = logging.getLogger(__name__)


def resplit(dataset: SongDataset, seed: int) -> InteractionData:
    """The dataset's interactions split again with `seed` and the fractions its splits were made with."""
    meta = dataset.tables.split_meta
    defaults = SplitConfig()
    config = SplitConfig(
        seed=seed,
        val_fraction=meta.get("val_fraction", defaults.val_fraction),
        test_fraction=meta.get("test_fraction", defaults.test_fraction),
        cold_fraction=meta.get("cold_fraction", defaults.cold_fraction),
    )
    splits, split_meta = split_interactions(dataset.tables.interactions, config)
    return InteractionData.from_tables(dataclasses.replace(dataset.tables, splits=splits, split_meta=split_meta))


def evaluate_over_seeds(
    baselines: Sequence[Recommender], dataset: SongDataset, seeds: Sequence[int], ks: Sequence[int],
    show_progress: bool = True,
) -> tuple[dict[str, list[SliceResult]], dict[str, dict[str, list[float]]]]:
    """Per model, one test/warm result per seed, and per model the fit and evaluation seconds per seed."""
    results: dict[str, list[SliceResult]] = {}
    seconds: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        data = resplit(dataset, seed)
        for baseline in baselines:
            model = copy.deepcopy(baseline)
            clock = time.perf_counter()
            model.fit(training_only(data))
            fit_s = time.perf_counter() - clock
            result = evaluate_scorer(model.score, data, "test", "warm", ks, n_bootstrap=0, model=model.name,
                                     show_progress=show_progress)
            eval_s = time.perf_counter() - clock - fit_s
            log.info("split seed %d, %s: ndcg@10 %.4f (fit %.1fs, eval %.1fs)", seed, model.name,
                     result.metrics.get("ndcg@10", float("nan")), fit_s, eval_s)
            results.setdefault(model.name, []).append(result)
            timing = seconds.setdefault(model.name, {"fit_s": [], "eval_s": []})
            timing["fit_s"].append(round(fit_s, 3))
            timing["eval_s"].append(round(eval_s, 3))
    return results, seconds


def seed_row(name: str, per_seed: Sequence[SliceResult], n_bootstrap: int, seed: int) -> dict:
    """A leaderboard row: the mean over seeds of each metric, its seeds × users CI, and each seed's mean."""
    common = per_seed[0].user_indices
    for result in per_seed[1:]:
        common = np.intersect1d(common, result.user_indices)
    rng = np.random.default_rng(seed)
    metrics, ci95, by_seed = {}, {}, {}
    for key in per_seed[0].metrics:
        by_seed[key] = [_number(r.metrics[key]) for r in per_seed]
        metrics[key] = _number(np.mean([r.metrics[key] for r in per_seed]))
        if key in per_seed[0].per_user:
            values = np.stack([_on_users(r, key, common) for r in per_seed])
            ci95[key] = [_number(bound) for bound in bootstrap_seeds_users(values, n_bootstrap, rng)]
    return {"model": name, "slice": "warm", "n_users": int(np.mean([r.n_users for r in per_seed])),
            "metrics": metrics, "ci95": ci95, "per_seed": by_seed}


def leader_pairs(rows: Sequence[dict]) -> list[Pair]:
    """The first (best) row against each other row: is the leader ahead of each, beyond seed and user noise?"""
    return [Pair(rows[0]["model"], row["model"], row["slice"]) for row in rows[1:]]


def _number(value: float) -> float | None:
    """Rounded as leaderboard.json rounds; NaN (no bootstrap) becomes null."""
    return round(float(value), 6) if np.isfinite(value) else None


def _on_users(result: SliceResult, key: str, users: np.ndarray) -> np.ndarray:
    order = np.argsort(result.user_indices)
    return result.per_user[key][order][np.searchsorted(result.user_indices[order], users)]
