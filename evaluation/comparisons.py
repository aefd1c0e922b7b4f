"""Paired comparisons: is model A better than model B for the same users, beyond seed and user noise?

Two named rows of a leaderboard are compared on the users both ranked: per user (and per seed,
where A or B was trained several times) ``d[s, u] = A_s[u] - B_s[u]``. Seeds are paired by position
(seed ``s`` of A with seed ``s`` of B); a model evaluated once (a deterministic baseline) is the same
in every pair. Reported:

- ``diff``: the mean of ``d`` over seeds and users;
- ``ci95``: a two-level percentile bootstrap — resample seeds, then users, with replacement — so the
  interval holds both training variance and the sampling of users (Davison & Hinkley 1997, §3.8);
- ``p_value``: a paired permutation (sign-flip) test on each user's seed-averaged difference, two-sided,
  ``(1 + #{|mean(±d_u)| >= |mean(d_u)|}) / (1 + n_permutations)``; with few users the smallest
  possible p-value is bounded by the number of distinct sign patterns.

A row of the result::

    {"a": str, "b": str, "slice": str, "metric": str, "diff": float, "ci95": [lo, hi], "p_value": float,
     "mean_a": float, "mean_b": float, "n_users": int, "n_seeds": int}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_METRICS = ("ndcg@10", "recall@10")
MAX_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class UserScores:
    """One evaluation of one model on one slice: a metric's value per user.

    Attributes:
        users: User indices (as in `InteractionData`), unique.
        values: The metric per user, aligned with ``users``.
    """

    users: np.ndarray
    values: np.ndarray

    @classmethod
    def from_result(cls, result, metric: str) -> UserScores:
        """From an `evaluation.evaluator.SliceResult`."""
        if metric not in result.per_user:
            raise KeyError(f"{result.model}/{result.slice}: no per-user '{metric}'; have {sorted(result.per_user)}")
        return cls(np.asarray(result.user_indices), np.asarray(result.per_user[metric], dtype=np.float64))


@dataclass(frozen=True)
class Pair:
    """A named comparison: rows ``a`` and ``b`` (model names) on ``slice``."""

    a: str
    b: str
    slice: str = "warm"


def paired_differences(a: Sequence[UserScores], b: Sequence[UserScores]) -> tuple[np.ndarray, np.ndarray]:
    """``[n_seeds, n_users]`` differences A − B on the users every evaluation holds, and those users.

    ``a`` and ``b`` list one evaluation per seed; one of them may hold a single evaluation (used for
    every seed), otherwise both must hold the same number.
    """
    if not a or not b:
        raise ValueError("paired_differences: each side needs at least one evaluation")
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise ValueError(f"paired_differences: {len(a)} seeds of A against {len(b)} of B; expected equal counts or one")
    common = a[0].users
    for scores in (*a, *b):
        common = np.intersect1d(common, scores.users)
    n_seeds = max(len(a), len(b))

    def lookup(scores: UserScores) -> np.ndarray:
        order = np.argsort(scores.users)
        return scores.values[order][np.searchsorted(scores.users[order], common)]

    diffs = np.stack([lookup(a[s if len(a) > 1 else 0]) - lookup(b[s if len(b) > 1 else 0]) for s in range(n_seeds)])
    return diffs, common


def bootstrap_seeds_users(diffs: np.ndarray, n_resamples: int, rng: np.random.Generator, level: float = 0.95) -> list[float]:
    """Percentile interval of the mean of ``diffs [S, U]``, resampling seeds and then users."""
    n_seeds, n_users = diffs.shape
    if n_users == 0 or n_resamples == 0:
        return [float("nan"), float("nan")]
    means = np.empty(n_resamples)
    block = max(1, MAX_BLOCK_ELEMENTS // n_users)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        user_counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=size)  # [size, U]
        per_seed = user_counts @ diffs.T / n_users  # [size, S]: each seed's user-resampled mean
        seeds = rng.integers(0, n_seeds, size=(size, n_seeds))
        means[start : start + size] = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return [float(lo), float(hi)]


def sign_flip_p_value(user_diffs: np.ndarray, n_permutations: int, rng: np.random.Generator) -> float:
    """Two-sided paired permutation test that the mean of ``user_diffs`` is 0."""
    n = len(user_diffs)
    if n == 0:
        return float("nan")
    observed = abs(user_diffs.mean())
    extreme = 0
    block = max(1, MAX_BLOCK_ELEMENTS // n)
    for start in range(0, n_permutations, block):
        size = min(block, n_permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        extreme += int((np.abs(signs @ user_diffs / n) >= observed - 1e-12).sum())
    return (1 + extreme) / (1 + n_permutations)


def compare(
    a: Sequence[UserScores],
    b: Sequence[UserScores],
    n_resamples: int = 2000,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict:
    """Mean paired difference A − B with its bootstrap CI and permutation p-value (keys as in the module doc)."""
    diffs, users = paired_differences(a, b)
    rng = np.random.default_rng(seed)
    return {
        "diff": float(diffs.mean()) if diffs.size else float("nan"),
        "ci95": bootstrap_seeds_users(diffs, n_resamples, rng),
        "p_value": sign_flip_p_value(diffs.mean(axis=0), n_permutations, rng),
        "mean_a": _mean_over(a, users),
        "mean_b": _mean_over(b, users),
        "n_users": int(len(users)),
        "n_seeds": int(diffs.shape[0]),
    }


def _mean_over(side: Sequence[UserScores], users: np.ndarray) -> float:
    """A side's mean over the compared users, averaged over its seeds."""
    if len(users) == 0:
        return float("nan")
    return float(np.mean([s.values[np.isin(s.users, users)].mean() for s in side]))


def compare_pairs(
    evaluations: Mapping[tuple[str, str], Sequence],
    pairs: Sequence[Pair],
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_resamples: int = 2000,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> list[dict]:
    """Comparison rows for each named pair and metric.

    Args:
        evaluations: ``(model, slice)`` → that model's `SliceResult`s, one per seed.
        pairs: The comparisons wanted; a pair naming a row that is missing raises (names the row).
        metrics: Per-user metrics to compare.
    """
    rows = []
    for pair in pairs:
        for name in (pair.a, pair.b):
            if (name, pair.slice) not in evaluations:
                have = sorted(f"{m}/{s}" for m, s in evaluations)
                raise KeyError(f"comparison {pair.a} vs {pair.b}: no evaluation of '{name}' on the {pair.slice} slice; have {have}")
        for metric in metrics:
            a = [UserScores.from_result(r, metric) for r in evaluations[pair.a, pair.slice]]
            b = [UserScores.from_result(r, metric) for r in evaluations[pair.b, pair.slice]]
            result = compare(a, b, n_resamples, n_permutations, seed)
            rows.append({"a": pair.a, "b": pair.b, "slice": pair.slice, "metric": metric, **result})
    return rows


def comparisons_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table of comparison rows."""
    lines = [
        "| A | B | slice | metric | A − B | 95% CI | p | mean A | mean B | users | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(
            f"| {r['a']} | {r['b']} | {r['slice']} | {r['metric']} | {r['diff']:+.4f} | [{lo:+.4f}, {hi:+.4f}] | "
            f"{r['p_value']:.3g} | {r['mean_a']:.4f} | {r['mean_b']:.4f} | {r['n_users']} | {r['n_seeds']} |"
        )
    return "\n".join(lines) + "\n"


def forest_plot(rows: Sequence[dict], path: Path) -> Path:
    """One line per comparison: the mean difference and its 95% CI, a panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(r["metric"] for r in rows)) or ["none"]
    labels = list(dict.fromkeys(f"{r['a']} − {r['b']} ({r['slice']})" for r in rows))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics) + 2, 0.45 * len(labels) + 1.5),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes[0], metrics):
        for r in (r for r in rows if r["metric"] == metric):
            y = labels.index(f"{r['a']} − {r['b']} ({r['slice']})")
            lo, hi = r["ci95"]
            # A constant difference has a zero-width CI that rounding can leave a hair on the wrong side.
            below, above = max(r["diff"] - lo, 0.0), max(hi - r["diff"], 0.0)
            ax.errorbar(r["diff"], y, xerr=[[below], [above]], fmt="o", capsize=3)
            ax.annotate(f"p={r['p_value']:.2g}", (hi, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize="x-small")
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set(title=f"paired difference, {metric}", xlabel="A − B (95% CI)")
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def per_user_table(results: Sequence) -> pd.DataFrame:
    """One row per model, slice and user with every per-user metric of a run's `SliceResult`s."""
    frames = [
        pd.DataFrame({"model": r.model, "slice": r.slice, "user": np.asarray(r.user_indices), **r.per_user})
        for r in results
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "slice", "user"])


def write_single_run_comparisons(results: Sequence, pairs: Sequence[Pair], out: Path, seed: int) -> list[Path]:
    """per_user.parquet always; with ``pairs``, comparisons.json, a section of leaderboard.md and comparisons.png."""
    out.mkdir(parents=True, exist_ok=True)
    per_user_table(results).to_parquet(out / "per_user.parquet", index=False)
    files = [out / "per_user.parquet"]
    if not pairs:
        return files
    evaluations = {(r.model, r.slice): [r] for r in results}
    heading = "Paired comparisons (A − B per user; one run: the CI covers users, not seeds)"
    return files + write_comparisons(evaluations, pairs, out, seed, heading)


def write_comparisons(
    evaluations: Mapping[tuple[str, str], Sequence], pairs: Sequence[Pair], out: Path, seed: int, heading: str,
) -> list[Path]:
    """comparisons.json, a `heading` section appended to leaderboard.md, and comparisons.png."""
    rows = compare_pairs(evaluations, pairs, seed=seed)
    (out / "comparisons.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    with open(out / "leaderboard.md", "a") as markdown:
        markdown.write(f"\n## {heading}\n\n")
        markdown.write(comparisons_markdown(rows))
    return [out / "comparisons.json", forest_plot(rows, out / "comparisons.png")]
