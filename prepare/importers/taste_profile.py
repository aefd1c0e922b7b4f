"""Echo Nest Taste Profile (Million Song Dataset) play counts → dataset folder.

The triplets file (`train_triplets.txt`) holds one `user <TAB> song_id <TAB> play count` line
per (user, song), no header. It has no song metadata: the MSD `unique_tracks.txt` adds
artist and title. Songs are keyed by MSD song id (`SO...`), as in the triplets.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from prepare.importers import write_interaction_dataset
from prepare.report import PrepareReport
from songdata.splits import SplitConfig

log = logging.getLogger(__name__)

TRACKS_SEP = "<SEP>"


def _read_triplets(path: Path, report: PrepareReport) -> pd.DataFrame:
    """Read the triplets as strings; lines without exactly three fields are counted and skipped."""

    def on_invalid(row: pacsv.InvalidRow) -> str:
        report.skip("malformed line (expected user<TAB>song<TAB>count)", f"{path}: {row.text[:80]!r}")
        return "skip"

    names = ["user_id", "song_id", "count"]
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in names})
    try:
        table = pacsv.read_csv(path, pacsv.ReadOptions(column_names=names), parse, convert)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: Taste Profile triplets file not found") from None
    except pa.ArrowInvalid as error:
        if "UTF8" not in str(error):
            raise ValueError(f"{path}: not a triplets file ({error})") from error
        log.warning("%s: not valid UTF-8, reading it as latin-1", path)
        read = pacsv.ReadOptions(column_names=names, encoding="latin-1")
        table = pacsv.read_csv(path, read, parse, convert)
    return table.to_pandas()


def _clean_triplets(triplets: pd.DataFrame, path: Path, report: PrepareReport) -> pd.DataFrame:
    """Drop rows with empty ids or a play count that is not a positive integer; sum repeated pairs."""
    triplets["user_id"] = triplets["user_id"].str.strip()
    triplets["song_id"] = triplets["song_id"].str.strip()
    count = pd.to_numeric(triplets["count"].str.strip(), errors="coerce")
    bad_count = ~(count > 0) | (count != count.round())
    empty_id = (triplets["user_id"] == "") | (triplets["song_id"] == "")
    report.skip_rows("empty user or song id", triplets[empty_id], path.name)
    report.skip_rows("play count not a positive integer", triplets[bad_count & ~empty_id], path.name)
    triplets = triplets[~(empty_id | bad_count)].assign(weight=count).drop(columns="count")
    grouped = triplets.groupby(["user_id", "song_id"], sort=False, as_index=False)["weight"].sum()
    repeated = triplets[triplets.duplicated(["user_id", "song_id"])]
    report.skip_rows("repeated (user, song) line, play counts summed", repeated, path.name)
    return grouped.assign(position=-1)


def _read_song_metadata(path: Path, wanted: set[str], report: PrepareReport) -> pd.DataFrame:
    """Artist and title per song id from `unique_tracks.txt`; the first track of each song wins."""
    rows: dict[str, tuple[str, str]] = {}
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
            fields = line.rstrip("\r\n").split(TRACKS_SEP)
            if len(fields) != 4:
                if line.strip():
                    reason = "malformed song line (expected track<SEP>song<SEP>artist<SEP>title)"
                    report.skip(reason, f"{path}:{number}")
                continue
            song_id = fields[1].strip()
            if song_id in wanted and song_id not in rows:
                rows[song_id] = (fields[2].strip(), fields[3].strip())
    return pd.DataFrame(
        [(song, artist, title) for song, (artist, title) in rows.items()], columns=["song_id", "artist", "title"]
    )


def import_taste_profile(
    input: Path, out: Path, split: SplitConfig | None = None, songs: Path | None = None
) -> PrepareReport:
    """Import Echo Nest Taste Profile play counts (MSD `train_triplets.txt`) as a dataset folder.

    Interactions are (user, song, play count) with no order (position -1); a repeated
    (user, song) line adds its count to the first. The catalog holds every song with at
    least one play, without lyrics, tags or duration. Combine with `lastfm-similars
    --interactions_from` to add last.fm tags and song similarities.

    Args:
        input: Triplets file, `user<TAB>song_id<TAB>count` per line, no header.
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions are split into train/val/test (defaults to SplitConfig()).
        songs: Optional MSD `unique_tracks.txt` (`track_id<SEP>song_id<SEP>artist<SEP>title`)
            giving each song's artist and title; without it both stay empty.

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out = Path(input), Path(out)
    report = PrepareReport()
    interactions = _clean_triplets(_read_triplets(input, report), input, report)
    catalog = pd.DataFrame({"song_id": interactions["song_id"].unique()})
    if songs is not None:
        metadata = _read_song_metadata(Path(songs), set(catalog["song_id"]), report)
        catalog = catalog.merge(metadata, on="song_id", how="left")
        report.written["songs_with_metadata"] = len(metadata)
    catalog = catalog.reindex(columns=["song_id", "artist", "title"]).fillna("")
    catalog = catalog.assign(lyrics="", tags=[[] for _ in range(len(catalog))], duration_s=0.0)
    return write_interaction_dataset(input, out, catalog, interactions, split, report)
