"""The pieces of `study.py`: which runs a study trains, and how its per-seed leaderboards become one.

Each seed's evaluation (`evaluate.py`) writes `leaderboard.json` (rows) and `per_user.parquet` (one row
per model, slice and user with every per-user metric). Content models appear there under their run's
name (`<study>-<config>-s<seed>`); the study renames them to the config's short name, so that the same
model is one row over seeds and a comparison pairs seed ``s`` of one config with seed ``s`` of another.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.comparisons import (
    Pair,
    bootstrap_seeds_users,
    compare_pairs,
    comparisons_markdown,
    forest_plot,
)

log = logging.getLogger(__name__)

PER_USER_FILE = "per_user.parquet"
DONE_FILE = "study_done.json"


@dataclass(frozen=True)
class StudyRun:
    """One training run of a study: config ``name`` at ``seed``."""

    name: str
    config: str
    seed: int
    run_name: str
    run_dir: Path

    def finished(self) -> bool:
        return (self.run_dir / DONE_FILE).is_file() and self.checkpoint() is not None

    def mark_finished(self, command: list[str]) -> None:
        (self.run_dir / DONE_FILE).write_text(json.dumps({"command": command}, indent=2) + "\n")

    def checkpoint(self) -> Path | None:
        """The checkpoint evaluated: the best by the run's monitor (chosen on validation), else last."""
        folder = self.run_dir / "checkpoints"
        best = sorted(folder.glob("best-*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name))
        last = folder / "last.ckpt"
        return best[-1] if best else (last if last.is_file() else None)


@dataclass
class StudyPlan:
    """Every (config, seed) of a study and where its runs live."""

    name: str
    configs: dict[str, str]
    seeds: Sequence[int]
    runs_dir: Path
    data_root: str | None = None

    def runs(self, seed: int | None = None) -> list[StudyRun]:
        seeds = self.seeds if seed is None else [seed]
        return [
            StudyRun(name, config, s, f"{self.name}-{name}-s{s}", self.runs_dir / f"{self.name}-{name}-s{s}")
            for s in seeds
            for name, config in self.configs.items()
        ]

    def rename(self, model: str, seed: int) -> str:
        """A run's model name on a leaderboard (also inside a hybrid's name) → the config's short name."""
        for run in self.runs(seed):
            model = re.sub(rf"(?<![\w-]){re.escape(run.run_name)}(?![\w-])", run.name, model)
        return model


def train_command(run: StudyRun, train_args: Sequence[str], data_root: str | None = None) -> list[str]:
    """`train.py` arguments of one study run; `train_args` come last, so they win."""
    command = ["train.py", "--config", run.config, "--seed_everything", str(run.seed), "--data.seed", str(run.seed),
               "--run_name", run.run_name, "--trainer.default_root_dir", str(run.run_dir.parent)]
    command += ["--data.root", data_root] if data_root else []
    return command + list(train_args)


@dataclass
class SeedResult:
    """One model on one slice at one seed, as `evaluation.comparisons` reads it."""

    model: str
    slice: str
    user_indices: np.ndarray
    per_user: dict[str, np.ndarray]


def load_seed(plan: StudyPlan, seed: int, folder: Path) -> tuple[list[dict], dict[tuple[str, str], SeedResult]]:
    """One seed's leaderboard rows and per-user results, with content models under their config names."""
    rows = json.loads((folder / "leaderboard.json").read_text())
    for row in rows:
        row["model"] = plan.rename(row["model"], seed)
    per_user = pd.read_parquet(folder / PER_USER_FILE)
    metrics = [c for c in per_user.columns if c not in ("model", "slice", "user")]
    results = {}
    for (model, slice_name), group in per_user.groupby(["model", "slice"], sort=False):
        name = plan.rename(str(model), seed)
        results[name, slice_name] = SeedResult(
            name, slice_name, group["user"].to_numpy(), {m: group[m].to_numpy(np.float64) for m in metrics}
        )
    return rows, results


def mean_rows(
    per_seed_rows: list[list[dict]], results: dict[tuple[str, str], list[SeedResult]], n_bootstrap: int, seed: int
) -> list[dict]:
    """One row per model and slice: metrics averaged over seeds; CIs of per-user metrics by a seed × user bootstrap."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for rows in per_seed_rows:
        for row in rows:
            grouped[row["model"], row["slice"]].append(row)
    out, rng = [], np.random.default_rng(seed)
    for (model, slice_name), rows in grouped.items():
        with_numbers = [r for r in rows if r.get("metrics")]
        if not with_numbers:
            out.append({**rows[0], "n_seeds": 0})
            continue
        keys = sorted({k for r in with_numbers for k in r["metrics"]})
        metrics = {k: _mean([r["metrics"].get(k) for r in with_numbers]) for k in keys}
        ci95 = {}
        for key in keys:
            seeds = results.get((model, slice_name), [])
            if seeds and key in seeds[0].per_user:
                ci95[key] = bootstrap_seeds_users(_stack(seeds, key), n_bootstrap, rng)
        out.append({"model": model, "slice": slice_name, "n_users": with_numbers[0]["n_users"],
                    "n_seeds": len(with_numbers), "metrics": metrics, "ci95": ci95})
    return out


def _mean(values: list) -> float | None:
    numbers = [v for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else None


def _stack(seeds: list[SeedResult], metric: str) -> np.ndarray:
    """``[n_seeds, n_users]`` on the users every seed holds."""
    users = seeds[0].user_indices
    for result in seeds[1:]:
        users = np.intersect1d(users, result.user_indices)
    return np.stack([pd.Series(r.per_user[metric], index=r.user_indices).loc[users].to_numpy() for r in seeds])


def resolve_pair(pair: Pair, rows: list[dict], content: set[str], primary: str, exclude: set[str]) -> Pair:
    """``best_content`` / ``best_baseline`` → the model with the best mean ``primary`` on the pair's slice."""

    def best(candidates: set[str]) -> str:
        ranked = [r for r in rows if r["slice"] == pair.slice and r["model"] in candidates
                  and (r.get("metrics") or {}).get(primary) is not None]
        if not ranked:
            raise ValueError(f"study: no candidate for {sorted(candidates)} on the {pair.slice} slice")
        return max(ranked, key=lambda r: r["metrics"][primary])["model"]

    models = {r["model"] for r in rows}
    baselines = {m for m in models if m not in content and "+" not in m and m not in exclude}
    named = {"best_content": lambda: best(content), "best_baseline": lambda: best(baselines)}
    a = named[pair.a]() if pair.a in named else pair.a
    b = named[pair.b]() if pair.b in named else pair.b
    return Pair(a, b, pair.slice)


def leaderboard_markdown(rows: list[dict], comparisons: list[dict], metrics: Sequence[str], title: str) -> str:
    lines = [f"# {title}", "", "| model | slice | seeds | users | " + " | ".join(metrics) + " |",
             "|---|---|---|---|" + "---|" * len(metrics)]
    for r in rows:
        cells = []
        for m in metrics:
            value = (r.get("metrics") or {}).get(m)
            lo_hi = (r.get("ci95") or {}).get(m)
            cells.append("—" if value is None else f"{value:.4f}" + (f" [{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else ""))
        lines.append(f"| {r['model']} | {r['slice']} | {r.get('n_seeds', 0)} | {r.get('n_users', 0)} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired comparisons (A − B, per user, over seeds)", "", comparisons_markdown(comparisons)]
    return "\n".join(lines)


def summarise_study(
    plan: StudyPlan,
    out: Path,
    pairs: Sequence[Pair],
    metrics: Sequence[str],
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    wandb: bool,
    primary: str = "ndcg@10",
    content_baselines: Sequence[str] = (),
) -> dict:
    """Read every seed's evaluation under ``out/seed-<s>/`` and write the study's reports into ``out``."""
    per_seed_rows, results = [], defaultdict(list)
    for s in plan.seeds:
        rows, seed_results = load_seed(plan, s, out / f"seed-{s}")
        per_seed_rows.append(rows)
        for key, result in seed_results.items():
            results[key].append(result)
    rows = mean_rows(per_seed_rows, results, n_bootstrap, seed)
    rows.sort(key=lambda r: (r["slice"], -((r.get("metrics") or {}).get(primary) or -1.0)))
    content = set(plan.configs)
    resolved = [resolve_pair(p, rows, content, primary, set(content_baselines)) for p in pairs]
    comparisons = compare_pairs(results, resolved, metrics, n_bootstrap, n_permutations, seed)
    title = f"Study {plan.name}: {len(plan.seeds)} seeds × {', '.join(plan.configs)}"
    markdown = leaderboard_markdown(rows, comparisons, list(dict.fromkeys([*metrics, primary])), title)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    (out / "comparisons.json").write_text(json.dumps(comparisons, indent=2, sort_keys=True) + "\n")
    (out / "leaderboard.md").write_text(markdown)
    plot = forest_plot(comparisons, out / "comparisons.png")
    if wandb:
        log_study(plan, rows, comparisons, plot, out)
    return {"rows": rows, "comparisons": comparisons, "markdown": markdown}


def log_study(plan: StudyPlan, rows: list[dict], comparisons: list[dict], plot: Path, out: Path) -> None:
    """The comparisons as a `wandb.Table`, the forest plot as an image, each difference in the summary."""
    import wandb

    from lightning_modules.wandb_runs import default_wandb_offline

    default_wandb_offline()
    run = wandb.init(project="simsong", name=f"study-{plan.name}", job_type="study", dir=str(out),
                     config={"configs": plan.configs, "seeds": list(plan.seeds)})
    try:
        columns = ["a", "b", "slice", "metric", "diff", "ci_low", "ci_high", "p_value", "n_users", "n_seeds"]
        data = [[c["a"], c["b"], c["slice"], c["metric"], c["diff"], *c["ci95"], c["p_value"], c["n_users"],
                 c["n_seeds"]] for c in comparisons]
        run.log({"study/comparisons": wandb.Table(columns=columns, data=data),
                 "study/forest_plot": wandb.Image(str(plot))})
        for c in comparisons:
            run.summary[f"{c['a']}-vs-{c['b']}/{c['slice']}/{c['metric']}/diff"] = c["diff"]
            run.summary[f"{c['a']}-vs-{c['b']}/{c['slice']}/{c['metric']}/p_value"] = c["p_value"]
    finally:
        run.finish()
