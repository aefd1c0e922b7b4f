"""The real-song check (see evaluation/real_songs.py): held-out a2l / l2a retrieval on karaoke melodies.

    uv run prepare_data.py midi --input ../shared/datasets/lmd-lyrics-melody --out data/lmd \
        --max_seconds 20 --clip_lyrics true --renderer synth
    uv run train.py --config configs/lmd.yaml
    uv run python benchmarks/real_song_check.py --data data/lmd --midi ../shared/datasets/lmd-lyrics-melody \
        --ckpt runs/simsong-lmd/checkpoints/last.ckpt

Prints chance, the counting baseline and (with --ckpt) the model on the validation songs, as a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from evaluation.real_songs import chance_figures, counting_baseline, model_figures, split_song_indices
from lightning_modules.song_embeddings import SongEmbedder, embed_lyrics
from recommenders.content import load_module
from songdata import SongDataset

COLUMNS = ("a2l_R@1", "a2l_R@5", "a2l_R@10", "a2l_medr", "l2a_R@1", "l2a_R@5", "l2a_R@10", "l2a_medr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from `prepare_data.py midi`")
    parser.add_argument("--midi", type=Path, required=True, help="the MIDI folder it was imported from")
    parser.add_argument("--ckpt", type=Path, help="a SimSong checkpoint trained on --data")
    parser.add_argument("--max_seconds", type=float, default=20.0, help="the import's --max_seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    dataset = SongDataset(args.data, require_splits=False)
    catalog = dataset.catalog
    splits = split_song_indices(dataset)
    paths = {p.stem: p for p in args.midi.rglob("*.mid")}
    rows = {"chance": chance_figures(len(splits["val"]))}
    rows["counting baseline"] = counting_baseline(catalog, paths, splits["train"], splits["val"], args.max_seconds)
    if args.ckpt:
        module = load_module(args.ckpt)
        with torch.inference_mode():
            audio = SongEmbedder(fuse="audio").embed(module, dataset)[splits["val"]]
            lyrics = embed_lyrics(module, catalog.iloc[splits["val"]])
        rows[f"SimSong ({args.ckpt})"] = model_figures(audio, lyrics)
    print(f"{len(splits['val'])} validation songs (held out from training) of {len(catalog)}\n")
    print("| model | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS))
    for name, figures in rows.items():
        print(f"| {name} | " + " | ".join(f"{figures[c]:.3f}" if "R@" in c else f"{figures[c]:.1f}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
