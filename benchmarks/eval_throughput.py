"""Throughput and memory of our full-catalog evaluator, against implicit's `ranking_metrics_at_k`.

1. Throughput: fit implicit ALS on synthetic interactions, then evaluate the same factors with
   both evaluators (same users, same K, same filtered training songs) and print users × songs
   ranked per second and the ratio ours / implicit (goal >= 1.2, and >= 1 with the full metric set
   and CIs). The metrics must agree. Then where our full run's time goes (scoring matmul, masking +
   top-k + metrics, bootstrap) and what the same score products cost on numpy's BLAS, the one
   implicit uses.
2. Memory: a synthetic `--mem-users` × `--mem-songs` world with random factors, evaluated in
   chunks. Peak resident memory (RSS high-water mark, which counts torch's allocations that
   tracemalloc cannot see) is measured above the RSS before the call (goal <= 2 GiB). Users to
   rank are sampled (`--mem-sample-users`, 0 = all) and the time for all users is extrapolated;
   memory does not grow with the users ranked, only the per-user metric arrays do (listed).

The first lines printed say what it ran on: CPU model, cores, load average, the BLAS behind torch
and behind numpy (which implicit uses), their thread counts, and whether torch's large allocations
use transparent huge pages. This script asks for them before importing torch, as `evaluation/__init__.py`
does for evaluate.py; numpy asks by default, and without them a fresh chunk of scores costs torch up
to twice as much to fault in.

Run: uv run python benchmarks/eval_throughput.py [--help]
"""

from __future__ import annotations

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # before torch is imported; see the docstring

import argparse
import platform
import re
import threading
import time
from pathlib import Path

import implicit.cpu.als
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from implicit.evaluation import ranking_metrics_at_k
from threadpoolctl import threadpool_info, threadpool_limits

from evaluation.evaluator import DEFAULT_KS, default_chunk_size, evaluate_scorer, score_budget_bytes  # noqa: E402
from evaluation.metrics import bootstrap_ci, metric_keys  # noqa: E402
from recommenders import scoring  # noqa: E402
from recommenders.scoring import dot_scores  # noqa: E402
from songdata.interactions import InteractionData  # noqa: E402


def synthetic_data(
    n_users: int,
    n_songs: int,
    train_per_user: int,
    test_per_user: int,
    test_users: np.ndarray | None,
    seed: int,
    cold_fraction: float = 0.0,
) -> InteractionData:
    """Random binary interactions; test rows only for `test_users` (all when None), none also in train.

    A `cold_fraction` of songs is cold: kept out of train, and out of the warm slice's ranking.
    """
    rng = np.random.default_rng(seed)
    is_cold = np.zeros(n_songs, dtype=bool)
    is_cold[rng.choice(n_songs, size=int(cold_fraction * n_songs), replace=False)] = True

    def random_csr(users: np.ndarray, per_user: int) -> sp.csr_matrix:
        rows = np.repeat(users, per_user)
        cols = rng.integers(0, n_songs, size=len(rows))
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_songs))
        m.data[:] = 1.0  # duplicates were summed
        return m

    train = sp.csr_matrix(random_csr(np.arange(n_users), train_per_user) @ sp.diags((~is_cold).astype(np.float32)))
    train.eliminate_zeros()
    test = random_csr(np.arange(n_users) if test_users is None else test_users, test_per_user)
    test = sp.csr_matrix(test - test.multiply(train.astype(bool)))
    test.eliminate_zeros()
    return InteractionData(
        catalog=pd.DataFrame({"song_id": np.arange(n_songs)}),
        user_ids=[str(u) for u in range(n_users)],
        train=train,
        val=sp.csr_matrix((n_users, n_songs), dtype=np.float32),
        test=test,
        histories=np.split(train.indices.astype(np.int64), train.indptr[1:-1]),
        cold_songs=np.flatnonzero(is_cold),
    )


def machine_report() -> list[str]:
    """What the figures depend on: CPU, load, BLAS libraries and their threads, huge pages."""
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = names[0] if names else cpu
    torch_blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    pools = ", ".join(
        f"{pool['internal_api']} {pool.get('version') or ''} ({pool['num_threads']} threads, {Path(pool['filepath']).name})"
        for pool in threadpool_info()
    )
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return [
        f"[machine] {cpu}; {os.cpu_count()} logical CPUs, {len(os.sched_getaffinity(0))} usable; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"[machine] torch {torch.__version__}: BLAS {torch_blas.group(1) if torch_blas else 'unknown'}, "
        f"{torch.get_num_threads()} intra-op threads; huge pages for torch tensors: "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '')!r}, kernel "
        f"{thp.read_text().strip() if thp.exists() else 'unknown'}; score chunks of {score_budget_bytes() >> 20} MiB; "
        f"scores by {'oneDNN' if scoring.prefer_onednn() else 'torch.mm'}; "
        f"fresh tensors on huge pages: {'yes' if scoring.fresh_tensors_on_huge_pages() else 'no'}",
        f"[machine] thread pools loaded (numpy/scipy/implicit): {pools}",
    ]


def _best_times(runs: list, repeats: int) -> tuple[list[float], list]:
    """Shortest wall time of each run over `repeats` rounds, and its last result.

    The runs take turns within a round, so a busy spell on a shared machine hits them alike.
    """
    times, results = [[] for _ in runs], [None] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            results[i] = run()
            times[i].append(time.perf_counter() - start)
    return [min(t) for t in times], results


def throughput(args: argparse.Namespace) -> None:
    data = synthetic_data(args.users, args.songs, args.train_per_user, args.test_per_user, None, args.seed)
    with threadpool_limits(1, "blas"):
        model = implicit.cpu.als.AlternatingLeastSquares(
            factors=args.factors, iterations=args.als_iterations, random_state=args.seed, num_threads=args.threads
        )
        model.fit(data.train, show_progress=False)
    users, items = torch.from_numpy(model.user_factors), torch.from_numpy(model.item_factors)
    n_eval = int((np.diff(data.test.indptr) > 0).sum())
    cells, k = n_eval * args.songs, args.k
    print(
        f"[throughput] {args.users} users ({n_eval} with test songs) x {args.songs} songs, {args.factors} ALS factors, "
        f"K={k}; implicit threads: {args.threads or os.cpu_count()}, torch threads: {torch.get_num_threads()}; "
        f"best of {args.repeats} rounds, the three runs taking turns"
    )

    def implicit_run() -> dict:
        with threadpool_limits(1, "blas"):
            return ranking_metrics_at_k(model, data.train, data.test, K=k, show_progress=False)

    def scores_into(u: np.ndarray, out: torch.Tensor) -> torch.Tensor:  # as ALSRecommender.score does
        return dot_scores(users[u], items, out)

    def ours_run(ks, n_bootstrap):
        return lambda: evaluate_scorer(
            scores_into, data, "test", ks=ks, n_bootstrap=n_bootstrap, show_progress=False
        )

    (t_implicit, t_ours, t_full), (theirs, ours, _) = _best_times(
        [implicit_run, ours_run([k], 0), ours_run(DEFAULT_KS, 1000)], args.repeats
    )

    pooled = (ours.per_user[f"precision@{k}"] * k).sum() / np.minimum(ours.n_relevant, k).sum()
    diff = max(
        abs(pooled - theirs["precision"]),
        abs(ours.metrics[f"map@{k}"] - theirs["map"]),
        abs(ours.metrics[f"ndcg@{k}"] - theirs["ndcg"]),
    )
    full = f"ks={list(DEFAULT_KS)}, {len(metric_keys(DEFAULT_KS))} metrics + coverage, 1000-resample CIs"
    print(f"  implicit ranking_metrics_at_k(K={k}):     {t_implicit:6.2f} s  {cells / t_implicit:.3e} user-songs/s")
    print(f"  ours evaluate_scorer(ks=[{k}], no CIs):    {t_ours:6.2f} s  {cells / t_ours:.3e} user-songs/s")
    print(f"  ours evaluate_scorer({full}): {t_full:.2f} s  {cells / t_full:.3e} user-songs/s")
    print(
        f"  ratio ours / implicit, same K and metrics: {t_implicit / t_ours:.2f}x  (goal >= 1.2; full run: "
        f"{t_implicit / t_full:.2f}x, goal >= 1)"
    )
    print(f"  max |ours - implicit| over precision (pooled), map, ndcg @{k}: {diff:.1e}")
    breakdown(users, items, data)


def breakdown(users: torch.Tensor, items: torch.Tensor, data: InteractionData) -> None:
    """Where our full run's time goes, and the same score products on numpy's BLAS (the one implicit uses):
    on a CPU where that BLAS is much faster than torch's, the scoring matmul is where a run loses."""
    spent = [0.0]

    def timed_scorer(u: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        scores = dot_scores(users[u], items, out)
        spent[0] += time.perf_counter() - start
        return scores

    start = time.perf_counter()
    result = evaluate_scorer(timed_scorer, data, "test", ks=DEFAULT_KS, n_bootstrap=0, show_progress=False)
    ranking = time.perf_counter() - start - spent[0]
    values = np.stack([result.per_user[key] for key in metric_keys(DEFAULT_KS)], axis=1)
    start = time.perf_counter()
    bootstrap_ci(values, 1000)
    resampling = time.perf_counter() - start
    chunk = default_chunk_size(items.shape[0])
    user_np, item_np = users.numpy()[result.user_indices], items.numpy()
    start = time.perf_counter()
    for first in range(0, len(user_np), chunk):
        user_np[first : first + chunk] @ item_np.T
    numpy_scoring = time.perf_counter() - start
    total = spent[0] + ranking + resampling
    print(
        f"[where the time goes] ours, full run (one round): scoring {spent[0]:.2f} s ({spent[0] / total:.0%}), "
        f"masking + top-{max(DEFAULT_KS)} + metrics {ranking:.2f} s ({ranking / total:.0%}), 1000-resample CIs "
        f"{resampling:.2f} s ({resampling / total:.0%}); the same score products on numpy's BLAS: {numpy_scoring:.2f} s "
        f"({numpy_scoring / spent[0]:.2f}x ours)"
    )


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


class PeakRSS:
    """Resident-set high-water mark over a block: the kernel's VmHWM reset via clear_refs, or polling."""

    def __enter__(self) -> PeakRSS:
        self.before = _rss_bytes("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.method, self._stop = "VmHWM after clear_refs", None
        except OSError:
            self.method, self._peak, self._stop = "polling VmRSS every 2 ms", self.before, threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, _rss_bytes("VmRSS"))

    def __exit__(self, *exc) -> None:
        if self._stop is None:
            self.peak = _rss_bytes("VmHWM")
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._peak, _rss_bytes("VmRSS"))
        self.delta = self.peak - self.before


def memory(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    n_rank = args.mem_users if args.mem_sample_users <= 0 else min(args.mem_sample_users, args.mem_users)
    sample = np.sort(rng.choice(args.mem_users, size=n_rank, replace=False))
    data = synthetic_data(
        args.mem_users, args.mem_songs, args.mem_train_per_user, args.test_per_user, sample, args.seed,
        args.mem_cold_fraction,
    )
    users = torch.from_numpy(rng.standard_normal((args.mem_users, args.factors), dtype=np.float32))
    items = torch.from_numpy(rng.standard_normal((args.mem_songs, args.factors), dtype=np.float32))
    matrices = (data.train, data.test)
    inputs = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in matrices) + users.nbytes + items.nbytes
    print(
        f"[memory] {args.mem_users} users x {args.mem_songs} songs ({len(data.cold_songs)} cold), "
        f"{args.factors} random factors, train {data.train.nnz} / test {data.test.nnz} interactions "
        f"(inputs ~{inputs / 2**30:.2f} GiB, not counted)"
    )
    n_eval = int((np.diff(data.test.indptr) > 0).sum())
    with PeakRSS() as peak:
        start = time.perf_counter()
        result = evaluate_scorer(
            lambda u, out: dot_scores(users[u], items, out), data, "test", ks=DEFAULT_KS,
            chunk_size=args.mem_chunk, n_bootstrap=1000,
        )
        seconds = time.perf_counter() - start
    per_user_bytes = len(metric_keys(DEFAULT_KS)) * 8 * (args.mem_users - n_eval)
    print(
        f"  warm slice: {result.n_users} sampled users x {args.mem_songs} songs scored ({result.n_candidates} ranked) "
        f"in {seconds:.1f} s = {result.n_users * args.mem_songs / seconds:.3e} user-songs/s"
    )
    if n_eval < args.mem_users:
        minutes = seconds * args.mem_users / n_eval / 60
        print(f"  extrapolated to all {args.mem_users} users: {minutes:.1f} min (time is linear in the users ranked)")
    print(
        f"  peak RSS above the pre-call RSS ({peak.method}): {peak.delta / 2**30:.3f} GiB, "
        f"+{per_user_bytes / 2**30:.3f} GiB of per-user metric arrays for the users not ranked (goal <= 2 GiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20_000, help="throughput: users")
    parser.add_argument("--songs", type=int, default=50_000, help="throughput: songs")
    parser.add_argument("--train-per-user", type=int, default=40)
    parser.add_argument("--test-per-user", type=int, default=10)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--als-iterations", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=0,
        help="threads of both sides: implicit's and torch's (0 = all cores); 1 is the steadiest on a shared machine",
    )
    parser.add_argument("--repeats", type=int, default=3, help="throughput: best of this many rounds")
    parser.add_argument("--mem-users", type=int, default=100_000)
    parser.add_argument("--mem-songs", type=int, default=1_000_000)
    parser.add_argument("--mem-train-per-user", type=int, default=20)
    parser.add_argument("--mem-cold-fraction", type=float, default=0.1, help="share of cold songs (not ranked in warm)")
    parser.add_argument("--mem-sample-users", type=int, default=2_000, help="users ranked in the memory run (0 = all)")
    parser.add_argument(
        "--mem-chunk", type=int, default=None, help="users per chunk (default: the evaluator's, `score_budget_bytes()` of scores)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", choices=["throughput", "memory"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count())
    if args.threads:
        threadpool_limits(args.threads)  # numpy's and scipy's BLAS too (ours: bootstrap; implicit: limited to 1 anyway)
    for line in machine_report():
        print(line)
    if args.skip != "throughput":
        throughput(args)
    if args.skip != "memory":
        memory(args)


if __name__ == "__main__":
    main()
