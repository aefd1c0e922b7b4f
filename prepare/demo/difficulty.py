"""`difficulty.json`: reference figures that say how hard a built demo world is, on its validation gallery.

- chance a2l R@10: a random ranking of the gallery;
- style-oracle a2l R@10: songs of the query's style first, random within (what a model that
  knows only the style reaches; the hidden style comes from `song_features.parquet`);
- nearest-neighbour style accuracy on mean log-mel spectra (how audibly styles differ);
- interaction statistics of the world beside those of the real sets found (`calibration.py`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from prepare.demo.calibration import interaction_statistics, real_set_statistics
from songdata import SongDataset
from songdata.atomic_files import write_json_atomic
from songdata.log_mel import mean_log_mel

log = logging.getLogger(__name__)

DIFFICULTY = "difficulty.json"
K = 10


def default_datasets_dir() -> Path:
    """`$SIMSONG_DATASETS`, else the nearest `shared/datasets` above the repository (`../shared/datasets` in a checkout)."""
    configured = os.environ.get("SIMSONG_DATASETS")
    if configured:
        return Path(configured)
    above = Path(__file__).resolve().parents[3:]
    return next((p / "shared" / "datasets" for p in above if (p / "shared" / "datasets").is_dir()), above[0] / "shared" / "datasets")


def style_oracle_recall(styles: np.ndarray, k: int = K) -> float:
    """Expected a2l R@k of ranking the query's style first, at random within: min(1, k / songs of that style)."""
    _, inverse, counts = np.unique(styles, return_inverse=True, return_counts=True)
    return float(np.minimum(1.0, k / counts[inverse]).mean())


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy of `labels` on standardised `features` (Euclidean)."""
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    distance = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    return float((labels[distance.argmin(1)] == labels).mean())


def gallery_figures(root: Path, songs: pd.DataFrame, gallery: list[int]) -> dict[str, float]:
    """Chance and style-oracle a2l R@10 and mean-log-mel style accuracy on the songs of the `gallery` (catalog rows)."""
    styles = songs["style"].to_numpy()
    mel = dict(SongDataset(root, require_splits=False).iter_songs(gallery))
    read = [i for i in gallery if i in mel]
    accuracy = nearest_neighbour_accuracy(np.stack([mean_log_mel(mel[i]) for i in read]), styles[read]) if len(read) > 1 else None
    return {
        "gallery_songs": len(gallery),
        "chance_a2l_R@10": round(min(1.0, K / max(len(gallery), 1)), 4),
        "style_oracle_a2l_R@10": round(style_oracle_recall(styles[gallery]), 4),
        "nn_style_accuracy_mean_log_mel": None if accuracy is None else round(accuracy, 4),
        "style_share_of_largest": round(float(pd.Series(styles[gallery]).value_counts(normalize=True).iloc[0]), 4),
    }


def write_difficulty(root: Path, songs: pd.DataFrame, interactions: pd.DataFrame, gallery: list[int]) -> dict:
    """Write `root/difficulty.json` (validation-gallery figures and calibration statistics) and return it."""
    datasets = default_datasets_dir()
    figures = {
        "validation": gallery_figures(root, songs, gallery),
        "calibration": {"demo": interaction_statistics(interactions), **real_set_statistics(datasets)},
        "real_sets_from": str(datasets),
    }
    write_json_atomic(Path(root) / DIFFICULTY, figures, indent=2, sort_keys=True)
    log.info("%s: %s", Path(root) / DIFFICULTY, figures["validation"])
    return figures
