"""The generative stage's numbers: per-song scores -> row means with CIs, validity, near-copies, paired differences.

A user's value in a row is the mean of their scored songs (near-copies left out); a row's value
is the mean over users with a bootstrap 95% CI over users (seeded). Failures (no audio, no
notes, no lyrics, a judge that did not answer) are counted per row and metric, never scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.comparisons import UserScores, compare
from evaluation.metrics import bootstrap_ci
from evaluation.taste_panel import TASTE_METRICS
from evaluation.taste_validity import NEGATIVE_ROW, POSITIVE_ROW, score_validity, validity_note
from taste import TasteResult, TasteSong
from taste.novelty import LYRIC_COPY_THRESHOLD, MIDI_COPY_THRESHOLD, Nearest

GENERATED_SLICE, REFERENCE_SLICE = "generated", "reference"
REFERENCE_ROWS = {
    "heldout": "held-out test songs, each against the user's other held-out songs",
    "history": "training songs: how much the past resembles the future",
    "random-songs": "random catalog songs outside the history",
}
NEAR_COPIES = "/near-copies"
DECIMALS = 6


@dataclass
class Candidate:
    """One scored song of one row for one user."""

    user: int
    row: str
    rank: int
    song: TasteSong
    results: dict[str, TasteResult]
    nearest: Nearest | None = None

    @property
    def near_copy(self) -> bool:
        return self.nearest is not None and self.nearest.near_copy


@dataclass
class StageResult:
    """What the stage adds: metrics per model, its own rows, run.json entries, per-song W&B table rows."""

    model_metrics: dict[str, tuple[dict, dict]]
    rows: list[dict]
    meta: dict
    table: list[dict]
    per_user: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def write(self, out: Path) -> list[str]:
        """taste_scores.csv, taste.md and taste_scores.png under `out`; returns their names."""
        from evaluation.taste_report import write_taste_report

        return write_taste_report(self, Path(out))


def _round(value: float) -> float | None:
    value = float(value)
    return round(value, DECIMALS) if np.isfinite(value) else None


def _mean_ci(values: Sequence[float], n_bootstrap: int, seed: int) -> tuple[float | None, list]:
    column = np.asarray(values, dtype=np.float64)[:, None]
    lo, hi = bootstrap_ci(column, n_bootstrap, seed)[0]
    return _round(column.mean()), [_round(lo), _round(hi)]


def summarise_users(per_user: dict[str, list[list]], n_bootstrap: int, seed: int) -> tuple[dict, dict, dict, int]:
    """(metrics, ci95, failures by reason, n_users) from per-user lists of `TasteResult`s per metric.

    A user's value is the mean of their scored songs; users with none scored are left out of that metric.
    """
    metrics, ci95, failures, n_users = {}, {}, {}, 0
    for name, users in per_user.items():
        means = [
            np.mean([r.value for r in results if r.value is not None])
            for results in users
            if any(r.value is not None for r in results)
        ]
        failures[name] = dict(Counter(r.failure for results in users for r in results if r.failure is not None))
        if means:
            metrics[name], ci95[name] = _mean_ci(means, n_bootstrap, seed)
        n_users = max(n_users, len(means))
    return metrics, ci95, failures, n_users


def _row_users(candidates: list[Candidate]) -> dict[str, dict[str, float]]:
    """Per metric, user id -> mean of the user's scored songs."""
    out: dict[str, dict[str, float]] = {}
    for metric in TASTE_METRICS:
        values: dict[int, list[float]] = {}
        for c in candidates:
            if c.results[metric].value is not None:
                values.setdefault(c.user, []).append(c.results[metric].value)
        out[metric] = {str(u): float(np.mean(v)) for u, v in values.items()}
    return out


def _row(name: str, slice_name: str, candidates: list[Candidate], n_bootstrap: int, seed: int) -> tuple[dict, dict]:
    """A leaderboard row of `candidates` and its per-user values."""
    per_user = _row_users(candidates)
    metrics, ci95 = {}, {}
    for metric, values in per_user.items():
        if values:
            metrics[metric], ci95[metric] = _mean_ci(list(values.values()), n_bootstrap, seed)
    n_users = max((len(v) for v in per_user.values()), default=0)
    return {"model": name, "slice": slice_name, "n_users": n_users, "metrics": metrics, "ci95": ci95}, per_user


def _failures(candidates: list[Candidate]) -> dict[str, dict[str, int]]:
    return {m: dict(Counter(c.results[m].failure for c in candidates if c.results[m].failure)) for m in TASTE_METRICS}


def _near_copy_rate(candidates: list[Candidate], n_bootstrap: int, seed: int) -> tuple[float | None, list]:
    by_user: dict[int, list[bool]] = {}
    for c in candidates:
        by_user.setdefault(c.user, []).append(c.near_copy)
    return _mean_ci([np.mean(v) for v in by_user.values()], n_bootstrap, seed) if by_user else (None, [None, None])


def _validity(by_row: dict[str, list[Candidate]], n_bootstrap: int, seed: int) -> dict[str, dict]:
    def songs(row: str, metric: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for c in by_row.get(row, []):
            if c.results[metric].value is not None:
                out.setdefault(str(c.user), []).append(c.results[metric].value)
        return out

    return {m: score_validity(songs(POSITIVE_ROW, m), songs(NEGATIVE_ROW, m), n_bootstrap, seed) for m in TASTE_METRICS}


def _user_scores(values: dict[str, float]) -> UserScores:
    users = sorted(values, key=int)
    return UserScores(np.array([int(u) for u in users]), np.array([values[u] for u in users], dtype=np.float64))


def _comparisons(per_user: dict, models: list[str], generators: list[str], n_bootstrap: int, seed: int) -> list[dict]:
    """Each generator vs the best recommender (per score, by mean) and vs `heldout`: paired per-user differences
    (`evaluation.comparisons.compare`: bootstrap CI over users, sign-flip p-value)."""
    out = []
    for metric in TASTE_METRICS:
        means = {m: np.mean(list(per_user[m][metric].values())) for m in models if per_user.get(m, {}).get(metric)}
        best = max(means, key=means.get) if means else None
        for generator in generators:
            for baseline in ([best] if best else []) + ["heldout"]:
                a, b = per_user[generator][metric], per_user[baseline][metric]
                if not set(a) & set(b):
                    continue
                result = compare([_user_scores(a)], [_user_scores(b)], n_resamples=n_bootstrap, seed=seed)
                clean = {k: (_round(v) if isinstance(v, float) else v) for k, v in result.items() if k != "ci95"}
                out.append(
                    {
                        "metric": metric,
                        "a": generator,
                        "b": baseline,
                        **clean,
                        "ci95": [_round(v) for v in result["ci95"]],
                    }
                )
    return out


def _table(candidates: list[Candidate], users: list[str]) -> list[dict]:
    rows = []
    for c in candidates:
        path = c.song._audio if isinstance(c.song._audio, (str, Path)) else None
        entry = {
            "user_id": users[c.user],
            "source": c.row,
            "rank": c.rank,
            "song": c.song.id,
            "audio_path": str(path) if path else None,
            "lyrics": c.song.lyrics,
            **{m: c.results[m].value for m in TASTE_METRICS},
            **{f"{m}_failure": c.results[m].failure for m in TASTE_METRICS},
        }
        if c.nearest is not None:
            entry.update(
                near_copy=c.near_copy,
                nearest_midi=c.nearest.midi,
                nearest_midi_song=c.nearest.midi_song,
                nearest_lyrics=c.nearest.lyrics,
                nearest_lyrics_song=c.nearest.lyrics_song,
            )
        rows.append(entry)
    return rows


def summarise_stage(
    candidates: list[Candidate],
    models: list[str],
    backends: list[str],
    user_ids: list[str],
    judge_kind: str,
    n_bootstrap: int,
    seed: int,
) -> StageResult:
    """Rows, model metrics, validity, near-copies and paired differences of every scored song."""
    by_row: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_row.setdefault(c.row, []).append(c)
    validity = _validity(by_row, n_bootstrap, seed)
    marks = [note for m in TASTE_METRICS if (note := validity_note(m, validity[m]))]
    rows, model_metrics, per_user, failures, novelty = [], {}, {}, {}, {}
    for name in [*REFERENCE_ROWS, *models, *(f"generated-{b}" for b in backends)]:
        chosen = by_row.get(name, [])
        kept = [c for c in chosen if not c.near_copy]
        row, per_user[name] = _row(name, REFERENCE_SLICE, kept, n_bootstrap, seed)
        failures[name] = _failures(chosen)
        if name in models:
            model_metrics[name] = (row["metrics"], row["ci95"])
            continue
        if name in REFERENCE_ROWS:
            row["note"] = "; ".join([REFERENCE_ROWS[name], *marks])
            rows.append(row)
            continue
        rate, rate_ci = _near_copy_rate(chosen, n_bootstrap, seed)
        row["slice"] = GENERATED_SLICE
        row["metrics"]["near_copy_rate"], row["ci95"]["near_copy_rate"] = rate, rate_ci
        row["note"] = "; ".join(
            [
                f"{name[len('generated-') :]} generator, {len(chosen)} songs, "
                f"{len(chosen) - len(kept)} near-copies scored apart; lyric judge: {judge_kind}",
                *marks,
            ]
        )
        rows.append(row)
        copies = [c for c in chosen if c.near_copy]
        novelty[name] = {"songs": len(chosen), "near_copies": len(copies), "near_copy_rate": rate}
        if copies:
            copy_row, _ = _row(name + NEAR_COPIES, GENERATED_SLICE, copies, n_bootstrap, seed)
            copy_row["note"] = "near-copies of a history song: not counted in the generator's mean"
            rows.append(copy_row)
    generators = [f"generated-{b}" for b in backends]
    meta = {
        "validity": validity,
        "failures": failures,
        "novelty": novelty,
        "novelty_thresholds": {"midi": MIDI_COPY_THRESHOLD, "lyrics_trigram_overlap": LYRIC_COPY_THRESHOLD},
        "comparisons": _comparisons(per_user, models, generators, n_bootstrap, seed),
    }
    return StageResult(model_metrics, rows, meta, _table(candidates, user_ids), per_user)
