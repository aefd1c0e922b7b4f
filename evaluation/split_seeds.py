"""The same dataset over several split seeds: baselines fitted and ranked once per split, summarised
as the mean over seeds with a 95% CI that resamples seeds and then users.

A split seed redraws which of each user's interactions go to train, validation and test (with the
fractions of the dataset's `splits/meta.json`); settings are not retuned per seed. Only users with
test songs in every seed enter the CI (`evaluation.comparisons.bootstrap_seeds_users`); the mean
is over each seed's own users, as a single-seed leaderboard reports it. A fusion takes those of its
members that are rows of the same run from their fits on the same split. Each finished fit can be
saved at once (`FinishedFits`), so that an interrupted run of hours loses none, and read back by the next.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.comparisons import Pair, bootstrap_seeds_users
from evaluation.evaluator import SliceResult, evaluate_scorer
from evaluation.reports import unique_name
from recommenders.base import Recommender, training_only
from recommenders.hybrid import HybridRecommender, fit_with_shared_components, settings_key
from songdata import SongDataset
from songdata.atomic_files import replace_atomically
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


class FinishedFits:
    """Each (split seed, model) result saved as it finishes, one `.npz` per fit under `folder`.

    With `resume`, a fit whose interactions (all three splits, `InteractionData.fingerprint`), settings
    and cut-offs match a saved one is read back instead of refitted. Resuming is asked for, never implied,
    so that a run after a change to the code cannot pick up results the old code computed.
    """

    def __init__(self, folder: str | Path, resume: bool = False) -> None:
        self.folder, self.resume = Path(folder), resume

    def path(self, seed: int, fingerprint: str, settings: dict[str, Any], ks: Sequence[int]) -> Path:
        key = json.dumps([fingerprint, settings, sorted(ks)], sort_keys=True, default=str)
        return self.folder / f"seed-{seed}" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"

    def load(self, path: Path) -> tuple[SliceResult, dict[str, float]] | None:
        """The saved result and its fit and evaluation seconds; None when not resuming or not saved."""
        if not self.resume or not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                summary = json.loads(str(saved["summary"]))
                per_user = {key: saved[f"per_user.{key}"] for key in summary["per_user"]}
                users, n_relevant = saved["user_indices"], saved["n_relevant"]
            result = SliceResult(summary["model"], summary["split"], summary["slice"], summary["n_users"],
                                 summary["n_candidates"], summary["metrics"], summary["ci95"], users, n_relevant,
                                 per_user)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            log.warning("%s: unreadable saved fit (%s); it is fitted again", path, error)
            return None
        return result, {"fit_s": summary["fit_s"], "eval_s": summary["eval_s"]}

    def save(self, path: Path, result: SliceResult, settings: dict[str, Any], seconds: dict[str, float]) -> None:
        summary = {**result.to_dict(), **seconds, "settings": settings, "per_user": sorted(result.per_user)}
        arrays = {"summary": np.array(json.dumps(summary, default=str)), "user_indices": result.user_indices,
                  "n_relevant": result.n_relevant, **{f"per_user.{k}": v for k, v in result.per_user.items()}}
        replace_atomically(path, lambda f: np.savez(f, **arrays))


def evaluate_over_seeds(
    baselines: Sequence[Recommender], dataset: SongDataset, seeds: Sequence[int], ks: Sequence[int],
    show_progress: bool = True, finished: FinishedFits | None = None, settings: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, list[SliceResult]], dict[str, dict[str, list[float]]], dict[str, list[int]]]:
    """Per model, one test/warm result per seed; per model the fit and evaluation seconds per seed; and per
    model the seeds whose fit `finished` held (read back, not refitted).

    With `finished`, `settings` holds each baseline's settings (class path and init arguments), part of
    the key its saved fits are found by.
    """
    if not seeds:
        raise ValueError("split_seeds is empty: give at least one seed")
    if finished is not None and len(settings) != len(baselines):
        raise ValueError(f"saving fits needs the settings of each of the {len(baselines)} baselines")
    named: dict[str, Recommender] = {}
    for baseline in baselines:  # two settings of one model get a row each, as on the leaderboard (als, als-2)
        named[unique_name(baseline.name, named)] = baseline
    results: dict[str, list[SliceResult]] = {name: [] for name in named}
    seconds = {name: {"fit_s": [], "eval_s": []} for name in named}
    reused: dict[str, list[int]] = {}
    members = {settings_key(c) for b in baselines if isinstance(b, HybridRecommender) for c in b.components}
    for seed in seeds:
        data = resplit(dataset, seed)
        fitted: dict[str, tuple[Recommender, float]] = {}  # this split's fits that a fusion has as a member
        fingerprint = data.fingerprint(("train", "val", "test")) if finished else ""
        for index, (name, baseline) in enumerate(named.items()):
            path = finished.path(seed, fingerprint, settings[index], ks) if finished else None
            saved = finished.load(path) if path else None
            if saved is not None:
                result, timing = dataclasses.replace(saved[0], model=name), saved[1]
                reused.setdefault(name, []).append(seed)
            else:
                model, result, timing = _fit_and_rank(baseline, name, data, ks, show_progress, fitted)
                if (key := settings_key(baseline)) in members:
                    fitted[key] = (model, timing["fit_s"])
                if path:
                    finished.save(path, result, settings[index], timing)
            log.info("split seed %d, %s: ndcg@10 %.4f (fit %.1fs, eval %.1fs%s)", seed, name,
                     result.metrics.get("ndcg@10", float("nan")), timing["fit_s"], timing["eval_s"],
                     ", saved earlier" if saved is not None else "")
            results[name].append(result)
            seconds[name]["fit_s"].append(timing["fit_s"])
            seconds[name]["eval_s"].append(timing["eval_s"])
    return results, seconds, reused


def _fit_and_rank(
    baseline: Recommender, name: str, data: InteractionData, ks: Sequence[int], show_progress: bool,
    fitted: dict[str, tuple[Recommender, float]],
) -> tuple[Recommender, SliceResult, dict[str, float]]:
    """The fitted model, its result and its seconds; a fusion takes the members `fitted` holds (see
    `fit_with_shared_components`: its fit seconds count theirs)."""
    model = copy.deepcopy(baseline)
    model.name = name
    if isinstance(model, HybridRecommender):
        fit_s = fit_with_shared_components(model, training_only(data), fitted)
    else:
        clock = time.perf_counter()
        model.fit(training_only(data))
        fit_s = time.perf_counter() - clock
    clock = time.perf_counter()
    result = evaluate_scorer(model.score, data, "test", "warm", ks, n_bootstrap=0, model=model.name,
                             show_progress=show_progress)
    return model, result, {"fit_s": round(fit_s, 3), "eval_s": round(time.perf_counter() - clock, 3)}


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
