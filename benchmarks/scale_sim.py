"""How a SimSong training step scales, measured on this machine, as a basis for planning a cluster run.

    uv run python benchmarks/scale_sim.py [--config wns.yaml] [--root DATASET] [--skip processes]

Four measurements, all in this run, with the experiment's own model and data settings:

1. batch: step time (forward, backward, optimiser) vs the per-device batch size;
2. loader: loader throughput (clips/s) vs number of workers and batch size, and the time to decode
   a 3-minute song whole vs only the two segments a training sample needs;
3. processes: Lightning DDP on 1 vs 2 CPU processes (gloo), same per-process batch: global
   throughput and parallel efficiency, i.e. what gathering negatives and averaging gradients cost;
4. global batch: the parts of a step that grow with the number of ranks W at a fixed per-device
   batch (open_clip-style: local queries against all W·B keys): the six contrastive terms
   (forward + backward), the WNS similarity lookup of the local rows ([B, W·B]) against the
   whole square ([W·B, W·B], what every rank would compute without the row slice), and the
   bytes each rank gathers and all-reduces per step.

The README's "Scaling out" section extrapolates these figures to 64 GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import yaml

from benchmarks.train_throughput import loader_clips_per_second, train_clips_per_second  # noqa: E402
from configs import find_config  # noqa: E402
from datamodules.music import MusicDataModule  # noqa: E402
from lightning_modules.losses import info_nce, soft_info_nce  # noqa: E402
from lightning_modules.simsong import SimSongModule  # noqa: E402
from prepare.default_dataset import dataset_root  # noqa: E402
from songdata.audio import SAMPLE_RATE, decode_audio_bytes, decode_segments, encode_flac  # noqa: E402

RESULT = "SCALE_SIM_RESULT "


def load_settings(config: str, root: str | None) -> tuple[dict, dict]:
    settings = yaml.safe_load(Path(find_config(config)).read_text())
    data = {**settings.get("data", {}), "root": str(dataset_root(root or settings.get("data", {}).get("root")))}
    return settings.get("model", {}), data


def build(model_args: dict, data_args: dict, **data_overrides) -> tuple[SimSongModule, MusicDataModule]:
    dm = MusicDataModule(**{**data_args, **data_overrides})
    dm.setup("fit")
    model = SimSongModule(**model_args, segment_seconds=dm.hparams.segment_seconds)
    model.use_similarity_of(dm.dataset)  # no Trainer here to run SimSongModule.setup, which does this
    return model, dm


# ---- 1. step time vs per-device batch (the steps of train_throughput.py) ----------------------
def batch_scaling(model_args: dict, data_args: dict, sizes: list[int], steps: int) -> list[dict]:
    model, dm = build(model_args, data_args, batch_size=max(sizes), num_workers=0)
    full = dm.on_before_batch_transfer(next(iter(dm.train_dataloader())), 0)
    rows = []
    for size in sizes:
        batch = {key: value[:size] for key, value in full.items() if key != "skipped"}
        seconds = size / train_clips_per_second(model, batch, steps)
        rows.append({"batch": size, "step_ms": 1000 * seconds, "clips_per_s": size / seconds})
    return rows


# ---- 2. loader throughput -----------------------------------------------------------------------
def segment_decode_speedup(song_seconds: float, segment_seconds: float, repeats: int = 5) -> tuple[float, float]:
    """Milliseconds to decode a whole FLAC song vs only its two training segments (what the loader does)."""
    rng = np.random.default_rng(0)
    song = np.sin(np.arange(int(song_seconds * SAMPLE_RATE)) * 0.05) * 0.3 + 0.05 * rng.standard_normal(
        int(song_seconds * SAMPLE_RATE))
    data, length = encode_flac(song.astype(np.float32)), int(segment_seconds * SAMPLE_RATE)
    picker = random.Random(0)

    def starts(frames: int) -> list[int]:
        return [picker.randint(0, frames - length) for _ in range(2)]

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * min(times)

    return best(lambda: decode_audio_bytes(data)), best(lambda: decode_segments(data, length, starts))


def loader_scaling(data_args: dict, workers: list[int], sizes: list[int], batches: int) -> list[dict]:
    rows = []
    for size in sizes:
        for count in workers:
            dm = MusicDataModule(**{**data_args, "batch_size": size, "num_workers": count})
            dm.setup("fit")
            rows.append({"batch": size, "workers": count, "clips_per_s": loader_clips_per_second(dm, batches)})
    return rows


# ---- 3. one vs two processes ---------------------------------------------------------------------
def ddp_child(args: argparse.Namespace) -> None:
    """One Lightning run of `--steps` training steps; rank 0 prints its step times."""
    import lightning as L

    torch.set_num_threads(args.threads)
    model_args, data_args = load_settings(args.config, args.root)
    model, dm = build(model_args, data_args, batch_size=args.batch, num_workers=args.workers)

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_start(self, *_args) -> None:
            self.started = time.perf_counter()

        def on_train_batch_end(self, *_args) -> None:
            self.times.append(time.perf_counter() - self.started)

    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu", devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
        max_steps=args.steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer],
    )
    trainer.fit(model, datamodule=dm)
    if trainer.global_rank == 0:
        steady = timer.times[2:]  # the first steps pay for start-up
        print(RESULT + json.dumps({"step_s": float(np.median(steady)), "steps": len(steady)}), flush=True)


def run_child(args: argparse.Namespace, devices: int, threads: int) -> float:
    command = [
        sys.executable, __file__, "--child", "--config", args.config, "--devices", str(devices),
        "--threads", str(threads), "--batch", str(args.process_batch), "--steps", str(args.process_steps),
        "--workers", "0",
    ] + (["--root", args.root] if args.root else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"DDP child ({devices} processes) failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])["step_s"]


def process_scaling(args: argparse.Namespace) -> list[dict]:
    rows = []
    for devices, threads in [(1, 1), (1, 2), (2, 1)]:
        seconds = run_child(args, devices, threads)
        clips = devices * args.process_batch / seconds
        rows.append({"processes": devices, "threads_each": threads, "batch_each": args.process_batch,
                     "step_ms": 1000 * seconds, "clips_per_s": clips})
    return rows


# ---- 4. the parts that grow with the number of ranks ---------------------------------------------
def random_similarity(n_songs: int, per_song: int, seed: int = 0) -> sp.csr_matrix:
    """A sparse catalog similarity like last.fm's (a few dozen similar songs per song), in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_songs), per_song)
    cols = rng.integers(0, n_songs, n_songs * per_song)
    return sp.csr_matrix((rng.random(n_songs * per_song).astype(np.float32), (rows, cols)), (n_songs, n_songs))


def head_seconds(local: int, world: int, dim: int, loss: str, repeats: int) -> float:
    """Forward + backward of the six contrastive terms of one rank (local queries vs global keys)."""
    generator = torch.Generator().manual_seed(0)
    keys = world * local
    def unit(n: int, grad: bool) -> torch.Tensor:
        x = torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=-1)
        return x.requires_grad_(grad)

    queries = [unit(local, True) for _ in range(3)]
    gathered = [unit(keys, True) for _ in range(3)]
    similarity = torch.rand(local, keys, generator=generator)
    pairs = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]  # a→a', a'→a, and the four audio↔lyrics terms

    def once() -> None:
        total = 0.0
        for q, k in pairs:
            if loss == "ns":
                total = total + info_nce(queries[q], gathered[k], 0.07)
            else:
                total = total + soft_info_nce(queries[q], gathered[k], similarity, 0.07, 0.5, offset=0)
        total.backward()

    once()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    return (time.perf_counter() - start) / repeats


def lookup_seconds(similarity: sp.csr_matrix, local: int, world: int, rows_only: bool, repeats: int) -> float:
    rng = np.random.default_rng(1)
    songs = rng.choice(similarity.shape[0], world * local, replace=False)
    rows = songs[:local] if rows_only else songs
    start = time.perf_counter()
    for _ in range(repeats):
        similarity[rows][:, songs].toarray()
    return (time.perf_counter() - start) / repeats


def global_batch_scaling(args: argparse.Namespace, parameters: int, dim: int) -> list[dict]:
    similarity = random_similarity(args.catalog_songs, 50)
    rows = []
    for world in args.worlds:
        keys = world * args.local_batch
        square = lookup_seconds(similarity, args.local_batch, world, False, 1) if keys <= 16384 else float("nan")
        rows.append({
            "ranks": world, "global_batch": keys,
            "ns_head_ms": 1000 * head_seconds(args.local_batch, world, dim, "ns", 2),
            "wns_head_ms": 1000 * head_seconds(args.local_batch, world, dim, "wns", 2),
            "lookup_rows_ms": 1000 * lookup_seconds(similarity, args.local_batch, world, True, 3),
            "lookup_square_ms": 1000 * square,
            "logits_mib": 6 * args.local_batch * keys * 4 / 2**20,  # six [B, W·B] float32 matrices kept for backward
            "gathered_mib": 3 * keys * dim * 4 / 2**20,  # two audio segments and the lyrics, float32
            "grad_allreduce_mib": parameters * 4 / 2**20,
        })
    return rows


def table(rows: list[dict]) -> str:
    columns = list(rows[0])
    def cell(value) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(cell(row[c]) for c in columns) for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="wns.yaml")
    parser.add_argument("--root", default=None, help="dataset folder (default: the demo world)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["batch", "loader", "processes", "global"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per batch size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader workers to compare")
    parser.add_argument("--loader-batches", type=int, default=12)
    parser.add_argument("--process-batch", type=int, default=16, help="per-process batch of the DDP comparison")
    parser.add_argument("--process-steps", type=int, default=10)
    parser.add_argument("--local-batch", type=int, default=256, help="per-device batch of a GPU run")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 8, 64], help="ranks W to size the head for")
    parser.add_argument("--catalog-songs", type=int, default=200_000, help="songs of the synthetic similarity")
    # internal: one Lightning run, launched by the processes measurement
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = args.workers[0]
        return ddp_child(args)

    model_args, data_args = load_settings(args.config, args.root)
    print(f"config {args.config}, segment {data_args.get('segment_seconds')} s, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} CPUs")
    if "batch" not in args.skip:
        rows = batch_scaling(model_args, data_args, args.batch_sizes, args.steps)
        print("\n## 1. step time vs per-device batch (one process)\n" + table(rows))
        ratio = rows[-1]["step_ms"] / rows[0]["step_ms"]
        print(f"batch ×{rows[-1]['batch'] // rows[0]['batch']} → step time ×{ratio:.2f}")
    if "loader" not in args.skip:
        rows = loader_scaling(data_args, args.workers, [16, 64], args.loader_batches)
        print("\n## 2. loader throughput vs workers\n" + table(rows))
        by = {(r["batch"], r["workers"]): r["clips_per_s"] for r in rows}
        hi, lo = max(args.workers), min(args.workers)
        print(f"{hi} workers vs {lo}: ×{by[16, hi] / by[16, lo]:.2f} (batch 16), ×{by[64, hi] / by[64, lo]:.2f} "
              "(batch 64: a demo epoch is a few batches, and each refills the shuffle buffer)")
        whole, segments = segment_decode_speedup(180.0, data_args.get("segment_seconds", 3.0))
        print(f"one 3-minute FLAC song: whole decode {whole:.1f} ms, its two segments alone {segments:.1f} ms "
              f"(×{whole / segments:.1f}; the loader decodes only the segments)")
    if "processes" not in args.skip:
        rows = process_scaling(args)
        print("\n## 3. one vs two CPU processes (Lightning DDP, gloo)\n" + table(rows))
        one, two = rows[0]["clips_per_s"], rows[2]["clips_per_s"]
        print(f"2 processes vs 1 (1 thread each): throughput ×{two / one:.2f}, parallel efficiency "
              f"{two / (2 * one):.0%}; step time ×{rows[2]['step_ms'] / rows[0]['step_ms']:.2f}")
    if "global" not in args.skip:
        model, _ = build(model_args, data_args, num_workers=0)
        parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows = global_batch_scaling(args, parameters, model.hparams.embed_dim)
        print(f"\n## 4. per-rank cost of the global batch (per-device batch {args.local_batch}, "
              f"{parameters / 1e6:.2f} M trainable parameters)\n" + table(rows))
        first, last = rows[0], rows[-1]
        print(f"{last['ranks']} ranks vs {first['ranks']}: WNS head ×{last['wns_head_ms'] / first['wns_head_ms']:.1f}, "
              f"row lookup ×{last['lookup_rows_ms'] / first['lookup_rows_ms']:.1f}")
        squares = [r for r in rows if np.isfinite(r["lookup_square_ms"])]
        if len(squares) > 1:
            print(f"square lookup / row lookup at {squares[-1]['ranks']} ranks: "
                  f"×{squares[-1]['lookup_square_ms'] / squares[-1]['lookup_rows_ms']:.1f}")


if __name__ == "__main__":
    main()
