"""Rank every recommender on one dataset's test split (`--split val` to tune settings).

    uv run evaluate.py --config eval.yaml [--data.root DIR] [--out DIR] [--ckpt A.ckpt --ckpt B.ckpt]

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
import json
import logging
import sys
from pathlib import Path

import yaml

from jsonargparse import ActionConfigFile, ArgumentParser

from configs import resolve_config_args
from configs.errors import run_entry_point, settings_errors
from datamodules.music import resolve_data_root
from evaluation.leaderboard import Leaderboard, Report, default_out
from lightning_modules.cli import per_sweep_run


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config; bare names are found in configs/.")
    parser.add_argument("--data.root", type=str | None, default=None, help="Dataset folder; empty = the demo world.")
    parser.add_argument("--out", type=str | None, default=None, help="Report folder; empty = reports/<dataset name>.")
    parser.add_argument(
        "--ckpt", type=list[str] | None, default=None,
        help="SimSong checkpoints to evaluate (repeat the flag); empty = the latest of each of run_dirs.",
    )
    parser.add_class_arguments(Leaderboard, nested_key=None)
    return parser


def merge_repeated_ckpt(argv: list[str]) -> list[str]:
    """`--ckpt a --ckpt b` → `--ckpt=["a", "b"]`: repeated flags add up and replace a config's list."""
    rest, paths, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--ckpt" and i + 1 < len(argv):
            paths.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--ckpt="):
            paths.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    listed = [p for value in paths for p in (yaml.safe_load(value) if value.startswith("[") else [value])]
    return rest + ([f"--ckpt={json.dumps(listed)}"] if paths else [])


def main(args: list[str] | None = None) -> Report:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # one line per Word2Vec epoch otherwise
    parser = build_parser()
    config = parser.parse_args(merge_repeated_ckpt(resolve_config_args(sys.argv[1:] if args is None else args)))
    with settings_errors("evaluate.py settings"):
        init = parser.instantiate(config)
    settings = {name: init[name] for name in inspect.signature(Leaderboard).parameters}
    root = resolve_data_root(init.data.root)
    out = Path(init.out) if init.out else default_out(root)
    report = Leaderboard(**settings).run(root, out.with_name(per_sweep_run(out.name)), init.ckpt)
    print(report.markdown)
    print(f"reports written to {report.out}: {', '.join(sorted(p.name for p in report.files))}")
    return report


if __name__ == "__main__":
    run_entry_point(main)
