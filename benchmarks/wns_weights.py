"""What the shipped WNS weights do on a dataset: mean weight per decile of similarity, at two batch sizes.

    uv run python -m benchmarks.wns_weights                          # configs/wns.yaml on the demo world
    uv run python -m benchmarks.wns_weights --config configs/wns.yaml --root data/my_set --batches 32 256

Reads the model's Soft-InfoNCE settings (alpha, weight_temperature, min_weight, similarity source) from the
config (the module's defaults for what it leaves out), resolves the similarity as training does, draws seeded
batches of training songs and pools the weights of every (query, negative) pair. The target of issue 11:
the top decile of similarity gets a mean weight <= 0.6 while all negatives average 1 (plus what the floor adds).
"""

from __future__ import annotations

import argparse
import inspect
import logging
from pathlib import Path

import numpy as np
import torch
import yaml

from lightning_modules.losses import negative_weights, negatives_mask
from lightning_modules.simsong import SimSongModule
from prepare.default_dataset import dataset_root
from songdata import SongDataset
from songdata.similarity import song_similarity

WNS_KEYS = ("alpha", "weight_temperature", "min_weight", "similarity", "similarity_top_k")


def wns_settings(config: Path) -> dict:
    """The config's Soft-InfoNCE settings over SimSongModule's defaults."""
    defaults = {k: p.default for k, p in inspect.signature(SimSongModule.__init__).parameters.items() if k in WNS_KEYS}
    model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
    return {**defaults, **{k: v for k, v in model.items() if k in WNS_KEYS}}


def pooled_weights(lookup, songs: np.ndarray, batch: int, n_batches: int, settings: dict, seed: int):
    """(similarity, weight) of every query–negative pair over ``n_batches`` seeded batches."""
    rng = np.random.default_rng(seed)
    sims, weights = [], []
    for _ in range(n_batches):
        index = torch.from_numpy(rng.choice(songs, size=batch, replace=batch > len(songs)))
        same_song = index[:, None] == index[None, :]
        similarity = lookup(index, index).double()
        w = negative_weights(similarity, settings["alpha"], settings["weight_temperature"], settings["min_weight"],
                             same_song=same_song)
        negative = negatives_mask(batch, batch, same_song=same_song)
        sims.append(similarity[negative].numpy())
        weights.append(w[negative].numpy())
    return np.concatenate(sims), np.concatenate(weights)


def decile_table(similarity: np.ndarray, weights: np.ndarray, seed: int) -> list[float]:
    """Mean weight per decile of similarity, lowest first; ties (many zeros) broken at random."""
    tie_break = np.random.default_rng(seed).random(len(similarity))
    order = np.lexsort((tie_break, similarity))
    return [float(weights[part].mean()) for part in np.array_split(order, 10)]


def main(argv: list[str] | None = None) -> dict[int, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/wns.yaml"))
    parser.add_argument("--root", type=Path, default=None, help="dataset folder (default: the demo world)")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--pairs", type=int, default=200_000, help="query-negative pairs pooled per batch size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = wns_settings(args.config)
    dataset = SongDataset(dataset_root(args.root))
    similarity = song_similarity(dataset, settings["similarity"], settings["similarity_top_k"])
    if similarity is None:
        raise SystemExit("wns_weights: similarity 'lyrics' needs a trained lyrics encoder; pick a table source")
    songs = dataset.shard_songs("train")
    print(f"{dataset.root}: {len(songs)} training songs; similarity: {similarity.source}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    results = {}
    for batch in args.batches:
        n_batches = max(1, args.pairs // (batch * (batch - 1)))
        sims, weights = pooled_weights(similarity.lookup, songs, batch, n_batches, settings, args.seed)
        deciles = decile_table(sims, weights, args.seed)
        results[batch] = {
            "mean": float(weights.mean()), "min": float(weights.min()),
            "at_floor": float((weights <= settings["min_weight"] * (1 + 1e-6)).mean()),
            "share_similar": float((sims > 0).mean()), "deciles": deciles,
        }
        verdict = "meets" if deciles[-1] <= 0.6 else "MISSES"
        print(f"batch {batch} ({n_batches} batches, {len(weights)} negatives): mean {weights.mean():.3f}, "
              f"min {weights.min():.3f}, at floor {results[batch]['at_floor']:.1%}, "
              f"similarity > 0 for {results[batch]['share_similar']:.1%}")
        print("  mean weight per similarity decile (low -> high): " + " ".join(f"{d:.2f}" for d in deciles))
        print(f"  top decile {deciles[-1]:.3f} ({verdict} the target <= 0.6)")
    return results


if __name__ == "__main__":
    main()
