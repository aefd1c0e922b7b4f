"""The full scale, end to end: 100k users × 1M songs (~20M plays) through `evaluate.py`.

    nice -n 10 uv run python benchmarks/full_scale.py [--work data/full-scale] [--users N --songs N --plays N]

1. build (once; kept in `<work>/dataset`): a synthetic dataset folder written by the project's own
   writers (`write_tables`, `split_interactions`: 80/10/10 per user, 10% cold-start songs); only a
   seeded sample of `--test-users` users keeps its test rows, so the evaluation ranks that many users
   against the whole catalog (its time is linear in them, its memory is not). Song popularity
   is long-tailed (Zipf, exponent `--zipf`, over a shuffled catalog, so the many never-played songs
   are spread over it), user activity log-normal; each play is one (user, song) event and repeated
   events become the interaction's weight (play count). Also `<work>/embeddings.npy`: random 128-d
   song embeddings standing in for a content model's.
2. evaluate: `evaluate.main` in a child process with popularity, ALS and an embedding content model
   (`NpyEmbeddingRecommender`, the embeddings above), no generative stage, hybrid or W&B. Each stage
   (load, fit per model, evaluation per model and slice, reports) is timed and its peak resident
   memory measured (the kernel's high-water mark, reset at every stage start); the whole process's
   peak is the largest of them. Goals: evaluation ≤ 2 GiB above the RSS it starts from, whole
   process ≤ 12 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recommenders.embedding import EmbeddingRecommender
from songdata.atomic_files import write_json_atomic
from songdata.dataset import SPLITS_DIR, write_parquet_atomic, write_tables
from songdata.splits import SplitConfig, split_interactions

EMBEDDING_DIM = 128
GiB = 2**30


class NpyEmbeddingRecommender(EmbeddingRecommender):
    """A content model whose [n_songs, d] song embeddings were computed elsewhere and saved with `np.save`.

    Args:
        path: The `.npy` file (row i = catalog song i).
    """

    name = "content-npy"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def song_embeddings_for(self, data) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


# ---- 1. build ---------------------------------------------------------------------------------
def synthetic_interactions(n_users: int, n_songs: int, n_plays: int, zipf: float, seed: int) -> pd.DataFrame:
    """(user, song) rows with play-count weights and first-play positions, from `n_plays` events."""
    rng = np.random.default_rng([seed, 0])
    activity = rng.lognormal(0.0, 1.0, n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * n_plays)).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_songs + 1) ** zipf
    song_of_rank = rng.permutation(n_songs)
    songs = song_of_rank[np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(per_user.sum()))]
    songs = np.minimum(songs, n_songs - 1)
    users = np.repeat(np.arange(n_users, dtype=np.int64), per_user)
    keys, first, counts = np.unique(users * n_songs + songs, return_index=True, return_counts=True)
    user, song = keys // n_songs, keys % n_songs
    user_start = np.concatenate([[0], np.cumsum(per_user)[:-1]])
    return pd.DataFrame({
        "user_id": pd.Categorical.from_codes(user, [f"u{i:06d}" for i in range(n_users)]),
        "song_id": pd.Categorical.from_codes(song, [f"s{i:07d}" for i in range(n_songs)]),
        "weight": counts.astype(np.float64),
        "position": (first - user_start[user]).astype(np.int64),
    })


def synthetic_catalog(n_songs: int) -> pd.DataFrame:
    ids = [f"s{i:07d}" for i in range(n_songs)]
    return pd.DataFrame({
        "song_id": ids, "artist": [f"artist {i // 10}" for i in range(n_songs)], "title": ids,
        "lyrics": "", "tags": [[] for _ in range(n_songs)], "duration_s": 180.0,
    })


def build(args: argparse.Namespace) -> None:
    root = Path(args.work) / "dataset"
    meter, clock = StageMeter(), time.perf_counter()
    with meter.stage("synthesise plays"):
        interactions = synthetic_interactions(args.users, args.songs, args.plays, args.zipf, args.seed)
        interactions = interactions.astype({"user_id": str, "song_id": str})  # as an importer writes them
    with meter.stage("write_tables (validate + write)"):
        write_tables(root, synthetic_catalog(args.songs), interactions)
    with meter.stage("split_interactions"):
        splits, meta = split_interactions(interactions, SplitConfig(seed=args.seed))
    with meter.stage("write splits + embeddings"):
        if args.test_users:
            test = splits["test"]
            users = np.random.default_rng([args.seed, 2]).choice(test["user_id"].unique(), args.test_users,
                                                                  replace=False)
            splits["test"] = test[test["user_id"].isin(set(users))].reset_index(drop=True)
            meta["counts"]["test"] = len(splits["test"])
        for name, split in splits.items():
            write_parquet_atomic(split, root / SPLITS_DIR / f"{name}.parquet")
        write_json_atomic(root / SPLITS_DIR / "meta.json", meta, indent=2, sort_keys=True)
        rng = np.random.default_rng([args.seed, 1])
        np.save(Path(args.work) / "embeddings.npy", rng.standard_normal((args.songs, EMBEDDING_DIM), dtype=np.float32))
    meter._reset()
    print("STAGES " + json.dumps({"seconds": time.perf_counter() - clock, "rows": len(interactions),
                                  "plays": float(interactions["weight"].sum()), "splits": meta["counts"],
                                  "cold_songs": len(meta["cold_song_ids"]), "peak_rss": meter.process_peak,
                                  "stages": meter.stages}))


# ---- 2. evaluate, measured per stage -----------------------------------------------------------
def rss_bytes(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


class StageMeter:
    """Seconds and peak RSS of named stages; the high-water mark is reset at each stage start.

    The peak since the last reset is read before every reset, so the whole process's peak (between
    stages included) is the largest reading.
    """

    def __init__(self) -> None:
        self.stages: list[dict] = []
        self.process_peak = 0

    def _reset(self) -> None:
        self.process_peak = max(self.process_peak, rss_bytes("VmHWM"))
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")

    @contextmanager
    def stage(self, name: str):
        self._reset()
        start_rss, clock = rss_bytes(), time.perf_counter()
        yield
        peak = rss_bytes("VmHWM")
        self.process_peak = max(self.process_peak, peak)
        self.stages.append({"stage": name, "seconds": time.perf_counter() - clock, "start_rss": start_rss,
                            "peak_rss": peak})

    def wrap(self, module, attribute: str, name_of) -> None:
        """Replace `module.attribute` by a version that runs as the stage `name_of(*args, **kwargs)`."""
        original = getattr(module, attribute)

        @wraps(original)
        def measured(*args, **kwargs):
            with self.stage(name_of(*args, **kwargs)):
                return original(*args, **kwargs)

        setattr(module, attribute, measured)


def eval_config(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    return {
        "seed": args.seed, "ks": [5, 10, 20, 50], "n_bootstrap": 1000, "split": "test", "wandb": False,
        "run_dirs": [], "hybrid": {"enabled": False}, "generative": {"enabled": False}, "show_progress": False,
        "baselines": [
            {"class_path": "recommenders.PopularityRecommender"},
            {"class_path": "recommenders.ALSRecommender",
             "init_args": {"factors": args.als_factors, "iterations": args.als_iterations, "seed": args.seed}},
            {"class_path": "benchmarks.full_scale.NpyEmbeddingRecommender",
             "init_args": {"path": str(work / "embeddings.npy")}},
        ],
    }


def evaluate_child(args: argparse.Namespace) -> None:
    import evaluate
    from evaluation import leaderboard
    from songdata import InteractionData, song_dataset

    meter = StageMeter()
    meter.wrap(song_dataset, "load_tables", lambda *a, **k: "load tables (read + validate)")
    meter.wrap(InteractionData, "from_tables", lambda *a, **k: "index interactions (CSR, histories)")
    meter.wrap(leaderboard, "_timed_fit", lambda model, *a, **k: f"fit {model.name}")
    meter.wrap(leaderboard, "evaluate_scorer",
               lambda *a, **k: f"evaluate {k['model']} {a[2] if len(a) > 2 else k['split']}/{a[3] if len(a) > 3 else k['slice']}")
    meter.wrap(leaderboard, "write_reports", lambda *a, **k: "write reports")
    config = Path(args.work) / "eval.yaml"
    config.write_text(yaml.safe_dump(eval_config(args)))
    clock = time.perf_counter()
    evaluate.main(["--config", str(config), "--data.root", str(Path(args.work) / "dataset"),
                   "--out", str(Path(args.work) / "report")])
    meter._reset()
    print("STAGES " + json.dumps({"stages": meter.stages, "process_peak": meter.process_peak,
                                  "seconds": time.perf_counter() - clock}))


def run_child(args: argparse.Namespace, mode: str) -> dict:
    command = [sys.executable, __file__, f"--{mode}", *sys.argv[1:]]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"error: the {mode} child failed (status {done.returncode}); its log is above")
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last.removeprefix("STAGES "))


def print_stages(stages: list[dict]) -> None:
    print(f"{'stage':<40} {'min':>7} {'peak GiB':>9} {'+ above start':>14}")
    for stage in stages:
        above = (stage["peak_rss"] - stage["start_rss"]) / GiB
        print(f"{stage['stage']:<40} {stage['seconds'] / 60:7.2f} {stage['peak_rss'] / GiB:9.2f} {above:14.2f}")


def print_report(args: argparse.Namespace, built: dict | None, evaluated: dict) -> None:
    ranked = f"{args.test_users} ranked" if args.test_users else "all ranked"
    print(f"\n{args.users} users ({ranked}) x {args.songs} songs, {args.plays} play events")
    if built:
        print(f"build: {built['rows']} interactions ({built['plays']:.0f} plays), splits {built['splits']}, "
              f"{built['cold_songs']} cold songs; {built['seconds'] / 60:.1f} min, peak RSS "
              f"{built['peak_rss'] / GiB:.2f} GiB")
        print_stages(built["stages"])
    print("evaluate.py:")
    print_stages(evaluated["stages"])
    evaluations = [s for s in evaluated["stages"] if s["stage"].startswith("evaluate ")]
    eval_peak = max((s["peak_rss"] - s["start_rss"] for s in evaluations), default=0) / GiB
    print(f"evaluate.py: {evaluated['seconds'] / 60:.1f} min; whole-process peak RSS "
          f"{evaluated['process_peak'] / GiB:.2f} GiB (goal <= 12); evaluation peak above its start "
          f"{eval_peak:.2f} GiB (goal <= 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="data/full-scale", help="dataset, embeddings and report go here")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--songs", type=int, default=1_000_000)
    parser.add_argument("--plays", type=int, default=20_000_000, help="listening events (before merging repeats)")
    parser.add_argument("--test-users", type=int, default=10_000,
                        help="users whose test rows are kept (the users ranked; time is linear in them); 0 = all")
    parser.add_argument("--zipf", type=float, default=0.9, help="exponent of song popularity by rank")
    parser.add_argument("--als-factors", type=int, default=64)
    parser.add_argument("--als-iterations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true", help="build the dataset even if it exists")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args)
    if args.evaluate:
        return evaluate_child(args)
    built = None
    if args.rebuild or not (Path(args.work) / "embeddings.npy").exists():
        built = run_child(args, "build")
    print_report(args, built, run_child(args, "evaluate"))


if __name__ == "__main__":
    main()
