"""Full-catalog top-K evaluation of any scorer, in chunks of users, on a warm or a cold slice.

Protocol (one `SliceResult` per model × split × slice):

- Candidates. `warm`: every song that is not a cold-start song. `cold`: the cold-start songs
  only (the standard cold-start item protocol: can the model find the user's new songs among
  the new songs?). Songs outside the slice's candidates are never ranked.
- Relevance. The user's songs in the split (val or test) that are candidates of the slice,
  binary. Users with no relevant song in the slice are left out of it. (Every interaction with
  a cold song is in test, so the cold slice of `val` is empty: its metrics are NaN.)
- Seen songs. The evaluator, not the recommender, removes songs the user has already heard:
  training songs for `val`; training and validation songs for `test` (as RecBole does).
- Unrankable songs. A recommender may score a song -inf ("cannot rank it"). A top-K slot
  whose score is -inf is empty: it is never a hit and never counts towards coverage.
- Ties. Songs with equal scores are ranked by their catalog index, lower first (a stable sort's
  order), so the metrics are defined even where exact ties cross the cut-off (item-KNN and RP3beta
  give many songs with the same listeners the same score) and any implementation can reproduce them.
- Metrics. Per-user RecBole metrics (see `evaluation.metrics`) averaged over users, each with
  a seeded percentile-bootstrap 95% CI over users; catalog coverage@K = share of the slice's
  candidates that appear in at least one evaluated user's top K (no CI: it is not per user).

Memory is bounded by one chunk: the scorer fills one preallocated [chunk, n_songs] buffer (or returns
a tensor of its own), which is masked (in place, or as a copy of the cold columns) and cut down to its
top max(K) before the next chunk is scored.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from evaluation.metrics import bootstrap_ci, metric_keys, ranking_metrics
from recommenders import scoring
from songdata.interactions import InteractionData

log = logging.getLogger(__name__)

DEFAULT_KS = (5, 10, 20, 50)
Split = Literal["val", "test"]
Slice = Literal["warm", "cold"]
Scorer = Callable[[np.ndarray, torch.Tensor], torch.Tensor]
"""Maps user indices [n] and a float32 buffer [n, n_songs] to scores [n, n_songs]; higher is better,
-inf for songs it cannot rank. It may write the scores into the buffer and return it (sparing a fresh
chunk of memory, and the page faults it costs, for every chunk) or return a tensor of its own."""


@functools.cache
def score_budget_bytes() -> int:
    """Size of one chunk's score matrix when `chunk_size` is not given (at least 64 users, at most 4096).

    Small chunks keep the scores in cache while the matmul writes them and masking and top-k read them:
    on an Intel Xeon (20k users x 50k songs, full metric set) 16 MiB was 1.1-1.4x faster than 32 MiB,
    itself 1.4x faster than 256 MiB. But MKL, torch's BLAS on x86, runs generic kernels on other
    vendors' CPUs, and they are slow on products only a few dozen users wide: on an AMD EPYC Zen 5, with
    the scores written into the evaluator's buffer, 512 MiB chunks made the same evaluation 1.3-1.7x faster
    than 16 MiB (and small leaderboards of cheap scorers about a second slower). Where dense scores come
    from oneDNN instead (`recommenders.scoring`), in a fresh tensor for every chunk, 128 MiB did as well
    as 512 MiB or better, steadier, in half the memory, where torch's tensors get transparent huge pages;
    in 4 KiB pages 128 MiB chunks were 1.5-2x slower than 32 MiB ones. Below 64 users a chunk's fixed
    costs dominate, and a BLAS may round a narrower product differently. benchmarks/README.md has the figures.
    """
    if scoring.prefer_onednn():
        return 128 << 20 if scoring.fresh_tensors_on_huge_pages() else 32 << 20
    return 512 << 20 if scoring.mkl_on_other_vendor() else 16 << 20


def default_chunk_size(n_songs: int) -> int:
    """Users per chunk when `chunk_size` is not given: as many as fit `score_budget_bytes()`, 64 to 4096."""
    return int(np.clip(score_budget_bytes() // (4 * max(n_songs, 1)), 64, 4096))


@dataclass
class SliceResult:
    """Metrics of one model on one split and slice.

    Attributes:
        model: Name of the model.
        split: "val" or "test".
        slice: "warm" or "cold".
        n_users: Users evaluated (those with at least one relevant song in the slice).
        n_candidates: Songs ranked for every user.
        metrics: Mean over users, e.g. {"recall@10": 0.21, ..., "coverage@10": 0.4}.
        ci95: Bootstrap 95% interval of each per-user metric (not coverage), {"recall@10": [lo, hi]}.
        user_indices: [n_users] the evaluated users.
        n_relevant: [n_users] each user's number of relevant songs.
        per_user: Per-user values of each per-user metric, [n_users] each (for paired comparisons).
    """

    model: str
    split: str
    slice: str
    n_users: int
    n_candidates: int
    metrics: dict[str, float]
    ci95: dict[str, list[float]]
    user_indices: np.ndarray = field(repr=False)
    n_relevant: np.ndarray = field(repr=False)
    per_user: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary, without the per-user arrays."""
        return {
            "model": self.model,
            "split": self.split,
            "slice": self.slice,
            "n_users": self.n_users,
            "n_candidates": self.n_candidates,
            "metrics": dict(self.metrics),
            "ci95": {key: list(bounds) for key, bounds in self.ci95.items()},
        }


def evaluate_scorer(
    scorer: Scorer,
    data: InteractionData,
    split: Split = "test",
    slice: Slice = "warm",
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    model: str = "model",
    show_progress: bool = True,
) -> SliceResult:
    """Rank the slice's candidates for every user with a relevant song and compute the metrics.

    Args:
        scorer: Maps user indices [n] and a CPU buffer to a float tensor [n, n_songs] (any device); see `Scorer`.
        data: The interactions; only the split's matrix, `train` (and `val` for test) are read.
        split: Which held-out matrix holds the relevant songs.
        slice: "warm" (non-cold songs) or "cold" (cold-start songs only).
        ks: Cut-offs K.
        chunk_size: Most users scored at once; by default `default_chunk_size(n_songs)`. The users
            are split into chunks of equal size (to one user), so that no chunk is left with a few
            users, for which a BLAS may round scores differently.
        n_bootstrap: Bootstrap resamples for the CIs; 0 leaves them NaN.
        seed: Seed of the bootstrap.
        model: Name recorded in the result.
        show_progress: Show a progress bar over chunks.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    relevance, seen, candidates = _slice_matrices(data, split, slice)
    users = np.flatnonzero(np.diff(relevance.indptr))
    keys = metric_keys(ks)
    if chunk_size is None:
        chunk_size = default_chunk_size(data.n_songs)
    n_chunks = max(-(-len(users) // chunk_size), 1)
    chunk_size = max(-(-len(users) // n_chunks), 1)  # chunks of equal size, none left with a few users
    songs = _SliceSongs(candidates, data.n_songs)
    covered = {k: np.zeros(data.n_songs, dtype=bool) for k in ks}
    per_user = np.empty((len(users), len(keys)))
    buffer = torch.empty(min(chunk_size, len(users)), data.n_songs)  # pages are touched only if the scorer writes
    starts = range(0, len(users), chunk_size)
    for start in tqdm(starts, desc=f"eval {model} {split}/{slice}", disable=not show_progress, leave=False):
        chunk = users[start : start + chunk_size]
        out = buffer[: len(chunk)]
        scores = _score(scorer, chunk, out)
        ids, valid = _top_candidates(scores, chunk, songs, seen, max(ks), owned=_shares_memory(scores, out))
        del scores  # free a chunk of the scorer's own before it allocates the next
        hits = _is_relevant(relevance, chunk, ids) & valid
        per_user[start : start + len(chunk)] = ranking_metrics(hits, np.diff(relevance.indptr)[chunk], ks)
        for k in ks:
            covered[k][ids[:, :k][valid[:, :k]]] = True
    return _summarise(per_user, keys, covered, users, relevance, candidates, n_bootstrap, seed, model, split, slice)


def _slice_matrices(
    data: InteractionData, split: Split, slice: Slice
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Binary relevance restricted to the slice, the seen-song matrix and the candidate songs."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    if slice not in ("warm", "cold"):
        raise ValueError(f"slice must be 'warm' or 'cold', got {slice!r}")
    is_cold = np.zeros(data.n_songs, dtype=bool)
    is_cold[data.cold_songs] = True
    in_slice = is_cold if slice == "cold" else ~is_cold
    held_out = data.val if split == "val" else data.test
    relevance = (held_out != 0).astype(np.float32) @ sp.diags(in_slice.astype(np.float32))
    relevance = sp.csr_matrix(relevance)
    relevance.eliminate_zeros()
    relevance.sort_indices()
    seen = data.train if split == "val" else data.train + data.val
    return relevance, sp.csr_matrix(seen), np.flatnonzero(in_slice)


class _SliceSongs:
    """The slice's candidate songs, and how to rank them cheaply."""

    def __init__(self, candidates: np.ndarray, n_songs: int) -> None:
        self.candidates = candidates
        self.candidates_t = torch.from_numpy(candidates)
        is_candidate = np.zeros(n_songs, dtype=bool)
        is_candidate[candidates] = True
        self.excluded_t = torch.from_numpy(np.flatnonzero(~is_candidate))
        self.position = np.full(n_songs, -1, dtype=np.int64)
        self.position[candidates] = np.arange(len(candidates))
        # Few candidates (cold slice): copy their columns. Most songs (warm): mask in place.
        self.in_place = len(candidates) > n_songs // 2


def _score(scorer: Scorer, users: np.ndarray, out: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        scores = torch.as_tensor(scorer(users, out)).detach()
    if scores.shape != out.shape or not scores.is_floating_point():
        raise ValueError(
            f"scorer returned {tuple(scores.shape)} {scores.dtype}; expected a float tensor of shape "
            f"{tuple(out.shape)} = (users asked for, songs in the catalog)"
        )
    return scores


def _shares_memory(scores: torch.Tensor, out: torch.Tensor) -> bool:
    return scores.device == out.device and scores.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()


def _top_candidates(
    scores: torch.Tensor, users: np.ndarray, songs: _SliceSongs, seen: sp.csr_matrix, k_max: int, owned: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Song indices [n, k_max] of each user's best unseen candidates and whether each slot is filled.

    Either a copy of the candidate columns is masked, or (when most songs are candidates) the tensor
    itself, which saves a copy of the whole chunk (a third of the evaluation time on a full catalog).
    A tensor the scorer still owns (not `owned`, the evaluator's buffer) is restored after ranking.
    """
    device = scores.device
    rows = seen[users]
    row_of = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
    k = min(k_max, len(songs.candidates))
    if songs.in_place:
        work = scores if scores.is_contiguous() else scores.contiguous()  # e.g. an expanded row
        r, c = torch.from_numpy(row_of).to(device), torch.from_numpy(rows.indices.astype(np.int64)).to(device)
        excluded = songs.excluded_t.to(device)
        restore = not owned and work is scores
        if restore:
            saved_seen, saved_excluded = work[r, c], work.index_select(1, excluded)
        try:
            work[r, c] = -torch.inf
            work.index_fill_(1, excluded, -torch.inf)
            top = block_topk(work, k)
        finally:
            if restore:
                work.index_copy_(1, excluded, saved_excluded)
                work[r, c] = saved_seen
        ids = top.indices.cpu().numpy()
    else:
        work = scores.index_select(1, songs.candidates_t.to(device))
        cols = songs.position[rows.indices]
        keep = cols >= 0
        work[torch.from_numpy(row_of[keep]).to(device), torch.from_numpy(cols[keep]).to(device)] = -torch.inf
        top = block_topk(work, k)
        ids = songs.candidates[top.indices.cpu().numpy()]
    # From here on numpy: these arrays are only k wide, and waking torch's threads would cost more.
    values = top.values.cpu().numpy()
    if np.isnan(values).any():  # NaN ranks above everything, so checking the top suffices
        raise ValueError("scorer returned NaN scores; use -inf for songs it cannot rank")
    valid = np.isfinite(values)
    if k < k_max:  # fewer candidates than K: the remaining slots stay empty
        ids = np.pad(ids, ((0, 0), (0, k_max - k)))
        valid = np.pad(valid, ((0, 0), (0, k_max - k)), constant_values=False)
    return ids, valid


def block_topk(scores: torch.Tensor, k: int, block: int = 32) -> torch.return_types.topk:
    """The k best entries of each row, best first, ties broken by the lower column: the first k of a
    stable descending sort (NaN first), so that any implementation of that rule reproduces our rankings
    (slots scored -inf are empty, and their columns unspecified: narrow rows may order them otherwise).
    Exact ties are common (songs with the same listeners score alike under item-KNN or RP3beta), and
    `torch.topk` orders them arbitrarily. Several times faster than `torch.topk` on wide CPU rows
    (benchmarks/README.md).

    One pass over the chunk, on torch's threads, takes the maximum of every block of `block` columns; the
    rest is a few blocks wide and runs on numpy, which wakes no threads (they cost more than they save on
    a busy machine). From the block maxima a lower bound on each row's k-th best score keeps only the
    blocks that can hold its top k (`_threshold_topk`); where the scores cluster so that the bound keeps
    many entries, the k blocks with the highest maxima are searched instead (`_best_blocks_topk`).
    """
    n_rows, n = scores.shape
    n_blocks = n // block
    if n_blocks <= 4 * k or scores.device.type != "cpu" or scores.dtype not in (torch.float32, torch.float64):
        return _stable_topk(scores, k)
    scores = scores.contiguous()
    maxima = scores[:, : n_blocks * block].unflatten(1, (n_blocks, block)).amax(dim=2).numpy()
    if np.isnan(maxima).any() or scores[:, n_blocks * block :].isnan().any():
        return _stable_topk(scores, k)  # NaN ranks first; the evaluator rejects it, so no need to be fast
    top = _threshold_topk(scores, maxima, k, block)
    return top if top is not None else _best_blocks_topk(scores, maxima, k, block)


def _threshold_topk(
    scores: torch.Tensor, maxima: np.ndarray, k: int, block: int, max_kept: int = 4
) -> torch.return_types.topk | None:
    """`block_topk` from the entries at or above a lower bound t on each row's k-th best score; None
    where more than `max_kept` * k entries per row lie above t (scores that rise together in a few blocks).

    Split the blocks into 4k disjoint groups (block j in group j mod 4k, so that neighbouring blocks
    fall into different groups): every group's maximum is an entry of the row, so the k-th best group
    maximum t has at least k entries at or above it. Every entry >= t lies in a block whose maximum is
    >= t; of the entries equal to t only the first k of a row can make its top k, and so only the first
    k blocks whose maximum is t. A stable sort of the kept entries by (row, -score), in column order
    within a row, then gives the tie rule directly.
    """
    n_rows, n = scores.shape
    n_blocks, whole = maxima.shape[1], maxima.shape[1] * block
    n_groups = 4 * k
    grouped = n_blocks // n_groups * n_groups
    groups = maxima[:, :grouped].reshape(n_rows, -1, n_groups).max(axis=1)
    rest = maxima[:, grouped:]
    np.maximum(groups[:, : rest.shape[1]], rest, out=groups[:, : rest.shape[1]])
    t = np.partition(groups, n_groups - k, axis=1)[:, n_groups - k, None]
    at_t = maxima == t
    crowded = np.flatnonzero(at_t.sum(axis=1) > k)
    if len(crowded):
        at_t[crowded] &= np.cumsum(at_t[crowded], axis=1) <= k
    rows, blocks = np.divmod(np.flatnonzero((maxima > t) | at_t), n_blocks)  # every row has one
    picked = _copy_blocks(scores, rows * n + blocks * block, block)
    above = picked > t[rows]
    if np.count_nonzero(above) > max_kept * k * n_rows:
        return None
    kept = np.flatnonzero(above | (picked == t[rows]))
    run, offset = np.divmod(kept, block)
    values, rows, columns = picked.ravel()[kept], rows[run], blocks[run] * block + offset  # by row, then column
    tied = ~above.ravel()[kept]
    tied_before = np.cumsum(tied) - tied
    tied_before -= tied_before[np.searchsorted(rows, np.arange(n_rows))][rows]
    keep = ~tied | (tied_before < k)
    tail = scores[:, whole:].numpy()  # the columns past the last block
    tail_rows, tail_columns = np.nonzero(tail >= t)
    values = np.concatenate([values[keep], tail[tail_rows, tail_columns]])
    rows = np.concatenate([rows[keep], tail_rows])
    columns = np.concatenate([columns[keep], tail_columns + whole])
    order = _by_row_then_descending(values, rows)  # stable: equal scores stay in column order
    first = np.searchsorted(rows, np.arange(n_rows), sorter=order)
    take = order[(first[:, None] + np.arange(k)).ravel()]
    return torch.return_types.topk(
        (torch.from_numpy(values[take].reshape(n_rows, k)), torch.from_numpy(columns[take].reshape(n_rows, k)))
    )


def _by_row_then_descending(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Stable order by row, then by value, highest first (no NaN)."""
    if values.dtype != np.float32:
        return np.lexsort((-values, rows))
    # One int64 key, 5x faster to sort: the row, then the float's bits as an integer in the floats' order,
    # negated. Adding 0 turns -0.0, which compares equal to 0.0, into 0.0.
    bits = (values + np.float32(0)).view(np.int32)
    ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return np.argsort((rows.astype(np.int64) << 32) - ascending, kind="stable")


def _copy_blocks(scores: torch.Tensor, starts: np.ndarray, block: int) -> np.ndarray:
    """[len(starts), block] copies of the runs of `block` floats starting at `starts` in the flat scores:
    one `index_select` over a strided view whose every row is such a run."""
    flat = scores.view(-1)
    runs = flat.as_strided((flat.numel() - block + 1, block), (1, 1))
    return runs.index_select(0, torch.from_numpy(starts)).numpy()


def _best_blocks_topk(scores: torch.Tensor, maxima: np.ndarray, k: int, block: int) -> torch.return_types.topk:
    """`block_topk` from the k blocks with the highest maxima, which hold the k best entries of a row."""
    n_rows, n = scores.shape
    n_blocks = maxima.shape[1]
    whole = n_blocks * block
    best = np.argpartition(maxima, n_blocks - k, axis=1)[:, n_blocks - k :]  # the k best blocks, unordered
    starts = np.arange(n_rows)[:, None] * n + best * block
    picked = _copy_blocks(scores, starts.ravel(), block).reshape(n_rows, k * block)
    candidates = np.concatenate([picked, scores[:, whole:].numpy()], axis=1)  # plus the columns past the last block
    width = candidates.shape[1]
    chosen = np.argpartition(candidates, width - k, axis=1)[:, width - k :]
    values = np.take_along_axis(candidates, chosen, axis=1)
    block_start = np.take_along_axis(best, np.minimum(chosen // block, k - 1), axis=1) * block
    columns = np.where(chosen < k * block, block_start + chosen % block, chosen - k * block + whole)
    order = np.argsort(values, axis=1)[:, ::-1]  # descending
    values, columns = np.take_along_axis(values, order, axis=1), np.take_along_axis(columns, order, axis=1)
    inner = ((values[:, 1:] == values[:, :-1]) & (values[:, 1:] > -np.inf)).any(1)  # ties within the top k
    if inner.any():
        rows = np.flatnonzero(inner)
        by_column = np.lexsort((columns[rows], -values[rows]), axis=1)
        values[rows] = np.take_along_axis(values[rows], by_column, axis=1)
        columns[rows] = np.take_along_axis(columns[rows], by_column, axis=1)
    # A k-th value shared by a candidate left out, or possibly by a block left out: the row's first such
    # columns fill the slots from the first of that value on.
    kth = values[:, -1:]
    across = (kth[:, 0] > -np.inf) & (
        ((candidates == kth).sum(1) > (values == kth).sum(1)) | ((maxima >= kth).sum(1) > k)
    )
    full = scores.numpy()
    for row in np.flatnonzero(across):
        first = int((values[row] > kth[row, 0]).sum())
        columns[row, first:] = np.flatnonzero(full[row] == kth[row, 0])[: k - first]
        values[row, first:] = kth[row, 0]
    return torch.return_types.topk((torch.from_numpy(values), torch.from_numpy(columns)))


def _stable_topk(scores: torch.Tensor, k: int) -> torch.return_types.topk:
    """`block_topk`'s rule on any device: `torch.topk`, then its ties put in column order; a row whose
    k-th value is shared by an entry left out is sorted whole (stable)."""
    top = torch.topk(scores, k, dim=1)
    columns, by_column = top.indices.sort(dim=1)
    values, by_value = top.values.gather(1, by_column).sort(dim=1, descending=True, stable=True)
    columns = columns.gather(1, by_value)
    kth = values[:, -1:]
    tied = (kth[:, 0] > -torch.inf) & ((scores == kth).sum(1) > (values == kth).sum(1))
    if tied.any():
        rows = tied.nonzero()[:, 0]
        exact = scores[rows].sort(dim=1, descending=True, stable=True)
        values[rows], columns[rows] = exact.values[:, :k], exact.indices[:, :k]
    return torch.return_types.topk((values, columns))


def _is_relevant(relevance: sp.csr_matrix, users: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Look up each (user, song) slot in the sorted CSR rows: one searchsorted, no dense matrix."""
    rows = relevance[users]
    n_songs = relevance.shape[1]
    row_of = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(rows.indptr))
    relevant_keys = row_of * n_songs + rows.indices
    keys = np.arange(len(users), dtype=np.int64)[:, None] * n_songs + ids
    where = np.searchsorted(relevant_keys, keys).clip(max=max(len(relevant_keys) - 1, 0))
    return relevant_keys[where] == keys if len(relevant_keys) else np.zeros(keys.shape, dtype=bool)


def _summarise(
    per_user: np.ndarray,
    keys: list[str],
    covered: dict[int, np.ndarray],
    users: np.ndarray,
    relevance: sp.csr_matrix,
    candidates: np.ndarray,
    n_bootstrap: int,
    seed: int,
    model: str,
    split: str,
    slice: str,
) -> SliceResult:
    if len(users) == 0:
        log.warning("%s: no user has a relevant song in %s/%s; metrics are NaN", model, split, slice)
    means = per_user.mean(axis=0) if len(users) else np.full(len(keys), np.nan)
    bounds = bootstrap_ci(per_user, n_bootstrap, seed)
    metrics = {key: float(value) for key, value in zip(keys, means)}
    n_candidates = max(len(candidates), 1)
    metrics.update({f"coverage@{k}": float(mask.sum() / n_candidates) for k, mask in covered.items()})
    return SliceResult(
        model=model,
        split=split,
        slice=slice,
        n_users=len(users),
        n_candidates=len(candidates),
        metrics=metrics,
        ci95={key: [float(lo), float(hi)] for key, (lo, hi) in zip(keys, bounds)},
        user_indices=users,
        n_relevant=np.diff(relevance.indptr)[users],
        per_user={key: per_user[:, i] for i, key in enumerate(keys)},
    )
