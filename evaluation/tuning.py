"""Hyperparameter search for the baselines on the validation split, never the test split.

`tune.py` calls `tune_all`: for each model, a grid (when it has no more points than the budget)
or a seeded random sample of the grid is fitted on the training split (through
`training_only`) and scored on the validation split; the best setting of each model by the
chosen metric is written as a config file whose `baselines:` list `evaluate.py` reads. A z-score
fusion of the best models at their best settings, chosen greedily with weights (`tune_fusion`), is
scored last and joins the list.
Every trial is written to a trials file as it finishes, with a fingerprint of the train and validation
interactions it was scored on; a re-run on the same interactions (wherever the folder lies) reuses them.

`load_tuning_data` reads the catalog, the interactions' listening order and the train and
validation splits only: `splits/test.parquet` is never opened while tuning.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from configs import CONFIG_DIR
from evaluation.evaluator import evaluate_scorer
from recommenders.base import Recommender, training_only
from recommenders.hybrid import fit_with_shared_components
from songdata import InteractionData, SongDataset
from songdata.atomic_files import write_json_atomic
from songdata.dataset import SPLIT_COLUMNS

log = logging.getLogger(__name__)


@dataclass
class SearchSpace:
    """One model's search: `fixed` init arguments plus a list of values for each tuned one.

    Args:
        class_path: The recommender class, e.g. `recommenders.EASERecommender`.
        fixed: Init arguments every trial shares.
        space: Init argument → the values to try.
        budget: Trials for this model; null = the tuner's budget.
    """

    class_path: str
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, list] = field(default_factory=dict)
    budget: int | None = None


@dataclass
class Trial:
    """One fitted setting and its validation figures."""

    class_path: str
    init_args: dict[str, Any]
    metrics: dict[str, float]
    fit_s: float
    eval_s: float


TUNING_SPLITS = ("train", "val")
FUSION = "recommenders.HybridRecommender"


def load_tuning_data(dataset: SongDataset) -> InteractionData:
    """The train and validation splits of a dataset opened with `split_names=TUNING_SPLITS` (so that
    splits/test.parquet is never opened), as `InteractionData` whose `test` holds nothing."""
    if set(dataset.splits) != set(TUNING_SPLITS):
        raise ValueError(f"{dataset.root}: open it with split_names={TUNING_SPLITS} to tune (test must stay unread)")
    tables = dataset.tables
    splits = dict(tables.splits)
    splits["test"] = pd.DataFrame({column: pd.Series(dtype=splits["val"][column].dtype) for column in SPLIT_COLUMNS})
    # Users known only from test would be rows without data; keep the users of train and val.
    seen_users = set(splits["train"]["user_id"]) | set(splits["val"]["user_id"])
    interactions = tables.interactions[tables.interactions["user_id"].isin(seen_users)]
    return InteractionData.from_tables(dataclasses.replace(tables, interactions=interactions, splits=splits))


def candidate_settings(search: SearchSpace, budget: int, seed: int) -> list[dict[str, Any]]:
    """The whole grid when it has at most `budget` points, else `budget` distinct points drawn at random."""
    names = sorted(search.space)
    sizes = [len(search.space[name]) for name in names]
    if any(size == 0 for size in sizes):
        raise ValueError(f"{search.class_path}: every tuned argument needs at least one value, got {search.space}")
    n_points = int(np.prod(sizes)) if sizes else 1
    if n_points <= budget:
        points = list(itertools.product(*(search.space[name] for name in names)))
    else:
        picks = np.random.default_rng(seed).choice(n_points, size=budget, replace=False)
        points = [tuple(search.space[n][i] for n, i in zip(names, np.unravel_index(p, sizes))) for p in sorted(picks)]
    return [{**search.fixed, **dict(zip(names, point))} for point in points]


def build(class_path: str, init_args: dict[str, Any]) -> Recommender:
    if "components" in init_args:  # a fusion: its components first
        components = [build(c["class_path"], c.get("init_args", {})) for c in init_args["components"]]
        init_args = {**init_args, "components": components}
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**init_args)


def run_trial(class_path: str, init_args: dict[str, Any], data: InteractionData, ks: Sequence[int]) -> Trial:
    """Fit one setting on the training split (held-out matrices refused) and score the validation split."""
    model = build(class_path, init_args)
    clock = time.perf_counter()
    model.fit(training_only(data))
    return score_on_validation(model, class_path, init_args, data, ks, fit_s=time.perf_counter() - clock)


def score_on_validation(
    model: Recommender, class_path: str, init_args: dict[str, Any], data: InteractionData, ks: Sequence[int],
    fit_s: float,
) -> Trial:
    """The trial of a fitted model: its validation metrics (no CIs) and the time they took."""
    clock = time.perf_counter()
    result = evaluate_scorer(model.score, data, "val", "warm", ks, n_bootstrap=0, model=model.name, show_progress=False)
    metrics = {key: float(value) for key, value in result.metrics.items()}
    return Trial(class_path, _plain(init_args), metrics, fit_s, time.perf_counter() - clock)


class FusionMembers:
    """The models a fusion search combines, each fitted once on the training split (on first use) however
    many fusions it joins; a fusion's `fit_s` is the sum of its members' fits, what fitting it costs."""

    def __init__(self) -> None:
        self.fitted: dict[str, tuple[Recommender, float]] = {}

    def run_trial(self, class_path: str, init_args: dict[str, Any], data: InteractionData, ks: Sequence[int]) -> Trial:
        fusion = build(class_path, init_args)
        fit_s = fit_with_shared_components(fusion, training_only(data), self.fitted)
        return score_on_validation(fusion, class_path, init_args, data, ks, fit_s)


def fusion_setting(members: Sequence[Trial], weights: Sequence[float]) -> dict[str, Any]:
    """A z-score `HybridRecommender` of `members` at their settings; `weights` are left out when all 1."""
    components = [{"class_path": t.class_path, **({"init_args": t.init_args} if t.init_args else {})} for t in members]
    setting: dict[str, Any] = {"components": components, "fusion": "zscore"}
    if any(w != 1.0 for w in weights):
        setting["weights"] = [float(w) for w in weights]
    return setting


def tune_fusion(
    trials: dict[str, list[Trial]], data: InteractionData, metric: str, ks: Sequence[int], max_members: int,
    weights: Sequence[float], done: dict[str, Trial] | None = None, on_trial: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Greedy forward selection of a z-score fusion (Caruana et al., 2004): start from the best model at
    its best setting; each round tries adding every other model at its best setting with each weight of
    `weights` (the first model weighs 1) and keeps the addition that raises `metric` most; it stops when
    none raises it or `max_members` are in. Weights matter because z-scores over the whole catalog put
    one model's top songs many more deviations above its mean than another's (HetRec: ALS's top 10 at
    about 17, Word2Vec's at about 4), so at equal weights the first model alone decides the top.
    Returns every fusion tried; the best of them is the selection.
    """
    leaders = sorted((best_trial(t, metric) for path, t in trials.items() if path != FUSION),
                     key=lambda trial: -trial.metrics[metric])
    members = FusionMembers()
    chosen, chosen_weights, tried = leaders[:1], [1.0], []
    score = leaders[0].metrics[metric] if leaders else -np.inf
    while weights and len(chosen) < min(max_members, len(leaders)):
        additions = [(leader, weight) for leader in leaders if leader not in chosen for weight in weights]
        settings = [fusion_setting([*chosen, leader], [*chosen_weights, weight]) for leader, weight in additions]
        round_trials = tune_model(FUSION, settings, data, metric, ks, done, on_trial, run=members.run_trial)
        tried += round_trials
        best = best_trial(round_trials, metric)
        if best.metrics[metric] <= score:
            break
        leader, weight = additions[round_trials.index(best)]
        chosen, chosen_weights, score = [*chosen, leader], [*chosen_weights, weight], best.metrics[metric]
        log.info("fusion: + %s (weight %g): %s %.4f", leader.class_path, weight, metric, score)
    return tried


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    """Init arguments as plain YAML/JSON values (numpy scalars become Python numbers), sorted by name as
    the trials file stores them, so a config written from fresh trials equals one written from the file."""
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in sorted(args.items())}


def tune_model(
    class_path: str, settings: Sequence[dict[str, Any]], data: InteractionData, metric: str, ks: Sequence[int],
    done: dict[str, Trial] | None = None, on_trial: Callable[[Trial], None] | None = None,
    run: Callable[[str, dict[str, Any], InteractionData, Sequence[int]], Trial] | None = None,
) -> list[Trial]:
    """Every setting of one model, with a progress bar that shows the best so far.

    A setting found in `done` (keyed by `trial_key`, e.g. from an interrupted run) is reused, not refitted;
    `on_trial` sees every trial as it finishes; `run` fits and scores one setting (default `run_trial`).
    """
    trials: list[Trial] = []
    short = class_path.rpartition(".")[2]
    bar = tqdm(settings, desc=f"tune {short}", unit="trial")
    for init_args in bar:
        previous = (done or {}).get(trial_key(class_path, _plain(init_args)))
        if previous is not None and metric in previous.metrics:
            trials.append(previous)
        else:
            trials.append((run or run_trial)(class_path, init_args, data, ks))
            log.info("%s %s: %s %.4f (fit %.1fs)", short, _plain(init_args), metric, trials[-1].metrics[metric],
                     trials[-1].fit_s)
        if on_trial is not None:
            on_trial(trials[-1])
        best = max(t.metrics[metric] for t in trials)
        bar.set_postfix({metric: f"{trials[-1].metrics[metric]:.4f}", "best": f"{best:.4f}"})
    return trials


def trial_key(class_path: str, init_args: dict[str, Any]) -> str:
    return json.dumps([class_path, init_args], sort_keys=True)


def best_trial(trials: Sequence[Trial], metric: str) -> Trial:
    """Highest `metric`; ties go to the earliest trial."""
    return max(trials, key=lambda t: (t.metrics[metric], -trials.index(t)))


def tune_all(
    searches: Sequence[SearchSpace], data: InteractionData, metric: str, budget: int, seed: int,
    dataset: Path | None = None, record: Path | None = None, fuse_max: int = 3, fuse_weights: Sequence[float] = (1.0,),
) -> dict[str, list[Trial]]:
    """Trials of every model, keyed by class path (in the order given), then of a greedy z-score fusion
    of up to `fuse_max` models at their best settings (`tune_fusion`; `FUSION`; none when `fuse_max` < 2).

    With `record` (a trials file), every finished trial is written there at once, and the trials it
    already holds for the same interactions (`InteractionData.fingerprint`) are reused: an interrupted search
    resumes where it stopped. Trials this search leaves out (a model skipped, a grid narrowed) stay in
    the record, since each cost a fit. `dataset` is recorded beside them, to say where they came from.
    """
    ks = sorted({int(metric.split("@")[1]), 10})
    fingerprint = data.fingerprint(("train", "val"))
    done = {trial_key(t.class_path, t.init_args): t for t in read_trials(record, fingerprint)} if record else {}
    if done:
        log.info("%s: %d finished trial(s) of an earlier run are reused", record, len(done))
    finished: list[Trial] = []

    def keep(trial: Trial) -> None:
        finished.append(trial)
        if record is not None:
            this_search = {trial_key(t.class_path, t.init_args) for t in finished}
            others = [t for key, t in done.items() if key not in this_search]
            write_trials(record, finished + others, metric, dataset, fingerprint)

    trials = {
        s.class_path: tune_model(s.class_path, candidate_settings(s, s.budget or budget, seed), data, metric, ks,
                                 done, keep)
        for s in searches
    }
    fusions = tune_fusion(trials, data, metric, ks, fuse_max, fuse_weights, done, keep)
    if fusions:
        trials[FUSION] = fusions
    return trials


def read_trials(record: Path, fingerprint: str) -> list[Trial]:
    """The trials of a trials file scored on interactions with `fingerprint` (none if it is absent or
    was written for other interactions)."""
    if not record.exists():
        return []
    try:
        stored = json.loads(record.read_text())
        if stored.get("fingerprint") != fingerprint or stored.get("split") != "val":
            log.info("%s: written for other interactions (or by an older tune.py); its trials are not reused", record)
            return []
        return [Trial(**trial) for trial in stored["trials"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{record}: not a trials file of tune.py ({error}); move it away to start afresh") from error


def write_trials(
    record: Path, trials: Sequence[Trial], metric: str, dataset: Path | None, fingerprint: str,
) -> None:
    """Every trial so far, replaced atomically (an interruption keeps the previous file whole)."""
    body = {"dataset": Path(dataset).resolve().name if dataset else None, "fingerprint": fingerprint,
            "metric": metric, "split": "val", "trials": [t.__dict__ for t in trials]}
    write_json_atomic(record, body, indent=2, sort_keys=True)


def _config_name(path: Path) -> str:
    """How `--config` finds `path`: relative to configs/ when it lies there (bare names are looked up there)."""
    resolved = path.resolve()
    return str(resolved.relative_to(CONFIG_DIR)) if resolved.is_relative_to(CONFIG_DIR) else str(path)


def write_tuned_config(trials: dict[str, list[Trial]], metric: str, dataset: Path, out: Path) -> Path:
    """`out` (a config `evaluate.py --config` reads) with each model's best setting (the trials file is
    `tune_all`'s record)."""
    header = (
        f"# Baseline settings chosen by tune.py on the validation split of {dataset.resolve().name} "
        f"(best {metric}, warm songs);\n# every trial is in {out.stem}.trials.json. "
        f"Use: evaluate.py --config eval.yaml ... --config {_config_name(out)}\n"
    )
    baselines = []
    for class_path, model_trials in trials.items():
        best = best_trial(model_trials, metric)
        entry: dict[str, Any] = {"class_path": class_path}
        if best.init_args:
            entry["init_args"] = copy.deepcopy(best.init_args)  # no YAML anchors between entries
        baselines.append(entry)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + yaml.safe_dump({"baselines": baselines}, sort_keys=False, default_flow_style=None))
    return out
