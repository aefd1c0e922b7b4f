"""HetRec 2011 Last.fm-2k (user, artist, play count) → dataset folder, with artists as the items.

Files are tab-separated with an optional header line (`//userID ...` or column names);
the release mixes UTF-8 and latin-1 text, so each line is decoded on its own.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.dataset import write_tables
from datamodules.report import PrepareReport
from datamodules.splits import SplitConfig, write_splits

ID_PREFIX = "hetrec-"


def _skip_many(report: PrepareReport, reason: str, count: int, example: str) -> None:
    if count:
        report.skipped[reason] += count
        report.examples.setdefault(reason, example)


def read_dat(path: Path, columns: list[str], numeric: list[str], report: PrepareReport) -> pd.DataFrame:
    """Read one `.dat` file into string columns, numeric ones as int; bad lines are counted and skipped.

    A first line whose first field is not an integer is a header. Lines with another number of
    fields than `columns`, or with a non-integer in a `numeric` column, are skipped.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: HetRec file not found (expected columns {columns})")
    rows, bad = [], []
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
            line = line.rstrip("\r\n")
            fields = line.split("\t")
            if number == 1 and not fields[0].strip().isdigit():
                continue  # header
            if len(fields) == len(columns):
                rows.append(fields)
            elif line.strip():
                bad.append(f"{path.name}:{number}: {line[:80]!r}")
    _skip_many(report, f"malformed line in {path.name} (expected {len(columns)} tab-separated fields)", len(bad), bad[0] if bad else "")
    table = pd.DataFrame(rows, columns=columns, dtype=str)
    values = table[numeric].apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    invalid = values.isna().any(axis=1) | (values != values.round()).any(axis=1)
    if invalid.any():
        _skip_many(report, f"non-integer {'/'.join(numeric)} in {path.name}", int(invalid.sum()), str(table[invalid].iloc[0].tolist()))
    table[numeric] = values.astype("Int64")
    return table[~invalid].astype({name: "int64" for name in numeric}).reset_index(drop=True)


def artist_tags(tagged: pd.DataFrame, tag_names: pd.Series, top_k: int) -> pd.Series:
    """The `top_k` tag values users gave each artist most often (ties: lower tag id first)."""
    counts = tagged.groupby(["artistID", "tagID"]).size().rename("n").reset_index()
    counts = counts.sort_values(["artistID", "n", "tagID"], ascending=[True, False, True])
    counts = counts.groupby("artistID").head(top_k)
    counts["tag"] = counts["tagID"].map(tag_names)
    return counts.groupby("artistID")["tag"].agg(list)


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
    plays = read_dat(input / "user_artists.dat", ["userID", "artistID", "weight"], ["userID", "artistID", "weight"], report)
    not_positive = plays["weight"] <= 0
    _skip_many(report, "play count <= 0 in user_artists.dat", int(not_positive.sum()), str(plays[not_positive].head(1).values.tolist()))
    plays = plays[~not_positive]
    repeated = plays.duplicated(["userID", "artistID"])
    _skip_many(report, "repeated (user, artist) line, play counts summed", int(repeated.sum()), str(plays[repeated].head(1).values.tolist()))
    plays = plays.groupby(["userID", "artistID"], as_index=False)["weight"].sum()

    artists = read_dat(input / "artists.dat", ["id", "name", "url", "pictureURL"], ["id"], report)
    artists = artists.drop_duplicates("id").set_index("id")["name"].str.strip()
    ids = pd.Index(artists.index).union(pd.Index(plays["artistID"].unique())).sort_values()
    report.written["artists_without_name"] = int((~ids.isin(artists.index)).sum())
    tags = _tags(input, set(ids), top_tags, report)
    names = artists.reindex(ids).fillna("")
    catalog = pd.DataFrame({
        "song_id": ID_PREFIX + ids.astype(str),
        "artist": names.to_numpy(),
        "title": names.to_numpy(),
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
    write_tables(out, catalog, interactions)
    meta = write_splits(out, interactions, split or SplitConfig())
    report.written.update(songs=len(catalog), users=interactions["user_id"].nunique(), interactions=len(interactions))
    report.written.update({f"split_{name}": count for name, count in meta["counts"].items()})
    return report


def _tags(input: Path, artist_ids: set[int], top_k: int, report: PrepareReport) -> dict[int, list[str]]:
    """Each artist's most frequent tag values, from `tags.dat` and `user_taggedartists.dat` when present."""
    if top_k <= 0 or not (input / "tags.dat").exists() or not (input / "user_taggedartists.dat").exists():
        return {}
    tag_names = read_dat(input / "tags.dat", ["tagID", "tagValue"], ["tagID"], report)
    tag_names = tag_names.drop_duplicates("tagID").set_index("tagID")["tagValue"].str.strip()
    columns = ["userID", "artistID", "tagID", "day", "month", "year"]
    tagged = read_dat(input / "user_taggedartists.dat", columns, columns, report)
    unknown_artist = ~tagged["artistID"].isin(artist_ids)
    unknown_tag = ~tagged["tagID"].isin(tag_names.index) & ~unknown_artist
    for mask, reason in (
        (unknown_artist, "tag assignment for an artist not in the catalog"),
        (unknown_tag, "tag assignment with a tag id not in tags.dat"),
    ):
        _skip_many(report, reason, int(mask.sum()), str(tagged[mask].head(1).values.tolist()))
    tagged = tagged[~(unknown_artist | unknown_tag)]
    report.written["tag_assignments"] = len(tagged)
    return artist_tags(tagged, tag_names, top_k).to_dict()
