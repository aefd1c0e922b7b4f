"""A study: several seeds of several training configs, one leaderboard, paired comparisons.

    uv run study.py --config study.yaml [--seeds "[0, 1]"] [--train_args "[--trainer.max_epochs=4]"]

For each seed and each named training config it runs `train.py --config <config> --seed_everything <seed>
--data.seed <seed> --run_name <study>-<name>-s<seed>` (a run that finished before is kept), then evaluates
every seed's checkpoints with `evaluate.py` (its report under `<out>/seed-<seed>/`, per-user metrics in
`per_user.parquet`), and writes under `<out>`: `leaderboard.{json,md}` with one row per model and slice
(the mean over seeds; CIs by a bootstrap over seeds and users), `comparisons.json` with the named pairs
(mean paired difference, 95% CI, p-value; `evaluation.comparisons`), `comparisons.png` (a forest plot),
and logs both to W&B.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from jsonargparse import auto_cli

from configs import command_line
from configs.errors import run_entry_point
from evaluation.comparisons import Pair
from evaluation.study import StudyPlan, summarise_study, train_command

log = logging.getLogger("study")

DEFAULT_PAIRS = [Pair("wns", "ns", "warm"), Pair("wns", "ns", "cold")]


def run_study(
    name: str = "study",
    configs: dict[str, str] = {"wns": "wns.yaml", "ns": "ns.yaml"},
    seeds: list[int] = [0, 1, 2],
    train_args: list[str] = [],
    runs_dir: str = "runs",
    eval_config: str = "eval.yaml",
    eval_args: list[str] = ["--generative.enabled=false"],
    data_root: str | None = None,
    pairs: list[Pair] = DEFAULT_PAIRS,
    metrics: list[str] = ["ndcg@10", "recall@10"],
    primary_metric: str = "ndcg@10",
    content_baselines: list[str] = [],
    n_bootstrap: int = 2000,
    n_permutations: int = 10_000,
    seed: int = 0,
    out: str = "reports/study",
    wandb: bool = True,
) -> dict:
    """Train every config at every seed, evaluate each seed, compare the named pairs.

    Args:
        name: Prefix of the training runs' names.
        configs: Short name (the model's name on the leaderboard) → training config.
        seeds: Training seeds (`seed_everything` and the data stream's seed).
        train_args: Extra arguments for every training run, e.g. `["--trainer.max_epochs=4"]`.
        runs_dir: Folder of the training runs (`trainer.default_root_dir`).
        eval_config: Leaderboard config for `evaluate.py`.
        eval_args: Extra arguments for every evaluation.
        data_root: Dataset folder; empty = the demo world.
        pairs: Named comparisons `{a, b, slice}`. Besides model names, `a`/`b` may be `best_content`,
            `best_baseline` (by the mean primary metric on that slice) or `base_of_hybrid:<hybrid>`.
        metrics: Per-user metrics compared.
        primary_metric: Picks `best_content` and `best_baseline` and sorts the leaderboard.
        content_baselines: Baselines that rank by content (tags, lyrics, audio), left out of `best_baseline`.
        n_bootstrap: Resamples of the seed × user bootstrap.
        n_permutations: Sign flips of the permutation test.
        seed: Seed of the bootstrap and the permutations.
        out: Report folder.
        wandb: Log the study's tables and forest plot to W&B.
    """
    plan = StudyPlan(name, configs, seeds, Path(runs_dir), data_root)
    for run in plan.runs():
        if run.finished():
            log.info("%s: finished before, kept", run.run_name)
            continue
        command = train_command(run, train_args, data_root)
        log.info("training %s: %s", run.run_name, " ".join(command))
        subprocess.run([sys.executable, *command], check=True)
        run.mark_finished(command)
    out_dir = Path(out)
    for s in seeds:
        seed_out = out_dir / f"seed-{s}"
        command = ["evaluate.py", "--config", eval_config, "--out", str(seed_out), *eval_args]
        command += ["--data.root", data_root] if data_root else []
        for run in plan.runs(seed=s):
            command += [f"--ckpt+={run.checkpoint()}"]
        log.info("evaluating seed %d: %s", s, " ".join(command))
        subprocess.run([sys.executable, *command], check=True)
    summary = summarise_study(plan, out_dir, pairs, metrics, n_bootstrap, n_permutations, seed, wandb,
                              primary_metric, content_baselines)
    print(summary["markdown"])
    return {k: v for k, v in summary.items() if k != "markdown"}


def main(args: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return auto_cli(run_study, args=command_line(args), exit_on_error=False)


if __name__ == "__main__":
    run_entry_point(main)
