"""Tune every baseline on a dataset's validation split and write the chosen settings as a config.

    uv run tune.py --config tune.yaml --data.root data/hetrec [--budget 20] [--out configs/tuned/hetrec.yaml]
        [--skip "[recommenders.Word2VecRecommender]"]

Each model of `models` is fitted on the training split for a grid of its `space` (or, when the grid
is larger than the budget, a seeded random sample of it) and scored on the validation split; the
test split is never read. The best setting of each model (by `metric`) goes to `--out` (default
`configs/tuned/<dataset name>.yaml`), read by `evaluate.py --config eval.yaml --config tuned/<name>.yaml`,
with every trial in `<out>.trials.json`. Then a z-score fusion (`HybridRecommender`) of up to `--fuse_max`
models, each at its best setting, is grown greedily from the best one: each round adds the model and weight
(of `--fuse_weights`) that raise the metric most, until none does; the best fusion is written too.
That file is written after every trial, and a re-run on the same train and validation interactions
(a fingerprint of them, not the folder's path) reuses the trials it holds: an interrupted search resumes
where it stopped. Give another `--out` (or move the trials file away) to search afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from configs import CONFIG_DIR, command_line
from configs.errors import run_entry_point
from evaluation.tuning import (
    TUNING_SPLITS,
    SearchSpace,
    load_tuning_data,
    tune_all,
    write_tuned_config,
)
from prepare.default_dataset import dataset_root
from songdata import SongDataset


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config; bare names are found in configs/.")
    parser.add_argument("--data.root", type=str | None, default=None, help="Dataset folder; empty = the demo world.")
    parser.add_argument("--out", type=str | None, default=None,
                        help="Config to write; empty = configs/tuned/<dataset name>.yaml.")
    parser.add_argument("--metric", type=str, default="ndcg@10", help="Validation metric to maximise (warm songs).")
    parser.add_argument("--budget", type=int, default=20, help="Trials per model unless its search sets `budget`.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random sample of a grid larger than the budget.")
    parser.add_argument(
        "--fuse_max", type=int, default=3,
        help="Then grow a z-score fusion of up to N tuned models at their best settings; < 2 = none.",
    )
    parser.add_argument(
        "--fuse_weights", type=list[float], default=[1.0],
        help="Weights tried for each model the fusion adds (the first model weighs 1).",
    )
    parser.add_argument(
        "--skip", type=list[str], default=[],
        help="Class paths of `models` left out of this search (e.g. one too slow for the machine); they get no entry.",
    )
    parser.add_argument(
        "--models", type=list[dict], default=[],
        help="Search space of each baseline: {class_path, fixed: {arg: value}, space: {arg: [values]}, budget}.",
    )
    return parser


def main(args: list[str] | None = None) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)
    parser = build_parser()
    config = parser.parse_args(command_line(args))
    if not config.models:
        parser.error("no models to tune: give a config with `models:` (configs/tune.yaml)")
    unknown = set(config.skip) - {model.get("class_path") for model in config.models}
    if unknown:
        parser.error(f"--skip names {sorted(unknown)}, which `models` does not hold")
    dataset = SongDataset(dataset_root(config.data.root), split_names=TUNING_SPLITS)
    searches = []
    for i, model in enumerate(config.models):
        if model.get("class_path") in config.skip:
            continue
        try:
            searches.append(SearchSpace(**model))
        except TypeError as error:
            parser.error(f"models[{i}]: {error}; expected keys class_path, fixed, space, budget")
    out = Path(config.out) if config.out else CONFIG_DIR / "tuned" / f"{dataset.name}.yaml"
    data = load_tuning_data(dataset)
    record = out.with_suffix(".trials.json")
    trials = tune_all(searches, data, config.metric, config.budget, config.seed, dataset.root, record, config.fuse_max,
                      config.fuse_weights)
    write_tuned_config(trials, config.metric, dataset.root, out)
    print(f"tuned settings written to {out} (trials: {out.with_suffix('.trials.json')})")
    return out


if __name__ == "__main__":
    run_entry_point(main)
