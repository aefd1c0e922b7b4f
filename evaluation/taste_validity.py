"""Does a taste score measure taste on this dataset? Validity = AUC of held-out songs vs random songs.

Per user, the AUC is the chance that one of the user's held-out songs (scored against the user's
other held-out songs) scores above one random catalog song outside the history (scored against
all held-out songs); ties count half. The score's validity is the mean over users, with a
percentile bootstrap CI over users. A score whose CI includes 0.5 is "not shown to measure taste
on this dataset", and every row that uses it says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.metrics import bootstrap_ci

NOT_SHOWN = "not shown to measure taste on this dataset"
POSITIVE_ROW, NEGATIVE_ROW = "heldout", "random-songs"


def user_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(positive > negative) + 0.5 P(tie) over all pairs; None when either side is empty."""
    if len(positives) == 0 or len(negatives) == 0:
        return None
    p = np.asarray(positives, dtype=np.float64)[:, None]
    n = np.asarray(negatives, dtype=np.float64)[None, :]
    return float(np.mean((p > n) + 0.5 * (p == n)))


def score_validity(
    positives: Mapping[str, Sequence[float]], negatives: Mapping[str, Sequence[float]], n_bootstrap: int, seed: int
) -> dict:
    """{"auc", "ci95", "n_users", "shown"} from per-user song scores of the two reference rows.

    `shown` is True when the CI lies wholly above 0.5 (False when it includes 0.5 or there is no CI).
    """
    aucs = [
        a for u in sorted(set(positives) & set(negatives)) if (a := user_auc(positives[u], negatives[u])) is not None
    ]
    if not aucs:
        return {"auc": None, "ci95": [None, None], "n_users": 0, "shown": False}
    values = np.array(aucs)[:, None]
    lo, hi = bootstrap_ci(values, n_bootstrap, seed)[0]
    ci = [round(float(lo), 6), round(float(hi), 6)] if np.isfinite(lo) else [None, None]
    return {
        "auc": round(float(values.mean()), 6),
        "ci95": ci,
        "n_users": len(aucs),
        "shown": ci[0] is not None and ci[0] > 0.5,
    }


def validity_note(metric: str, validity: dict) -> str:
    """What a row using `metric` must say when the score was not shown to measure taste ("" otherwise)."""
    if validity.get("shown"):
        return ""
    auc, (lo, hi) = validity.get("auc"), validity.get("ci95", [None, None])
    figure = f"validity AUC {auc:.3f} [{lo:.3f}, {hi:.3f}]" if auc is not None and lo is not None else "no validity AUC"
    return f"{metric}: {NOT_SHOWN} ({figure})"
