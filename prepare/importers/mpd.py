"""Spotify Million Playlist Dataset slices → dataset folder, one playlist per user.

A slice (`mpd.slice.<first>-<last>.json`) is `{"info": {...}, "playlists": [{"pid", "name",
"tracks": [{"pos", "track_uri", "track_name", "artist_name", "duration_ms", ...}]}]}`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from prepare.importers import write_interaction_dataset
from prepare.report import PrepareReport
from songdata.splits import SplitConfig

USER_PREFIX = "mpd-"


def _slices(input: Path) -> list[Path]:
    if input.is_dir():
        paths = sorted(input.glob("*.json"))
        if not paths:
            raise FileNotFoundError(f"{input}: no MPD slice files (*.json) in this folder")
        return paths
    if not input.exists():
        raise FileNotFoundError(f"{input}: MPD slice file or folder not found")
    return [input]


def _read_playlist(playlist: object, where: str, report: PrepareReport) -> tuple[str, str, list[dict]] | None:
    """(user id, lowercased name, well-formed tracks) of one playlist, or None when it is unusable."""
    pid = str(playlist.get("pid", "")).strip() if isinstance(playlist, dict) else ""
    if pid in ("", "None"):
        report.skip("playlist without a pid", where)
        return None
    user = f"{USER_PREFIX}{pid}"
    tracks = []
    for index, track in enumerate(playlist.get("tracks") or []):
        if not isinstance(track, dict) or not isinstance(track.get("track_uri"), str) or not track["track_uri"].strip():
            report.skip("track without a track_uri", f"{where} {user} #{index}")
            continue
        tracks.append({**track, "pos": track.get("pos", index)})
    if not tracks:
        report.skip("playlist without tracks", f"{where} {user}")
        return None
    return user, " ".join(str(playlist.get("name") or "").lower().split()), tracks


def read_slices(input: Path, report: PrepareReport) -> pd.DataFrame:
    """One row per playlist entry: user_id, name, song_id, position, artist, title, duration_s."""
    rows, seen = [], set()
    for path in tqdm(_slices(input), desc="MPD slices", unit="slice"):
        try:
            playlists = json.loads(path.read_bytes())["playlists"]
            if not isinstance(playlists, list):
                raise TypeError(f"'playlists' is a {type(playlists).__name__}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.skip("unreadable slice (expected JSON with a 'playlists' list)", f"{path}: {error!r}")
            continue
        for number, playlist in enumerate(playlists):
            parsed = _read_playlist(playlist, f"{path.name}[{number}]", report)
            if parsed is None:
                continue
            user, name, tracks = parsed
            if user in seen:
                report.skip("repeated pid (first kept)", f"{path.name}: {user}")
                continue
            seen.add(user)
            rows.extend(
                (user, name, t["track_uri"].strip(), t["pos"], t.get("artist_name"), t.get("track_name"),
                 t.get("duration_ms"))
                for t in tracks
            )
    return pd.DataFrame(rows, columns=["user_id", "name", "song_id", "position", "artist", "title", "duration_ms"])


def name_tags(entries: pd.DataFrame, max_tags: int) -> dict[str, list[str]]:
    """Per song, the `max_tags` playlist names that hold it most often (ties: alphabetical)."""
    named = entries[entries["name"] != ""].drop_duplicates(["user_id", "song_id"])
    counts = named.groupby(["song_id", "name"]).size().rename("n").reset_index()
    counts = counts.sort_values(["song_id", "n", "name"], ascending=[True, False, True])
    counts = counts.groupby("song_id").head(max_tags)
    tags: dict[str, list[str]] = {}
    for song, name in zip(counts["song_id"].tolist(), counts["name"].tolist()):
        tags.setdefault(song, []).append(name)
    return tags


def import_mpd(input: Path, out: Path, split: SplitConfig | None = None, max_tags: int = 5) -> PrepareReport:
    """Import Spotify Million Playlist Dataset slices as a dataset folder: each playlist is a user.

    Users are `mpd-<pid>`, songs are Spotify track URIs. One interaction per (playlist,
    track): weight = how often the track occurs in the playlist, position = its first `pos`.
    Catalog: every track of a kept playlist, with artist, title and duration from its first
    occurrence; tags are the (lowercased) names of the playlists that hold the track most
    often, the closest thing MPD has to tags (set `max_tags` 0 to leave tags empty). No
    lyrics or audio.

    Args:
        input: One `mpd.slice.*.json` file or a folder of them (challenge-set files work too).
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions are split into train/val/test (defaults to SplitConfig()).
        max_tags: How many playlist names to keep as each track's tags.

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out = Path(input), Path(out)
    report = PrepareReport()
    entries = read_slices(input, report)
    entries["position"] = pd.to_numeric(entries["position"], errors="coerce").fillna(-1).astype(int)
    entries["duration_s"] = pd.to_numeric(entries["duration_ms"], errors="coerce").fillna(0.0).clip(lower=0) / 1000
    songs = entries.drop_duplicates("song_id").set_index("song_id")
    tags = name_tags(entries, max_tags) if max_tags > 0 else {}
    catalog = pd.DataFrame({
        "song_id": songs.index,
        "artist": songs["artist"].fillna("").astype(str).to_numpy(),
        "title": songs["title"].fillna("").astype(str).to_numpy(),
        "lyrics": "",
        "tags": [tags.get(song, []) for song in songs.index],
        "duration_s": songs["duration_s"].to_numpy(),
    })
    interactions = (
        entries.sort_values(["user_id", "position"], kind="stable")
        .groupby(["user_id", "song_id"], sort=False)
        .agg(weight=("position", "size"), position=("position", "first"))
        .reset_index()
    )
    report.written["playlist_entries"] = len(entries)
    return write_interaction_dataset(input, out, catalog, interactions, split, report)
