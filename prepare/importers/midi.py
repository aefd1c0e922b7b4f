"""A folder of MIDI / karaoke files (`.mid`, `.midi`, `.kar`) → dataset folder with rendered audio shards.

Lyrics come from the files' lyric events (or, where a file has none, its text events, as in
Soft Karaoke `.kar` files), joined by the karaoke convention: an event starting with `/` or `\\`
opens a new line, one starting with a space a new word. Notes are rendered at 16 kHz by
FluidSynth when pyfluidsynth works here, else by the project's own synthesiser
(`prepare.demo.synth.render_midi`), and cut to `max_seconds`.

There are no listeners in this source: the interactions table and the splits are written empty
(`splits/meta.json` has no cold-start songs), and shards hold every song, about
`split.val_fraction` of them in val and the rest in train.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd
import pretty_midi
from tqdm import tqdm

from prepare.demo.synth import render_midi
from prepare.report import PrepareReport
from songdata.audio import SAMPLE_RATE
from songdata.dataset import write_tables
from songdata.shards import SkipSample, assign_shard_splits, write_shards
from songdata.splits import SplitConfig, write_splits

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".kar")
PATH_COLUMNS = ("path", "original_path", "lakh_path")
# Folder names that say nothing about the artist ("midi/", "UNSORTED MIDI/", "HITS-90.2/", "S/").
_GENERIC_FOLDER = re.compile(
    r"^(.|unsorted.*|misc.*|various.*|midis?|mid|kar|karaoke|songs?|music|files|[A-Z0-9 ._-]*\d[A-Z0-9 ._-]*)$",
    re.IGNORECASE,
)
_TAG_SEPARATOR = re.compile(r"[;|]")


def read_midi(path: str | Path) -> pretty_midi.PrettyMIDI:
    """Parse a MIDI file; pretty_midi's warnings about odd but usable files are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pretty_midi.PrettyMIDI(str(path))


def midi_lyrics(pm: pretty_midi.PrettyMIDI, until_s: float = float("inf")) -> str:
    """The lyrics of a (karaoke) MIDI sung before `until_s`, one line per `\\n`; `@`/`%` header texts are left out."""
    events = pm.lyrics or [e for e in pm.text_events if not e.text.startswith(("@", "%"))]
    events = [e for e in events if e.time < until_s]
    text = ""
    for event in sorted(events, key=lambda e: e.time):
        piece = event.text.replace("\r\n", "\n").replace("\r", "\n")
        text += "\n" + piece[1:] if piece[:1] in ("/", "\\") else piece
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def karaoke_titles(pm: pretty_midi.PrettyMIDI) -> list[str]:
    """Soft Karaoke `@T` headers: by convention the title, then the artist."""
    return [e.text[2:].strip() for e in pm.text_events if e.text.startswith("@T") and e.text[2:].strip()]


def artist_title_from_path(path: PurePosixPath) -> tuple[str, str]:
    """(artist, title) from `Artist/Title.mid`, `Artist - Title.mid` or `artist_name-song_title.mid`.

    The artist is '' when the path does not name one (letter or collection folders like `S/`, `HITS-90.2/`).
    """
    stem = path.stem
    if " - " in stem:
        artist, title = stem.split(" - ", 1)
        return artist.strip(), title.strip()
    if "_" in stem and stem.count("-") == 1:
        artist, title = stem.replace("_", " ").split("-")
        return artist.strip(), title.strip()
    parent = path.parent.name.split(" - ")[0].strip()
    artist = "" if not parent or _GENERIC_FOLDER.match(parent) else parent
    return artist, stem.replace("_", " ").strip()


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def read_metadata(path: Path) -> dict[str, dict]:
    """Rows of `metadata.csv` keyed by their `file` (relative to the CSV's folder) and by file name.

    Columns: `file` (required); optional `song_id`, `artist`, `title`, `tags` (`;`/`|`-separated),
    `lyrics` (used when the MIDI has none; ` / ` separates lines) and an original path
    (`path`, `original_path` or `lakh_path`) that artist and title are read from.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if "file" not in table.columns:
        raise ValueError(f"{path}: missing column 'file'; expected file[,song_id,artist,title,tags,lyrics,path]")
    rows = {}
    for row in table.to_dict("records"):
        relative = PurePosixPath(row["file"].replace("\\", "/"))
        rows[str(relative)] = row
        rows.setdefault(relative.name, row)
    return rows


@lru_cache(maxsize=1)
def fluidsynth_works() -> bool:
    """Whether pyfluidsynth imports and renders a note with pretty_midi's bundled sound font."""
    try:
        import fluidsynth  # noqa: F401

        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(0)
        piano.notes.append(pretty_midi.Note(100, 60, 0.0, 0.2))
        pm.instruments.append(piano)
        wave = pm.fluidsynth(fs=SAMPLE_RATE)
        return wave.size > 0 and bool(np.isfinite(wave).all())
    except Exception as error:  # missing library, missing binary, broken sound font: fall back, and say so
        log.info("FluidSynth not usable (%s: %s); using the built-in synthesiser", type(error).__name__, error)
        return False


def _truncate(pm: pretty_midi.PrettyMIDI, seconds: float) -> None:
    for instrument in pm.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < seconds]
        for note in instrument.notes:
            note.end = min(note.end, seconds)


@dataclass
class MidiAudio:
    """Audio source for `write_shards`: parses and renders one MIDI file, or skips it with a reason."""

    paths: dict[str, str]
    max_seconds: float
    use_fluidsynth: bool

    def __call__(self, row: dict) -> np.ndarray:
        try:
            pm = read_midi(self.paths[row["song_id"]])
        except Exception as error:  # pretty_midi/mido raise many types for broken files
            raise SkipSample(f"unreadable MIDI ({type(error).__name__})") from error
        _truncate(pm, self.max_seconds)
        if self.use_fluidsynth:
            wave = pm.fluidsynth(fs=SAMPLE_RATE).astype(np.float32)
        else:
            wave = render_midi(pm, SAMPLE_RATE, max_seconds=self.max_seconds)
        return wave[: int(self.max_seconds * SAMPLE_RATE)]


def _catalog_row(
    relative: PurePosixPath, pm: pretty_midi.PrettyMIDI, meta: dict, max_seconds: float, clip_lyrics: bool = False
) -> dict:
    """Catalog fields: metadata columns first, then the (original) path, then karaoke headers."""
    original = next((_text(meta[c]) for c in PATH_COLUMNS if _text(meta.get(c))), "")
    artist, title = artist_title_from_path(PurePosixPath(original.replace("\\", "/")) if original else relative)
    titles = karaoke_titles(pm)
    if clip_lyrics:  # only what is sung within the rendered audio; the metadata's full text would not match it
        lyrics = midi_lyrics(pm, until_s=max_seconds)
    else:
        lyrics = midi_lyrics(pm) or "\n".join(p.strip() for p in _text(meta.get("lyrics")).split(" / ") if p.strip())
    return {
        "song_id": _text(meta.get("song_id")) or relative.stem,
        "artist": _text(meta.get("artist")) or artist or (titles[1] if len(titles) > 1 else ""),
        "title": _text(meta.get("title")) or title,
        "lyrics": lyrics,
        "tags": [t.strip() for t in _TAG_SEPARATOR.split(_text(meta.get("tags"))) if t.strip()],
        "duration_s": min(pm.get_end_time(), max_seconds),
    }


def read_midi_folder(
    input: Path, metadata: dict[str, dict], max_seconds: float, report: PrepareReport, clip_lyrics: bool = False
) -> tuple[pd.DataFrame, dict[str, str]]:
    """(catalog, song_id → absolute path) of every readable MIDI file with notes under `input`."""
    files = sorted(p for p in input.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    rows, paths = [], {}
    for path in tqdm(files, desc="MIDI files", unit="file"):
        relative = PurePosixPath(path.relative_to(input).as_posix())
        try:
            pm = read_midi(path)
        except Exception as error:  # pretty_midi/mido raise many types for broken files
            report.skip(f"unreadable MIDI ({type(error).__name__})", f"{relative}: {error}")
            continue
        if not any(instrument.notes for instrument in pm.instruments):
            report.skip("MIDI without notes", str(relative))
            continue
        meta = metadata.get(str(relative)) or metadata.get(relative.name) or {}
        row = _catalog_row(relative, pm, meta, max_seconds, clip_lyrics)
        if row["song_id"] in paths:
            row["song_id"] = f"{row['song_id']}-{hashlib.md5(path.read_bytes()).hexdigest()[:8]}"
        if row["song_id"] in paths:
            report.skip("same file twice (identical bytes and name)", str(relative))
            continue
        rows.append(row)
        paths[row["song_id"]] = str(path.resolve())
    return pd.DataFrame(rows, columns=["song_id", "artist", "title", "lyrics", "tags", "duration_s"]), paths


def _no_interactions() -> pd.DataFrame:
    columns = {"user_id": str, "song_id": str, "weight": float, "position": int}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def import_midi(
    input: Path,
    out: Path,
    split: SplitConfig | None = None,
    metadata: Path | None = None,
    workers: int = 2,
    max_seconds: float = 30.0,
    renderer: Literal["auto", "fluidsynth", "synth"] = "auto",
    songs_per_shard: int = 64,
    clip_lyrics: bool = False,
) -> PrepareReport:
    """Import a folder of MIDI / karaoke files as a dataset folder: lyrics from lyric events, rendered audio.

    Files that cannot be parsed or hold no notes are counted in the report and left out.
    The interactions table and splits are empty (this source has no listeners); shards hold
    every song, a `split.val_fraction` share in val. Re-running resumes finished shards.

    Args:
        input: Folder searched recursively for .mid, .midi and .kar files.
        out: Dataset folder to write (created if missing; its tables are replaced).
        split: Its val_fraction and seed pick the val songs (defaults to SplitConfig()).
        metadata: CSV with a `file` column (and optional song_id, artist, title, tags, lyrics,
            path); defaults to `input/metadata.csv` when that exists.
        workers: Processes that render audio and write shards.
        max_seconds: Audio is cut after this many seconds.
        renderer: "fluidsynth", "synth" (the built-in synthesiser) or "auto" (FluidSynth when it works).
        songs_per_shard: Songs per shard file.
        clip_lyrics: Keep only the lyric events sung within `max_seconds`, so that lyrics and audio
            cover the same part of the song (the real-song retrieval check needs it).

    Returns:
        Counts of what was written and, per reason, of what was skipped.
    """
    input, out, split = Path(input), Path(out), split or SplitConfig()
    if renderer not in ("auto", "fluidsynth", "synth"):
        raise ValueError(f"renderer must be 'auto', 'fluidsynth' or 'synth', got {renderer!r}")
    if renderer == "fluidsynth" and not fluidsynth_works():
        raise RuntimeError("renderer='fluidsynth' but pyfluidsynth is not usable here (pip install pyfluidsynth)")
    if not input.is_dir():
        raise FileNotFoundError(f"{input}: folder of MIDI files not found")
    metadata = Path(metadata) if metadata is not None else input / "metadata.csv"
    report = PrepareReport()
    catalog, paths = read_midi_folder(
        input, read_metadata(metadata) if metadata.exists() else {}, max_seconds, report, clip_lyrics
    )
    if catalog.empty:
        raise ValueError(f"{input}: no MIDI file could be imported\n{report.summary()}")
    dataset = write_tables(out, catalog, _no_interactions())
    write_splits(out, _no_interactions(), split)
    report.written.update(songs=len(catalog), songs_with_lyrics=int((catalog["lyrics"] != "").sum()))
    assignment = assign_shard_splits(dataset.catalog, [], split.val_fraction, split.seed)
    use_fluidsynth = renderer == "fluidsynth" or (renderer == "auto" and fluidsynth_works())
    source = MidiAudio(paths, max_seconds, use_fluidsynth)
    report.merge(write_shards(out, dataset.catalog, assignment, source, songs_per_shard, workers))
    return report
