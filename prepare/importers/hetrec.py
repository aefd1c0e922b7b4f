"""HetRec 2011 Last.fm-2k (user, artist, play count) → dataset folder, with artists as the items.

Files are tab-separated with an optional header line (`//userID ...` or column names);
the release mixes UTF-8 and latin-1 text, so a file that is not valid UTF-8 is decoded line by line.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prepare.importers import write_interaction_dataset
from prepare.report import PrepareReport
from songdata.splits import SplitConfig

ID_PREFIX = "hetrec-"
PLAYS = ["userID", "artistID", "weight"]
TAGGED = ["userID", "artistID", "tagID", "day", "month", "year"]


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _integers(column: pd.Series) -> pd.Series:
    """Fast path for clean integer text; otherwise NaN where a value is not a number."""
    try:
        return column.astype("int64")
    except (ValueError, TypeError, OverflowError):
        return pd.to_numeric(column.str.strip(), errors="coerce")


def read_dat(path: Path, columns: list[str], numeric: list[str], report: PrepareReport) -> pd.DataFrame:
    """Read one `.dat` file into string columns, `numeric` ones as int; bad lines are counted and skipped.

    A first line whose first field is not an integer is a header. Lines with another number of
    fields than `columns`, or with a non-integer in a `numeric` column, are skipped.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: HetRec file not found (expected columns {columns})")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\n".join(_decode(line) for line in data.split(b"\n"))
    lines = text.splitlines()
    fields = [line.split("\t") for line in lines]
    start = 1 if fields and not fields[0][0].strip().isdigit() else 0  # header line
    rows = [row for row in fields[start:] if len(row) == len(columns)]
    bad = [n for n in range(start, len(lines)) if len(fields[n]) != len(columns) and lines[n].strip()]
    reason = f"malformed line in {path.name} (expected {len(columns)} tab-separated fields)"
    report.skip_rows(reason, pd.DataFrame([(f"line {n + 1}", lines[n][:80]) for n in bad]), path.name)
    table = pd.DataFrame(rows, columns=columns, dtype=str)
    values = pd.DataFrame({name: _integers(table[name]) for name in numeric})
    invalid = values.isna().any(axis=1) | (values != values.round()).any(axis=1)
    report.skip_rows(f"non-integer {'/'.join(numeric)} in {path.name}", table[invalid], path.name)
    table[numeric] = values
    return table[~invalid].astype({name: "int64" for name in numeric}).reset_index(drop=True)


def artist_tags(tagged: pd.DataFrame, tag_names: pd.Series, top_k: int) -> dict[int, list[str]]:
    """The `top_k` tag values users gave each artist most often (ties: lower tag id first)."""
    counts = tagged.groupby(["artistID", "tagID"]).size().rename("n").reset_index()
    counts = counts.sort_values(["artistID", "n", "tagID"], ascending=[True, False, True])
    counts = counts.groupby("artistID").head(top_k)
    tags: dict[int, list[str]] = {}
    for artist, tag in zip(counts["artistID"].tolist(), counts["tagID"].map(tag_names).tolist()):
        tags.setdefault(artist, []).append(tag)
    return tags


def _read_tags(input: Path, artist_ids: set[int], top_k: int, report: PrepareReport) -> dict[int, list[str]]:
    """Each artist's most frequent tag values, from `tags.dat` and `user_taggedartists.dat` when present."""
    if top_k <= 0 or not (input / "tags.dat").exists() or not (input / "user_taggedartists.dat").exists():
        return {}
    tag_names = read_dat(input / "tags.dat", ["tagID", "tagValue"], ["tagID"], report)
    tag_names = tag_names.drop_duplicates("tagID").set_index("tagID")["tagValue"].str.strip()
    tagged = read_dat(input / "user_taggedartists.dat", TAGGED, TAGGED[:3], report)
    unknown_artist = ~tagged["artistID"].isin(artist_ids)
    unknown_tag = ~tagged["tagID"].isin(tag_names.index) & ~unknown_artist
    where = "user_taggedartists.dat"
    report.skip_rows("tag assignment for an artist not in the catalog", tagged[unknown_artist], where)
    report.skip_rows("tag assignment with a tag id not in tags.dat", tagged[unknown_tag], where)
    tagged = tagged[~(unknown_artist | unknown_tag)]
    report.written["tag_assignments"] = len(tagged)
    return artist_tags(tagged, tag_names, top_k)


def _read_plays(input: Path, report: PrepareReport) -> pd.DataFrame:
    """(userID, artistID, weight) with positive play counts, one row per pair (repeats summed)."""
    plays = read_dat(input / "user_artists.dat", PLAYS, PLAYS, report)
    where = "user_artists.dat"
    report.skip_rows("play count <= 0 in user_artists.dat", plays[plays["weight"] <= 0], where)
    plays = plays[plays["weight"] > 0]
    repeated = plays.duplicated(["userID", "artistID"])
    report.skip_rows("repeated (user, artist) line, play counts summed", plays[repeated], where)
    return plays.groupby(["userID", "artistID"], as_index=False)["weight"].sum()


def import_hetrec(input: Path, out: Path, split: SplitConfig | None = None, top_tags: int = 5) -> PrepareReport:
    """Import HetRec 2011 Last.fm-2k as a dataset folder whose items are artists.

    Song ids are `hetrec-<artistID>`; artist and title are the artist's name; tags are the
    `top_tags` tag values users assigned to the artist most often; no lyrics or audio
    (duration 0). Interactions are (user, artist, play count), unordered (position -1).
    The catalog is every artist of `artists.dat` plus any artist of `user_artists.dat`
    missing from it (with an empty name); in the 2011 release both hold the same 17,632
    artists, so the result has 1,892 users x 17,632 artists and 92,834 interactions.

    Args:
        input: Folder holding `user_artists.dat`, `artists.dat`, `tags.dat` and
            `user_taggedartists.dat` (the last two are optional: without them tags stay empty).
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions are split into train/val/test (defaults to SplitConfig()).
        top_tags: How many of each artist's most frequent tags to keep.

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out = Path(input), Path(out)
    report = PrepareReport()
    plays = _read_plays(input, report)
    artists = read_dat(input / "artists.dat", ["id", "name", "url", "pictureURL"], ["id"], report)
    names = artists.drop_duplicates("id").set_index("id")["name"].str.strip()
    ids = pd.Index(names.index).union(pd.Index(plays["artistID"].unique())).sort_values()
    report.written["artists_without_name"] = int((~ids.isin(names.index)).sum())
    tags = _read_tags(input, set(ids), top_tags, report)
    names = names.reindex(ids).fillna("").to_numpy()
    catalog = pd.DataFrame({
        "song_id": ID_PREFIX + ids.astype(str),
        "artist": names,
        "title": names,
        "lyrics": "",
        "tags": [tags.get(i, []) for i in ids],
        "duration_s": 0.0,
    })
    interactions = pd.DataFrame({
        "user_id": plays["userID"].astype(str),
        "song_id": ID_PREFIX + plays["artistID"].astype(str),
        "weight": plays["weight"].astype(float),
        "position": -1,
    })
    return write_interaction_dataset(input, out, catalog, interactions, split, report)
