"""A local manifest of songs with audio and lyrics (+ interactions, similarities) → dataset folder with shards.

Manifest: CSV (header row) or JSONL, one song per row: `song_id` (required), `audio` (path,
relative to the manifest file or absolute), `lyrics` or `lyrics_path`, `artist`, `title`,
`tags` (a list in JSONL; a `;`- or `|`-separated string in CSV).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from prepare.report import PrepareReport
from songdata.audio import read_audio
from songdata.dataset import INTERACTION_COLUMNS, write_tables
from songdata.shards import SkipSample, assign_shard_splits, write_shards
from songdata.splits import SplitConfig, write_splits

SONG_FIELDS = ("song_id", "audio", "lyrics", "lyrics_path", "artist", "title", "tags")
_TAG_SEPARATOR = re.compile(r"[;|]")


@dataclass
class ManifestAudio:
    """Audio source for `write_shards`: decodes each song's file to mono 16 kHz, or skips it with a reason."""

    paths: dict[str, str]

    def __call__(self, row: dict) -> np.ndarray:
        path = self.paths.get(row["song_id"], "")
        if not path:
            raise SkipSample("no audio path in the manifest")
        if not Path(path).is_file():
            raise SkipSample("audio file not found")
        try:
            return read_audio(path)
        except Exception as error:  # libsndfile raises several types for unreadable files
            raise SkipSample(f"audio file not decodable ({type(error).__name__})") from error


def _no_interactions() -> pd.DataFrame:
    columns = {"user_id": str, "song_id": str, "weight": float, "position": int}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _read_csv(path: Path, report: PrepareReport) -> pd.DataFrame:
    """A CSV with a header row as strings; rows with too many fields are counted and skipped."""

    def on_bad_line(fields: list[str]) -> None:
        report.skip(f"malformed row in {path.name} (too many fields)", f"{path}: {fields}")
        return None

    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    table = pd.read_csv(
        path, dtype=str, keep_default_na=False, engine="python", on_bad_lines=on_bad_line, encoding="utf-8-sig"
    )
    table.columns = [str(column).strip() for column in table.columns]
    return table.fillna("")


def _read_jsonl(path: Path, report: PrepareReport) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                report.skip("malformed JSON line in the manifest", f"{path}:{number}: {error}")
                continue
            if not isinstance(row, dict):
                report.skip("manifest line is not a JSON object", f"{path}:{number}")
                continue
            rows.append(row)
    return pd.DataFrame(rows)


def _tags(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    if isinstance(value, str):
        return [tag.strip() for tag in _TAG_SEPARATOR.split(value) if tag.strip()]
    return []


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def _resolve(base: Path, value: object) -> str:
    text = _text(value)
    return str((base / Path(text).expanduser()).resolve()) if text else ""


def read_songs(path: Path, report: PrepareReport) -> tuple[pd.DataFrame, dict[str, str]]:
    """(catalog, song_id → absolute audio path) from the manifest; durations from the audio headers."""
    table = _read_jsonl(path, report) if path.suffix.lower() in (".jsonl", ".ndjson") else _read_csv(path, report)
    if "song_id" not in table.columns:
        raise ValueError(f"{path}: missing column 'song_id'; expected columns among {list(SONG_FIELDS)}")
    table = table.reindex(columns=SONG_FIELDS)
    table["song_id"] = table["song_id"].map(_text)
    empty = table["song_id"] == ""
    report.skip_rows("manifest row without a song_id", table[empty], path.name)
    repeated = table["song_id"].duplicated() & ~empty
    report.skip_rows("repeated song_id in the manifest (first kept)", table[repeated], path.name)
    table = table[~(empty | repeated)].reset_index(drop=True)
    base = path.parent
    audio = {song: _resolve(base, value) for song, value in zip(table["song_id"], table["audio"])}
    catalog = pd.DataFrame({
        "song_id": table["song_id"],
        "artist": table["artist"].map(_text),
        "title": table["title"].map(_text),
        "lyrics": [_lyrics(base, row, report) for row in table.itertuples()],
        "tags": table["tags"].map(_tags),
        "duration_s": [_duration(audio[song]) for song in tqdm(table["song_id"], desc="audio headers", unit="song")],
    })
    return catalog, audio


def _lyrics(base: Path, row, report: PrepareReport) -> str:
    """Inline lyrics, else the text of `lyrics_path`; a missing lyrics file leaves them empty (counted)."""
    if _text(row.lyrics):
        return str(row.lyrics)
    lyrics_path = _resolve(base, row.lyrics_path)
    if not lyrics_path:
        return ""
    try:
        return Path(lyrics_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        report.skip("lyrics file not readable (lyrics left empty)", f"{row.song_id}: {lyrics_path}")
        return ""


def _duration(path: str) -> float:
    """Seconds of audio per the file header; 0 when it cannot be read (the shard step counts that song)."""
    try:
        return float(sf.info(path).duration) if path else 0.0
    except Exception:  # unreadable or missing: reported once, by the audio source, when shards are written
        return 0.0


def _column(table: pd.DataFrame, name: str, default: str) -> pd.Series:
    """A numeric column of a CSV read as text; absent or empty cells take `default`, unparsable ones NaN."""
    values = table[name].replace("", default) if name in table.columns else pd.Series(default, index=table.index)
    return pd.to_numeric(values, errors="coerce")


def read_interactions(path: Path, songs: set[str], report: PrepareReport) -> pd.DataFrame:
    """`user_id,song_id[,weight][,position]` CSV; weight defaults to 1, position to -1; repeated pairs are summed."""
    table = _read_csv(path, report)
    missing = [c for c in ("user_id", "song_id") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected user_id,song_id[,weight][,position]")
    table = pd.DataFrame({
        "user_id": table["user_id"].str.strip(),
        "song_id": table["song_id"].str.strip(),
        "weight": _column(table, "weight", "1"),
        "position": _column(table, "position", "-1"),
    })
    checks = (
        (table["user_id"] == "", "interaction without a user_id"),
        (~table["song_id"].isin(songs), "interaction with a song_id not in the manifest"),
        (~(table["weight"] > 0), "interaction weight not a positive number"),
        (table["position"].isna(), "interaction position not a number"),
    )
    bad = pd.Series(False, index=table.index)
    for mask, reason in checks:
        report.skip_rows(reason, table[mask & ~bad], path.name)
        bad |= mask
    table = table[~bad].astype({"position": int})
    grouped = table.groupby(["user_id", "song_id"], as_index=False, sort=False)
    grouped = grouped.agg(weight=("weight", "sum"), position=("position", "min"))
    repeated = table[table.duplicated(["user_id", "song_id"])]
    report.skip_rows("repeated (user, song) interaction, weights summed", repeated, path.name)
    return grouped[list(INTERACTION_COLUMNS)]


def read_similarity(path: Path, songs: set[str], report: PrepareReport) -> pd.DataFrame:
    """`song_a,song_b,score` CSV, score in [0, 1]; pairs with unknown songs or bad scores are counted and skipped."""
    table = _read_csv(path, report)
    missing = [c for c in ("song_a", "song_b", "score") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected song_a,song_b,score")
    table = pd.DataFrame({
        "song_a": table["song_a"].str.strip(),
        "song_b": table["song_b"].str.strip(),
        "score": pd.to_numeric(table["score"], errors="coerce"),
    })
    unknown = ~(table["song_a"].isin(songs) & table["song_b"].isin(songs))
    bad_score = ~table["score"].between(0.0, 1.0) & ~unknown
    report.skip_rows("similarity pair with a song_id not in the manifest", table[unknown], path.name)
    report.skip_rows("similarity score not a number in [0, 1]", table[bad_score], path.name)
    return table[~(unknown | bad_score)]


def import_manifest(
    input: Path,
    out: Path,
    split: SplitConfig | None = None,
    interactions: Path | None = None,
    similarity: Path | None = None,
    workers: int = 2,
    songs_per_shard: int = 64,
) -> PrepareReport:
    """Import a manifest of local songs (audio + lyrics) as a dataset folder with audio shards.

    Every manifest row with a song_id is a catalog song; its duration comes from its audio
    file. Audio in any format libsndfile reads (wav, flac, ogg, mp3, ...) is decoded, mixed to
    mono and resampled to 16 kHz into webdataset shards (train/val/test by song, cold-start
    songs in test). A song whose audio is missing or undecodable stays in the catalog but
    has no shard sample; the report counts it. Re-running resumes finished shards.

    Args:
        input: Manifest, CSV (header row) or JSONL: song_id, audio, lyrics or lyrics_path,
            artist, title, tags (JSONL list, or `;`/`|`-separated in CSV). Relative paths are
            relative to the manifest's folder.
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions (and shards) are split into train/val/test (defaults to SplitConfig()).
        interactions: CSV `user_id,song_id[,weight][,position]` with a header row; without it
            the interactions table and splits are empty.
        similarity: Optional CSV `song_a,song_b,score` (score in [0, 1]) with a header row.
        workers: Processes that decode audio and write shards.
        songs_per_shard: Songs per shard file.

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out, split = Path(input), Path(out), split or SplitConfig()
    report = PrepareReport()
    catalog, audio = read_songs(input, report)
    songs = set(catalog["song_id"])
    table = read_interactions(Path(interactions), songs, report) if interactions is not None else _no_interactions()
    pairs = read_similarity(Path(similarity), songs, report) if similarity is not None else None
    if catalog.empty:
        raise ValueError(f"{input}: no song could be imported\n{report.summary()}")
    dataset = write_tables(out, catalog, table, pairs)
    meta = write_splits(out, table, split)
    report.written.update(songs=len(catalog), users=table["user_id"].nunique(), interactions=len(table))
    report.written.update({f"split_{name}": count for name, count in meta["counts"].items()})
    if pairs is not None:
        report.written["similar_pairs"] = len(pairs)
    assignment = assign_shard_splits(dataset.catalog, meta["cold_song_ids"], split.val_fraction, split.seed)
    report.merge(write_shards(out, dataset.catalog, assignment, ManifestAudio(audio), songs_per_shard, workers))
    return report
