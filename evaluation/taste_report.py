"""The generative stage's own report: per-song scores (csv), tables (markdown) and a figure, validity marked."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from evaluation.taste_panel import TASTE_METRICS
from evaluation.taste_validity import NOT_SHOWN

log = logging.getLogger(__name__)

SCORES_CSV, REPORT_MD, FIGURE = "taste_scores.csv", "taste.md", "taste_scores.png"


def _cell(value, ci=None) -> str:
    if value is None:
        return "—"
    if ci and None not in ci:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def _all_rows(result) -> list[dict]:
    models = [
        {"model": name, "slice": "warm", "metrics": m, "ci95": c, "n_users": None}
        for name, (m, c) in result.model_metrics.items()
    ]
    return [
        *[r for r in result.rows if r["slice"] == "reference"],
        *models,
        *[r for r in result.rows if r["slice"] != "reference"],
    ]


def taste_markdown(result) -> str:
    """Validity per score, every row's scores with CIs (invalid scores marked), paired differences."""
    validity = result.meta["validity"]
    shown = {m: validity[m]["shown"] for m in TASTE_METRICS}
    mark = {m: "" if shown[m] else " †" for m in TASTE_METRICS}
    lines = [
        "# Taste scores: generated vs recommended songs",
        "",
        f"Reference: the user's **{result.meta.get('reference', 'heldout')}** songs, candidate excluded. "
        f"† = {NOT_SHOWN} (validity CI includes 0.5).",
        "",
        "## Validity (AUC of `heldout` vs `random-songs`, per user, averaged)",
        "",
        "| score | AUC [95% CI] | users | shown to measure taste |",
        "| --- | --- | --- | --- |",
    ]
    for m in TASTE_METRICS:
        v = validity[m]
        lines.append(
            f"| {m} | {_cell(v['auc'], v['ci95'])} | {v['n_users']} | {'yes' if shown[m] else 'no: ' + NOT_SHOWN} |"
        )
    header = ["row", "slice", *(m + mark[m] for m in TASTE_METRICS), "near-copy rate", "note"]
    lines += [
        "",
        "## Rows (mean over users [95% CI])",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for row in _all_rows(result):
        cells = [
            row["model"],
            row["slice"],
            *(_cell(row["metrics"].get(m), row["ci95"].get(m)) for m in TASTE_METRICS),
            _cell(row["metrics"].get("near_copy_rate"), row["ci95"].get("near_copy_rate")),
            row.get("note", ""),
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines += [
        "",
        "## Paired per-user differences (a − b) [95% CI]",
        "",
        "| score | a | b | difference | p | users |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in result.meta["comparisons"]:
        p = "—" if c["p_value"] is None else f"{c['p_value']:.3f}"
        lines.append(
            f"| {c['metric']}{mark[c['metric']]} | {c['a']} | {c['b']} | {_cell(c['diff'], c['ci95'])} | {p} "
            f"| {c['n_users']} |"
        )
    thresholds = result.meta["novelty_thresholds"]
    lines += [
        "",
        f"Near-copy: nearest history song with MIDI cosine ≥ {thresholds['midi']} or lyric trigram "
        f"overlap ≥ {thresholds['lyrics_trigram_overlap']} (`taste/novelty.py`).",
        "",
    ]
    return "\n".join(lines)


def taste_figure(result, path: Path) -> None:
    """One panel per score: each row's mean with its CI; a score not shown to measure taste is hatched and titled so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _all_rows(result) if any(m in r["metrics"] for m in TASTE_METRICS)]
    fig, axes = plt.subplots(1, len(TASTE_METRICS), figsize=(6 * len(TASTE_METRICS), 0.35 * len(rows) + 1.5))
    for ax, metric in zip(axes, TASTE_METRICS):
        valid = result.meta["validity"][metric]["shown"]
        names = [r["model"] for r in rows]
        means = [r["metrics"].get(metric, float("nan")) for r in rows]
        ci = [r["ci95"].get(metric) or [m, m] for r, m in zip(rows, means)]
        errors = [
            [m - (c[0] if c[0] is not None else m) for m, c in zip(means, ci)],
            [(c[1] if c[1] is not None else m) - m for m, c in zip(means, ci)],
        ]
        ax.barh(names, means, xerr=errors, hatch=None if valid else "//", color="tab:blue" if valid else "lightgrey")
        ax.invert_yaxis()
        ax.set_title(metric if valid else f"{metric}\n({NOT_SHOWN})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_taste_report(result, out: Path) -> list[str]:
    """taste_scores.csv (every scored song), taste.md and taste_scores.png; returns the file names."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in pd.DataFrame(result.table).columns if c != "lyrics"] if result.table else []
    pd.DataFrame(result.table, columns=columns or None).to_csv(out / SCORES_CSV, index=False)
    (out / REPORT_MD).write_text(taste_markdown(result))
    taste_figure(result, out / FIGURE)
    return [SCORES_CSV, REPORT_MD, FIGURE]
