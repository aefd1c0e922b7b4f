"""last.fm similar tracks (the MSD `lastfm_train`/`lastfm_test` release) → catalog + similarity.

Each track is a JSON object: `track_id` (MSD `TR...`), `artist`, `title`,
`tags: [[tag, count], ...]` and `similars: [[track_id, score in [0, 1]], ...]`, one file per
track in a folder tree (`A/B/C/TRABC....json`) or one object per line of a JSONL file.
There are no listening data in it: on its own it gives a catalog, song similarities and
empty interactions; with `--interactions_from` it adds tags and similarities to a dataset
folder that has interactions (typically a `taste_profile` import).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from prepare.report import PrepareReport
from songdata import SongDataset
from songdata.dataset import write_tables
from songdata.splits import SplitConfig, write_splits

log = logging.getLogger(__name__)

TRACKS_SEP = "<SEP>"


def _records(input: Path, report: PrepareReport) -> Iterator[tuple[str, dict]]:
    """(where, track object) for every readable track; unreadable files or lines are counted."""
    if input.is_dir():
        paths = sorted(input.rglob("*.json"))
        if not paths:
            raise FileNotFoundError(f"{input}: no last.fm track files (*.json) under this folder")
        for path in tqdm(paths, desc="last.fm tracks", unit="file"):
            try:
                yield str(path), json.loads(path.read_bytes())
            except (OSError, ValueError) as error:
                report.skip("unreadable track JSON file", f"{path}: {error}")
        return
    if not input.exists():
        raise FileNotFoundError(f"{input}: last.fm tracks not found (a folder of *.json files or a JSONL file)")
    with open(input, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield f"{input}:{number}", json.loads(line)
            except ValueError as error:
                report.skip("malformed JSON line", f"{input}:{number}: {error}")


def _top_tags(tags: object, where: str, max_tags: int, report: PrepareReport) -> list[str]:
    """Tag names by decreasing count (counts may be strings, as in the release)."""
    counted = []
    for entry in tags if isinstance(tags, list) else []:
        try:
            name, count = entry
            counted.append((str(name).strip(), float(count)))
        except (TypeError, ValueError):
            report.skip("malformed tag entry (expected [tag, count])", f"{where}: {entry!r}")
    counted.sort(key=lambda tag: -tag[1])
    return [name for name, _ in counted[:max_tags] if name]


def _similars(track_id: str, similars: object, where: str, report: PrepareReport) -> list[tuple[str, str, float]]:
    pairs = []
    for entry in similars if isinstance(similars, list) else []:
        try:
            other, score = entry
            score = float(score)
        except (TypeError, ValueError):
            report.skip("malformed similar entry (expected [track_id, score])", f"{where}: {entry!r}")
            continue
        if not 0.0 <= score <= 1.0:
            report.skip("similarity score outside [0, 1]", f"{where}: {entry!r}")
            continue
        pairs.append((track_id, str(other), score))
    return pairs


def read_tracks(input: Path, max_tags: int, report: PrepareReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tracks: song_id, artist, title, tags; pairs: song_a, song_b, score) keyed by MSD track id."""
    tracks, pairs, seen = [], [], set()
    for where, record in _records(input, report):
        track_id = record.get("track_id") if isinstance(record, dict) else None
        if not isinstance(track_id, str) or not track_id.strip():
            report.skip("track without a track_id", where)
            continue
        track_id = track_id.strip()
        if track_id in seen:
            report.skip("repeated track_id (first kept)", f"{where}: {track_id}")
            continue
        seen.add(track_id)
        tags = _top_tags(record.get("tags"), where, max_tags, report)
        tracks.append((track_id, str(record.get("artist") or ""), str(record.get("title") or ""), tags))
        pairs.extend(_similars(track_id, record.get("similars"), where, report))
    return (
        pd.DataFrame(tracks, columns=["song_id", "artist", "title", "tags"]),
        pd.DataFrame(pairs, columns=["song_a", "song_b", "score"]),
    )


def _track_to_song(path: Path, report: PrepareReport) -> dict[str, str]:
    """MSD track id → song id, from `unique_tracks.txt` (`track_id<SEP>song_id<SEP>artist<SEP>title`)."""
    mapping = {}
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            fields = raw.decode("utf-8", errors="replace").split(TRACKS_SEP)
            if len(fields) == 4 and fields[0].strip() and fields[1].strip():
                mapping[fields[0].strip()] = fields[1].strip()
            elif raw.strip():
                report.skip("malformed line in the unique_tracks file", f"{path.name}:{number}")
    return mapping


def key_by_song(
    tracks: pd.DataFrame, pairs: pd.DataFrame, path: Path, report: PrepareReport
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-key tracks and pairs by MSD song id; tracks of one song merge (first track's tags, best score)."""
    mapping = _track_to_song(path, report)
    unmapped = ~tracks["song_id"].isin(mapping.keys())
    report.skip_rows("track id not in the unique_tracks file", tracks.loc[unmapped, ["song_id"]], path.name)
    tracks = tracks[~unmapped].assign(song_id=lambda t: t["song_id"].map(mapping))
    merged = tracks["song_id"].duplicated()
    report.skip_rows("another track of the same song (first track kept)", tracks.loc[merged, ["song_id"]], path.name)
    tracks = tracks[~merged]
    keyed = pairs.assign(song_a=pairs["song_a"].map(mapping), song_b=pairs["song_b"].map(mapping))
    unmapped = keyed["song_a"].isna() | keyed["song_b"].isna()
    report.skip_rows("similar pair with a track id not in the unique_tracks file", pairs[unmapped], path.name)
    pairs = keyed[~unmapped]
    same = pairs["song_a"] == pairs["song_b"]
    report.skip_rows("similar pair of two tracks of the same song", pairs[same], path.name)
    pairs = pairs[~same]
    merged = pairs.duplicated(["song_a", "song_b"])
    report.skip_rows("repeated pair once keyed by song (best score kept)", pairs[merged], path.name)
    return tracks, pairs.groupby(["song_a", "song_b"], as_index=False, sort=False)["score"].max()


def _fill_catalog(catalog: pd.DataFrame, tracks: pd.DataFrame) -> pd.DataFrame:
    """Fill the catalog's empty artist, title and tags from last.fm; keeps its rows and their order."""
    lastfm = tracks.set_index("song_id").reindex(catalog["song_id"])
    catalog = catalog.copy()
    for column in ("artist", "title"):
        empty = catalog[column].fillna("").str.len().to_numpy() == 0
        catalog.loc[empty, column] = lastfm[column].fillna("").to_numpy()[empty]
    catalog["tags"] = [
        list(own) if len(own) else (extra if isinstance(extra, list) else [])
        for own, extra in zip(catalog["tags"], lastfm["tags"])
    ]
    return catalog


def _onto(
    base_dir: Path, out: Path, lastfm: pd.DataFrame, split: SplitConfig | None, report: PrepareReport
) -> tuple[pd.DataFrame, pd.DataFrame, SplitConfig | None]:
    """The base folder's catalog (filled from last.fm), its interactions, and its split unless one is given."""
    base = SongDataset(base_dir, require_splits=False)
    outside = ~lastfm["song_id"].isin(set(base.catalog["song_id"]))
    reason = "last.fm track not in the catalog of interactions_from"
    report.skip_rows(reason, lastfm.loc[outside, ["song_id", "artist", "title"]], str(base_dir))
    report.written["songs_matched"] = int((~outside).sum())
    if split is None and base.tables.split_meta:
        fields = ("seed", "val_fraction", "test_fraction", "cold_fraction")
        split = SplitConfig(**{name: base.tables.split_meta[name] for name in fields})
    if base.has_audio and base_dir.resolve() != out.resolve():
        log.warning("%s: shards are not copied to %s; import into the same folder to keep them", base_dir, out)
    return _fill_catalog(base.catalog, lastfm[~outside]), base.tables.interactions, split


def import_lastfm_similars(
    input: Path,
    out: Path,
    split: SplitConfig | None = None,
    interactions_from: Path | None = None,
    tracks: Path | None = None,
    max_tags: int = 10,
) -> PrepareReport:
    """Import last.fm similar tracks as song similarities and tags, alone or onto a dataset with interactions.

    Alone: the catalog is every track read (artist, title, top tags; no lyrics or audio),
    the similarity table keeps the pairs whose two tracks are in it (as last.fm lists them,
    not symmetrised), and interactions and splits are empty: useful for similarity-only
    evaluation, not for training recommenders.

    With `interactions_from`: that folder's catalog (rows and order kept), interactions and
    splits are the base; last.fm fills its songs' empty artist, title and tags, and the
    similarity table keeps the pairs whose two songs are in its catalog. `out` may be that
    same folder (updated in place; its shards stay valid). A Taste Profile import is keyed
    by MSD song id while last.fm uses track ids: pass `tracks` to join them.
    Pairs and tracks outside the catalog are counted in the report.

    Args:
        input: Folder tree of per-track `*.json` files (`lastfm_train/`) or a JSONL file.
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions are split; defaults to the split recorded in
            `interactions_from` (so its splits are kept), else SplitConfig().
        interactions_from: Dataset folder with interactions to combine with (e.g. from `taste_profile`).
        tracks: MSD `unique_tracks.txt`; when given, songs are keyed by MSD song id (`SO...`)
            instead of track id (`TR...`), as in the Taste Profile.
        max_tags: How many of each track's highest-count last.fm tags to keep.

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out = Path(input), Path(out)
    report = PrepareReport()
    lastfm, pairs = read_tracks(input, max_tags, report)
    if tracks is not None:
        lastfm, pairs = key_by_song(lastfm, pairs, Path(tracks), report)
    if interactions_from is None:
        catalog = lastfm.assign(lyrics="", duration_s=0.0)
        interactions = pd.DataFrame({
            "user_id": pd.Series(dtype=str), "song_id": pd.Series(dtype=str),
            "weight": pd.Series(dtype=float), "position": pd.Series(dtype=int),
        })
    else:
        catalog, interactions, split = _onto(Path(interactions_from), out, lastfm, split, report)
    known = set(catalog["song_id"])
    inside = pairs["song_a"].isin(known) & pairs["song_b"].isin(known)
    report.skip_rows("similar pair with a song outside the catalog", pairs[~inside], input.name)
    if catalog.empty:
        raise ValueError(f"{input}: no song could be imported\n{report.summary()}")
    write_tables(out, catalog, interactions, pairs[inside])
    meta = write_splits(out, interactions, split or SplitConfig())
    report.written.update(songs=len(catalog), similar_pairs=int(inside.sum()), interactions=len(interactions))
    report.written.update({f"split_{name}": count for name, count in meta["counts"].items()})
    return report
