"""Rank every recommender on one dataset's test split (`--split val` to tune settings).

    uv run evaluate.py --config eval.yaml [--data.root DIR] [--out DIR] [--ckpt A.ckpt | --ckpt+=A.ckpt --ckpt+=B.ckpt]

Without `--data.root` it evaluates on the demo world (built on first use); without `--ckpt` it
uses the latest checkpoints of the training runs listed in `run_dirs`. Writes
`<out>/leaderboard.{json,csv,md}`, `run.json` and plots (default out: `reports/<dataset name>`),
prints the leaderboard and logs it to W&B (offline unless configured; `--wandb false` to skip).
With `generative.enabled` (on in eval.yaml; `--generative.enabled false` to skip) it also generates
songs for a few test users under `<out>/generated/` and adds taste scores (MIDI similarity, lyric
relevance) of those songs and of every model's top-k to the leaderboard. Under a W&B sweep agent
the report folder becomes `<out>-<W&B run id>`, so the runs of a sweep never overwrite each other
(configs/sweeps/ holds the sweeps).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from configs import command_line
from configs.errors import run_entry_point, settings_errors
from evaluation.leaderboard import Leaderboard, default_out
from evaluation.reports import Report
from lightning_modules.wandb_runs import per_sweep_run
from prepare.default_dataset import dataset_root
from songdata import SongDataset


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config; bare names are found in configs/.")
    parser.add_argument("--data.root", type=str | None, default=None, help="Dataset folder; empty = the demo world.")
    parser.add_argument("--out", type=str | None, default=None, help="Report folder; empty = reports/<dataset name>.")
    parser.add_argument(
        "--ckpt", type=list[str] | str | None, default=None,
        help="SimSong checkpoints to evaluate: one path, or several with `--ckpt+=A --ckpt+=B` (or `[A, B]`); "
        "empty = the latest of each of run_dirs.",
    )
    parser.add_class_arguments(Leaderboard, nested_key=None)
    return parser


def main(args: list[str] | None = None) -> Report:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # one line per Word2Vec epoch otherwise
    parser = build_parser()
    config = parser.parse_args(command_line(args))
    with settings_errors("evaluate.py settings"):
        init = parser.instantiate(config)
    settings = {name: init[name] for name in inspect.signature(Leaderboard).parameters}
    dataset = SongDataset(dataset_root(init.data.root))
    out = Path(init.out) if init.out else default_out(dataset)
    checkpoints = [init.ckpt] if isinstance(init.ckpt, str) else init.ckpt
    report = Leaderboard(**settings).run(dataset, out.with_name(per_sweep_run(out.name)), checkpoints)
    print(report.markdown)
    print(f"reports written to {report.out}: {', '.join(sorted(p.name for p in report.files))}")
    return report


if __name__ == "__main__":
    run_entry_point(main)
