"""yes.com radio playlists (Chen et al., KDD 2012) → dataset folder, one playlist per user.

Files: `song_hash.txt` (`id <TAB> title <TAB> artist`, text with JSON-style escapes such as
`\\/`), `tag_hash.txt` (`id, tag`), `tags.txt` (line i: song i's space-separated tag ids,
`#` for none) and playlist files (one playlist per line, space-separated song ids; lines
starting with `#` are comments or headers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from prepare.importers import write_interaction_dataset
from prepare.report import PrepareReport
from songdata.splits import SplitConfig

PLAYLIST_FILES = ("train.txt", "test.txt", "playlists.txt")
USER_PREFIX = "yes-pl-"
SONG_PREFIX = "yes-"
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"/": "/", "\\": "\\", '"': '"', "t": " ", "n": " "}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a file, each line decoded as UTF-8 or else latin-1."""
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, raw.decode("latin-1").rstrip("\r\n")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text.strip()
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), text).strip()


def read_songs(folder: Path, report: PrepareReport) -> pd.DataFrame:
    """Title, artist and tags per integer song id, from song_hash.txt, tags.txt and tag_hash.txt."""
    path = folder / "song_hash.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: yes.com song list not found (expected `id<TAB>title<TAB>artist` lines)")
    songs = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) == 3 and fields[0].strip().isdigit():
            if int(fields[0]) in songs:
                report.skip("repeated id in song_hash.txt (first kept)", f"{path.name}:{number}: {line[:80]!r}")
                continue
            songs[int(fields[0])] = (_unescape(fields[1]), _unescape(fields[2]))
        elif line.strip():
            reason = "malformed line in song_hash.txt (expected id<TAB>title<TAB>artist)"
            report.skip(reason, f"{path.name}:{number}: {line[:80]!r}")
    table = pd.DataFrame.from_dict(songs, orient="index", columns=["title", "artist"])
    tags = _read_tags(folder, report)
    table["tags"] = [tags.get(song, []) for song in table.index]
    return table


def _read_tags(folder: Path, report: PrepareReport) -> dict[int, list[str]]:
    """Tag names per song id (line i of tags.txt is song i); empty without tags.txt and tag_hash.txt."""
    tag_path, names_path = folder / "tags.txt", folder / "tag_hash.txt"
    if not tag_path.exists() or not names_path.exists():
        return {}
    names = {}
    for number, line in _lines(names_path):
        tag_id, sep, name = line.partition(",")
        if sep and tag_id.strip().isdigit():
            names[tag_id.strip()] = name.strip()
        elif line.strip():
            reason = "malformed line in tag_hash.txt (expected `id, tag`)"
            report.skip(reason, f"{names_path.name}:{number}: {line[:80]!r}")
    tags = {}
    for number, line in _lines(tag_path):
        ids = line.split()
        if ids == ["#"] or not ids:
            continue
        known = [names[i] for i in ids if i in names]
        if len(known) < len(ids):
            report.skip("unknown tag id in tags.txt", f"{tag_path.name}:{number}: {line[:80]!r}")
        tags[number - 1] = known
    return tags


def read_playlists(folder: Path, known: set[int], report: PrepareReport) -> pd.DataFrame:
    """One row per (playlist, song): weight = times the song occurs, position = its first index."""
    paths = [folder / name for name in PLAYLIST_FILES if (folder / name).exists()]
    if not paths:
        raise FileNotFoundError(f"{folder}: no playlist file (expected one of {list(PLAYLIST_FILES)})")
    rows, n_playlists = [], 0
    for path in paths:
        for number, line in _lines(path):
            if line.startswith("#") or not line.strip():
                continue
            tokens = line.split()
            if not all(token.isdigit() for token in tokens):
                reason = "malformed playlist line (expected space-separated song ids)"
                report.skip(reason, f"{path.name}:{number}: {line[:80]!r}")
                continue
            ids = [int(token) for token in tokens]
            unknown = [song for song in ids if song not in known]
            for song in unknown:
                report.skip("song id not in song_hash.txt", f"{path.name}:{number}: {song}")
            ids = [song for song in ids if song in known]
            if not ids:
                report.skip("playlist without known songs", f"{path.name}:{number}")
                continue
            user = f"{USER_PREFIX}{n_playlists}"
            n_playlists += 1
            report.written["playlist_entries"] += len(ids)
            counts = Counter(ids)
            first = {}
            for position, song in enumerate(ids):
                first.setdefault(song, position)
            rows.extend((user, song, counts[song], position) for song, position in first.items())
    return pd.DataFrame(rows, columns=["user_id", "song", "weight", "position"])


def import_yes(input: Path, out: Path, split: SplitConfig | None = None) -> PrepareReport:
    """Import yes.com radio playlists as a dataset folder: each playlist is a user.

    Playlists are numbered in file order (`yes-pl-0`, `yes-pl-1`, ...) across `train.txt`,
    `test.txt` and `playlists.txt`, whichever exist, read in that order. One interaction
    per (playlist, song): weight = how often the song occurs in the playlist, position =
    where it first occurs. The catalog holds only the songs that occur in at least one
    playlist (song id `yes-<id>` with the integer id of `song_hash.txt`), with title,
    artist and Last.fm tags; no lyrics or audio. The shared 1,000-playlist sample gives
    1,000 users over 25,179 songs.

    Args:
        input: Folder with `song_hash.txt`, the playlist file(s) and optionally `tags.txt`
            and `tag_hash.txt`.
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: How interactions are split into train/val/test (defaults to SplitConfig()).

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out = Path(input), Path(out)
    report = PrepareReport()
    songs = read_songs(input, report)
    playlists = read_playlists(input, set(songs.index), report)
    used = songs.loc[sorted(playlists["song"].unique())]
    catalog = pd.DataFrame({
        "song_id": SONG_PREFIX + used.index.astype(str),
        "artist": used["artist"].to_numpy(),
        "title": used["title"].to_numpy(),
        "lyrics": "",
        "tags": used["tags"].to_numpy(),
        "duration_s": 0.0,
    })
    interactions = playlists.assign(song_id=SONG_PREFIX + playlists["song"].astype(str)).drop(columns="song")
    return write_interaction_dataset(input, out, catalog, interactions, split, report)
