"""Per-user top-K ranking metrics (RecBole's definitions) and bootstrap confidence intervals.

Pure functions of a user × rank hit matrix: `hits[u, i]` is True when the song at rank i+1
of user u's list is relevant. With R(u) the user's relevant songs and K the cut-off:

    hit@K        1 if any hit in the top K
    mrr@K        1 / rank of the first hit in the top K (0 without one)
    recall@K     hits in top K / |R(u)|
    precision@K  hits in top K / K
    ndcg@K       DCG@K / IDCG@K, binary gains, DCG = sum_i hit_i / log2(i + 2),
                 IDCG = the DCG of min(|R(u)|, K) hits at the top
    map@K        sum over hit positions i <= K of precision@i, divided by min(|R(u)|, K)

Other libraries differ in places (checked in tests/test_metrics.py):
- torchmetrics' RetrievalMAP(top_k=K) divides by the hits inside the top K, not by
  min(|R(u)|, K): map@K here = torchmetrics' AP@K * hits@K / min(|R(u)|, K).
  Its recall/precision/MAP/MRR also ignore relevant items whose score is <= 0.
- implicit's `ranking_metrics_at_k` "precision" is pooled over users:
  sum of hits / sum of min(K, |R(u)|); its map and ndcg equal map@K and ndcg@K here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRIC_NAMES = ("recall", "precision", "ndcg", "map", "hit", "mrr")
"""Per-user metrics, in the order `ranking_metrics` returns them for each K."""


def metric_keys(ks: Sequence[int]) -> list[str]:
    """Keys like "recall@10", in the column order of `ranking_metrics`."""
    return [f"{name}@{k}" for k in ks for name in METRIC_NAMES]


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Every metric at every K for a block of users, from one pass over the top max(ks) ranks.

    Plain numpy: the arrays are a few users × K wide, where torch's threads cost more to wake
    (up to 100x on a busy 2-core machine) than the work they share.

    Args:
        hits: Bool [n_users, width] with width >= max(ks); rank i+1 is column i (a CPU tensor works too).
        n_relevant: [n_users] count of each user's relevant songs (> 0).
        ks: Cut-offs.

    Returns:
        Float64 [n_users, len(ks) * len(METRIC_NAMES)], columns as `metric_keys(ks)`.
    """
    k_max = max(ks)
    hits = np.asarray(hits)
    if hits.shape[1] < k_max:
        raise ValueError(f"hits has {hits.shape[1]} ranks, fewer than the largest K ({k_max})")
    hit = hits[:, :k_max].astype(np.float64)
    n_rel = np.asarray(n_relevant, dtype=np.float64)[:, None]
    rank = np.arange(1, k_max + 1, dtype=np.float64)
    discount = 1.0 / np.log2(rank + 1.0)
    cum_hits = hit.cumsum(1)
    cum_dcg = (hit * discount).cumsum(1)
    ideal = discount.cumsum()  # ideal[j] = IDCG with j+1 relevant songs
    cum_precision_at_hits = (cum_hits / rank * hit).cumsum(1)
    cum_rr = (hit * (cum_hits == 1) / rank).cumsum(1)  # only the first hit adds 1/rank
    columns = []
    for k in ks:
        n_hits, capped = cum_hits[:, k - 1 : k], np.minimum(n_rel, k)
        idcg = ideal[(capped - 1).astype(np.int64)]
        columns += [
            n_hits / n_rel,
            n_hits / k,
            cum_dcg[:, k - 1 : k] / idcg,
            cum_precision_at_hits[:, k - 1 : k] / capped,
            (n_hits > 0).astype(np.float64),
            cum_rr[:, k - 1 : k],
        ]
    return np.concatenate(columns, axis=1)


def bootstrap_ci(
    values: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    max_block_elements: int = 1 << 22,
) -> np.ndarray:
    """Percentile bootstrap interval of the mean over users, for every column at once.

    Each resample draws n users with replacement; the resampled mean is counts @ values / n,
    so memory stays at one block of resamples × users (`max_block_elements`), not resamples × users.

    Args:
        values: [n_users, n_metrics] per-user values.
        n_resamples: Number of bootstrap resamples; 0 skips the bootstrap.
        seed: Seed of the resampling.
        level: Coverage of the interval.
        max_block_elements: Largest resamples × users block held at once.

    Returns:
        [n_metrics, 2] lower and upper bounds (NaN without users or resamples).
    """
    values = np.asarray(values, dtype=np.float64)
    n, m = values.shape
    if n == 0 or n_resamples == 0:
        return np.full((m, 2), np.nan)
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, max_block_elements // n))
    means = np.empty((n_resamples, m))
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)
        means[start : start + b] = counts @ values / n
    tail = (1.0 - level) / 2.0 * 100.0
    return np.percentile(means, [tail, 100.0 - tail], axis=0).T
