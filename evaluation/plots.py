"""Leaderboard figures: Recall@K curves, metrics with confidence intervals, a map of song embeddings.

Each function reads leaderboard rows (see `evaluation.reports`) or arrays, writes one PNG and
returns its path. matplotlib runs on the Agg backend: no display needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

SLICES = ("warm", "cold")
MAX_TAG_COLOURS = 10


def recall_at_k(rows: Sequence[dict], ks: Sequence[int], path: Path) -> Path:
    """Recall@K against K, one line per model (shaded 95% CI), a panel per slice."""
    fig, axes = plt.subplots(1, len(SLICES), figsize=(6 * len(SLICES), 4.5), squeeze=False)
    colours = _model_colours(rows)
    for ax, slice_name in zip(axes[0], SLICES):
        ranked = [r for r in rows if r["slice"] == slice_name and _has(r, f"recall@{ks[0]}")]
        for row in ranked:
            values = [row["metrics"].get(f"recall@{k}") for k in ks]
            ax.plot(ks, values, marker="o", label=row["model"], color=colours[row["model"]])
            bounds = [row["ci95"].get(f"recall@{k}") or [None, None] for k in ks]
            lo, hi = zip(*bounds)
            if None not in lo + hi:
                ax.fill_between(ks, lo, hi, color=colours[row["model"]], alpha=0.15)
        ax.set(title=f"{slice_name} songs", xlabel="K", ylabel="Recall@K", xscale="log", ylim=(0, None))
        ax.set_xticks(list(ks), [str(k) for k in ks])
        ax.minorticks_off()
        if ranked:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no model ranks this slice", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def metrics_ci(rows: Sequence[dict], metrics: Sequence[str], path: Path) -> Path:
    """Horizontal bars of each metric per model with 95% CI error bars; rows of panels = slices."""
    slices = [s for s in SLICES if any(r["slice"] == s and r["metrics"] for r in rows)] or ["warm"]
    metrics = list(metrics) or ["none"]
    n_models = len({r["model"] for r in rows})
    fig, axes = plt.subplots(
        len(slices), len(metrics), figsize=(3.2 * len(metrics) + 1.5, 0.35 * n_models * len(slices) + 2),
        squeeze=False,
    )
    for axes_row, slice_name in zip(axes, slices):
        ranked = [r for r in rows if r["slice"] == slice_name and r["metrics"]]
        for ax, metric in zip(axes_row, metrics):
            shown = [r for r in ranked if _has(r, metric)][::-1]  # best at the top
            values = np.array([r["metrics"][metric] for r in shown], dtype=float)
            bounds = np.array([r["ci95"].get(metric) or [np.nan, np.nan] for r in shown], dtype=float)
            bounds = bounds.reshape(len(shown), 2)
            errors = np.nan_to_num(np.abs(bounds - values[:, None]).T)
            ax.barh([r["model"] for r in shown], values, xerr=errors, capsize=3, color="tab:blue", alpha=0.8)
            ax.set_title(f"{metric} ({slice_name})", fontsize="medium")
            ax.tick_params(axis="y", labelsize="small")
    return _save(fig, path)


def embedding_map(
    embeddings: np.ndarray,
    tags: Sequence[str],
    cold: np.ndarray,
    path: Path,
    title: str,
    method: Literal["pca", "tsne"] = "pca",
    seed: int = 0,
) -> Path:
    """2-D projection of song embeddings coloured by each song's first tag; cold-start songs as crosses.

    Songs without an embedding (zero rows) are left out. The most frequent tags get colours,
    the rest are grey.
    """
    keep = np.flatnonzero(np.any(embeddings != 0, axis=1))
    points = _project(embeddings[keep], method, seed)
    labels = [tags[i] for i in keep]
    top = [tag for tag, _ in Counter(labels).most_common(MAX_TAG_COLOURS)]
    colours = dict(zip(top, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(8.5, 6))
    for tag in top + ["other"]:
        members = np.array([label == tag if tag != "other" else label not in colours for label in labels])
        for is_cold, marker in ((False, "o"), (True, "x")):
            chosen = members & (cold[keep] == is_cold) if len(members) else members
            if chosen.any():
                ax.scatter(*points[chosen].T, s=14, marker=marker, color=colours.get(tag, "lightgrey"),
                           label=tag if not is_cold else None)
    ax.set(title=title, xlabel=f"{method} 1", ylabel=f"{method} 2")
    ax.legend(fontsize="small", markerscale=1.5, title="first tag\n(x = cold-start)", loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def _project(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    if len(x) < 3:
        return np.pad(x[:, :2], ((0, 0), (0, max(0, 2 - x.shape[1]))))
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method != "pca":
        raise ValueError(f"embedding map: method must be 'pca' or 'tsne', got {method!r}")
    return PCA(2, svd_solver="full").fit_transform(x)


def _model_colours(rows: Sequence[dict]) -> dict[str, tuple]:
    """One colour per model, the same in every panel."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    palette = plt.get_cmap("tab10" if len(models) <= 10 else "tab20").colors
    return {model: palette[i % len(palette)] for i, model in enumerate(models)}


def _has(row: dict, metric: str) -> bool:
    return row["metrics"].get(metric) is not None


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
