"""The run folder's `manifest.jsonl`: an append-only log of every run, request and clip.

One JSON object per line, written with flush + fsync, so a crash loses at most the line being
written (a torn last line is skipped on load and reported). Record kinds:

- `run`: when a run started, its config (secrets masked), data root and users.
- `request`: a request's state for one user, slot and attempt: `submitted` (with the backend's
  `job`, e.g. Suno clip ids, stored before waiting), `pending` (waited too long: collected again
  on the next run), `complete`, `failed` (retried with `--retry_failed true`), `not_submitted` /
  `out_of_credits` (nothing was made: tried again on the next run). The latest record wins.
- `song`: one clip with its prompt, backend, model, audio path (relative to the run folder),
  lyrics, title, tags, duration and status.

A lock file keeps two runs from writing the same folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
LOCK = ".manifest.lock"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_records(path: Path) -> list[dict]:
    """Every well-formed record of a manifest file (a torn or corrupt line is skipped and reported)."""
    if not path.exists():
        return []
    records, bad = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(number)
    if bad:
        log.warning("%s: skipped %d unreadable line(s): %s", path, len(bad), bad[:10])
    return records


def request_states(records: list[dict]) -> dict[str, dict]:
    """The latest record of each request id."""
    return {r["request_id"]: r for r in records if r.get("kind") == "request"}


def song_records(
    records: list[dict], out: Path, users: list[str] | None = None, status: str | None = "complete"
) -> list[dict]:
    """Song records (the latest per song id) with `audio_path` made absolute; `status=None` keeps failures too."""
    latest: dict[str, dict] = {}
    for record in records:
        if record.get("kind") == "song":
            latest[record["song_id"]] = record
    wanted = set(users) if users is not None else None
    songs = []
    for record in latest.values():
        if status is not None and record.get("status") != status:
            continue
        if wanted is not None and record["user_id"] not in wanted:
            continue
        audio = record.get("audio_path")
        songs.append({**record, "audio_path": str(out / audio) if audio else None})
    return songs


def load_manifest(out: str | Path) -> list[dict]:
    """Every record of a run folder's manifest, in order (audio paths as stored: relative to `out`)."""
    return read_records(Path(out) / MANIFEST)


def load_songs(out: str | Path, users: list[str] | None = None) -> list[dict]:
    """The finished songs of a run folder (optionally of some users), audio paths absolute."""
    out = Path(out)
    return song_records(load_manifest(out), out, users)


class Manifest:
    """The writer of a run folder's manifest (use as a context manager; one writer per folder)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / MANIFEST
        self._lock = open(self.out / LOCK, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(f"{self.out}: another generation run is writing this folder") from None
        self.records = read_records(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        if self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write("\n")  # end a torn line so the next record starts on its own

    def append(self, record: dict) -> dict:
        """Write one record durably (flush + fsync) and keep it in `records`."""
        record = {"time": _now(), **record}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records.append(record)
        return record

    def close(self) -> None:
        self._file.close()
        self._lock.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
