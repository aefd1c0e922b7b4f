"""The leaderboard's rows and the files written from them: leaderboard.{json,csv,md}.

Row contract of leaderboard.json (other tools read it), a list of::

    {"model": str, "slice": "warm" | "cold" | "generated", "n_users": int,
     "metrics": {"recall@10": float, "precision@10": float, "ndcg@10": float, ...},
     "ci95": {"recall@10": [lo, hi], ...},
     "note": str}            # optional: why a row holds no numbers, or what its numbers must be read with

A row with a note and n_users 0 has empty metrics and ci95: the model cannot rank the slice
(collaborative filtering on cold-start songs), the slice has no user in the split, or the model was
skipped. A row with numbers carries a note when they need one: the generative stage's rows (what the
row is), and every row with a taste score that was not shown to measure taste on this dataset. NaN is written as null; floats are rounded to 6 decimals and keys sorted, so the same
seed gives a byte-identical file. Run metadata (paths, time, timings) goes to run.json.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.generative_stage import TASTE_METRICS

SLICES = ("warm", "cold")
DECIMALS = 6


@dataclass
class Report:
    """What a run wrote: the sorted rows, the Markdown table, the folder and its files."""

    rows: list[dict]
    markdown: str
    out: Path
    files: list[Path]


def result_row(result) -> dict:
    """A leaderboard row from an `evaluation.evaluator.SliceResult`."""
    return {
        "model": result.model,
        "slice": result.slice,
        "n_users": int(result.n_users),
        "metrics": {key: _number(value) for key, value in result.metrics.items()},
        "ci95": {key: [_number(lo), _number(hi)] for key, (lo, hi) in result.ci95.items()},
    }


def unique_name(name: str, taken: dict, suffix: str | None = None) -> str:
    """`name`, or `name:suffix` / `name-2`, ... when a model already has it."""
    if name not in taken:
        return name
    if suffix and f"{name}:{suffix}" not in taken:
        return f"{name}:{suffix}"
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"


def note_row(model: str, slice_name: str, note: str) -> dict:
    """A row that holds no numbers, only why."""
    return {"model": model, "slice": slice_name, "n_users": 0, "metrics": {}, "ci95": {}, "note": note}


def _number(value: float) -> float | None:
    value = float(value)
    return round(value, DECIMALS) if math.isfinite(value) else None


def sort_rows(rows: Sequence[dict], primary_metric: str) -> list[dict]:
    """Warm before cold; within a slice best `primary_metric` first, rows without it last, then by name."""

    def key(row: dict) -> tuple:
        value = row["metrics"].get(primary_metric)
        order = SLICES.index(row["slice"]) if row["slice"] in SLICES else len(SLICES)
        return (order, value is None, -(value or 0.0), row["model"])

    return sorted(rows, key=key)


def write_reports(
    rows: list[dict], out: Path, primary_metric: str, report_metrics: Sequence[str], title: str
) -> Report:
    """leaderboard.json (the contract), .csv (flat, CI bounds as `<metric>_lo/_hi`) and .md."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(rows, primary_metric, report_metrics, title)
    files = {"leaderboard.json": to_json(rows), "leaderboard.csv": to_csv(rows), "leaderboard.md": markdown}
    for name, text in files.items():
        (out / name).write_text(text)
    return Report(rows=list(rows), markdown=markdown, out=out, files=[out / name for name in files])


def to_json(rows: Sequence[dict]) -> str:
    return json.dumps(list(rows), indent=2, sort_keys=True, allow_nan=False) + "\n"


def metric_columns(rows: Sequence[dict]) -> list[str]:
    """Every metric key of the rows, in first-seen order."""
    return list(dict.fromkeys(key for row in rows for key in row["metrics"]))


def to_csv(rows: Sequence[dict]) -> str:
    metrics = metric_columns(rows)
    columns = ["model", "slice", "n_users", "note"]
    for metric in metrics:
        columns += [metric] + ([f"{metric}_lo", f"{metric}_hi"] if has_ci(rows, metric) else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else value for value in flat_row(row, columns)])
    return buffer.getvalue()


def flat_row(row: dict, columns: Sequence[str]) -> list:
    values = []
    for column in columns:
        if column in ("model", "slice", "n_users", "note"):
            values.append(row.get(column))
        elif column.endswith(("_lo", "_hi")) and column[:-3] in row["ci95"]:
            values.append((row["ci95"][column[:-3]] or [None, None])[column.endswith("_hi")])
        else:
            values.append(row["metrics"].get(column))
    return values


def has_ci(rows: Sequence[dict], metric: str) -> bool:
    return any(metric in row["ci95"] and None not in row["ci95"][metric] for row in rows)


def to_markdown(rows: Sequence[dict], primary_metric: str, report_metrics: Sequence[str], title: str) -> str:
    """One table per slice, rows in the given order (sort them first), the primary metric's CI beside it."""
    taste = [m for m in TASTE_METRICS if any(m in row["metrics"] for row in rows)]
    metrics = list(dict.fromkeys([primary_metric, *report_metrics, *taste]))
    lines = [f"# {title}", ""]
    for slice_name in dict.fromkeys(row["slice"] for row in rows):
        chosen = [row for row in rows if row["slice"] == slice_name]
        header = ["#", "model", *metrics, f"{primary_metric} 95% CI", "users", "note"]
        lines += [f"## {slice_name} songs", "", _md_row(header), _md_row(["---"] * len(header))]
        for rank, row in enumerate(chosen, 1):
            bounds = row["ci95"].get(primary_metric) or [None, None]
            ci = f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if None not in bounds else "—"
            cells = [str(rank), row["model"], *(_md_number(row["metrics"].get(m)) for m in metrics), ci,
                     str(row["n_users"]), row.get("note", "")]
            lines.append(_md_row(cells))
        lines.append("")
    return "\n".join(lines)


def _md_number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
