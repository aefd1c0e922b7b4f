"""Is the loader ever the bottleneck? Clips/s of the shard loader alone vs full training steps.

    uv run python benchmarks/train_throughput.py [--config wns.yaml] [--root DATASET] [--batches 20]

Both are measured in this run on the same data with the experiment's own model and data settings;
the goal is loader ≥ 3× the training step on CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from configs import find_config
from datamodules.music import MusicDataModule
from lightning_modules.simsong import SimSongModule
from prepare.default_dataset import dataset_root


def loader_clips_per_second(dm: MusicDataModule, batches: int) -> float:
    iterator = iter(dm.train_dataloader())
    next(iterator)  # worker start-up is not throughput
    start, clips = time.perf_counter(), 0
    while batches:
        try:
            clips += len(next(iterator)["song_id"])
            batches -= 1
        except StopIteration:  # one epoch of the demo world is a few batches: keep going
            iterator = iter(dm.train_dataloader())
    return clips / (time.perf_counter() - start)


def train_clips_per_second(model: SimSongModule, batch: dict, steps: int) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step() -> None:
        loss = model._losses(model._encode(batch["audio"], batch["lyrics"]), batch["song_index"], gather=False)
        optimizer.zero_grad()
        loss["loss"].backward()
        optimizer.step()

    step()  # first step pays for lazy initialisation and the lyric cache
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(batch["song_id"]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="wns.yaml")
    parser.add_argument("--root", default=None, help="dataset folder (default: the demo world)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    config = yaml.safe_load(Path(find_config(args.config)).read_text())
    data_args = {**config.get("data", {}), "root": str(dataset_root(args.root or config.get("data", {}).get("root")))}
    dm = MusicDataModule(**data_args)
    dm.setup("fit")
    model = SimSongModule(**config.get("model", {}), segment_seconds=dm.hparams.segment_seconds)
    model.use_similarity_of(dm.dataset)  # no Trainer here to run SimSongModule.setup, which does this
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    loader = loader_clips_per_second(dm, args.batches)
    batch = dm.on_before_batch_transfer(next(iter(dm.train_dataloader())), 0)
    train = train_clips_per_second(model, batch, args.steps)
    print(f"config {args.config}, batch {dm.hparams.batch_size}, workers {dm.hparams.num_workers}, "
          f"segment {dm.hparams.segment_seconds}s, torch threads {torch.get_num_threads()}")
    print(f"loader alone:        {loader:8.1f} clips/s")
    print(f"full training steps: {train:8.1f} clips/s")
    print(f"ratio loader / train: {loader / train:.2f}x  (goal >= 3)")


if __name__ == "__main__":
    main()
