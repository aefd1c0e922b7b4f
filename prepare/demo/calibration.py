"""Interaction statistics that say how a listening data set is shaped, measured alike on real sets and the demo world.

Popularity is counted in plays (the `weight` column summed per song); histories in distinct songs per user.
The demo world's defaults are set so that its figures land near those of HetRec last.fm-2k and yes.com
(`real_set_statistics`); `difficulty.json` holds both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from prepare.importers.hetrec import PLAYS, read_dat
from prepare.importers.yes import read_playlists, read_songs
from prepare.report import PrepareReport

log = logging.getLogger(__name__)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, towards 1 when one holds everything."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, len(x) + 1)
    return float((2 * ranks - len(x) - 1) @ x / (len(x) * x.sum()))


def interaction_statistics(interactions: pd.DataFrame) -> dict[str, float]:
    """Item-popularity Gini (plays per song), median and 90th percentile of history length, share of plays on the top 1% of songs."""
    plays = interactions.groupby("song_id")["weight"].sum().to_numpy()
    lengths = interactions.groupby("user_id")["song_id"].nunique().to_numpy()
    top = max(1, int(round(0.01 * len(plays))))
    return {
        "popularity_gini": round(gini(plays), 3),
        "history_median": float(np.median(lengths)),
        "history_p90": float(np.percentile(lengths, 90)),
        "top1pct_play_share": round(float(np.sort(plays)[::-1][:top].sum() / plays.sum()), 3),
        "users": int(len(lengths)),
        "songs": int(len(plays)),
    }


def hetrec_interactions(folder: Path) -> pd.DataFrame:
    """HetRec last.fm-2k `user_artists.dat` as (user_id, song_id, weight): artists are its items."""
    plays = read_dat(Path(folder) / "user_artists.dat", PLAYS, PLAYS, PrepareReport())
    plays = plays[plays["weight"] > 0]
    return plays.rename(columns={"userID": "user_id", "artistID": "song_id"})[["user_id", "song_id", "weight"]]


def yes_interactions(folder: Path) -> pd.DataFrame:
    """yes.com playlists as (user_id, song_id, weight): a playlist is a user, a song's occurrences its plays."""
    report = PrepareReport()
    known = set(read_songs(Path(folder), report).index.astype(int))
    playlists = read_playlists(Path(folder), known, report)
    return playlists.rename(columns={"song": "song_id"})[["user_id", "song_id", "weight"]]


def real_set_statistics(datasets: Path) -> dict[str, dict[str, float]]:
    """`interaction_statistics` of HetRec last.fm-2k and yes.com under `datasets` (those present)."""
    readers = {"hetrec-lastfm-2k": hetrec_interactions, "yes-playlists": yes_interactions}
    found = {name: read(Path(datasets) / name) for name, read in readers.items() if (Path(datasets) / name).exists()}
    return {name: interaction_statistics(interactions) for name, interactions in found.items()}
