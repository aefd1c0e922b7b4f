"""Writing webdataset shards: one sample per song (`.flac` 16 kHz mono, `.txt` lyrics, `.json` catalog row).

Shards are written to a temporary name and renamed when complete, with a small record of
what they hold under `shards/done/`; a re-run keeps finished shards and writes only the rest.
`shards/index.json` lists every shard with its sample count (epoch lengths need it).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import webdataset as wds
from tqdm import tqdm

from prepare.report import PrepareReport
from songdata.atomic_files import replace_atomically, write_json_atomic
from songdata.audio import SAMPLE_RATE, decode_audio_bytes, encode_flac
from songdata.dataset import SPLIT_NAMES, DatasetError

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"
INDEX = "index.json"


class SkipSample(Exception):
    """Raised by an audio source when a song cannot be turned into a sample; the message is the reason."""


AudioSource = Callable[[dict], np.ndarray]


@dataclass
class ShardJob:
    """One shard to write: its file name and the catalog rows (with `song_index`) it holds."""

    name: str
    rows: list[dict]


def sample_key(song_index: int) -> str:
    """Webdataset keys may not contain dots, so samples are keyed by catalog row."""
    return f"{song_index:08d}"


def assign_shard_splits(
    catalog: pd.DataFrame, cold_song_ids: list[str], val_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Song-level split of the catalog for shards: cold-start songs → test, a seeded share → val, rest → train."""
    cold = catalog["song_id"].isin(set(cold_song_ids)).to_numpy()
    warm = np.flatnonzero(~cold)
    rng = np.random.default_rng([seed, 3])
    n_val = int(round(val_fraction * len(warm)))
    val = np.sort(rng.choice(warm, size=n_val, replace=False)) if n_val else np.empty(0, dtype=int)
    train = np.setdiff1d(warm, val)
    return {"train": train.tolist(), "val": val.tolist(), "test": np.flatnonzero(cold).tolist()}


def plan_shards(catalog: pd.DataFrame, assignment: dict[str, list[int]], songs_per_shard: int) -> list[ShardJob]:
    jobs = []
    records = catalog.to_dict("records")
    for split in SPLIT_NAMES:
        indices = assignment.get(split, [])
        for shard, start in enumerate(range(0, len(indices), songs_per_shard)):
            rows = [{**records[i], "song_index": int(i)} for i in indices[start : start + songs_per_shard]]
            jobs.append(ShardJob(f"{split}-{shard:06d}.tar", rows))
    return jobs


def _json_row(row: dict) -> dict:
    return {k: (list(v) if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in row.items()}


def write_shard(job: ShardJob, out_dir: Path, source: AudioSource) -> PrepareReport:
    """Write one shard atomically and record what it holds under `done/`."""
    report = PrepareReport()
    keys = []

    def write(f: IO[bytes]) -> None:
        with wds.TarWriter(f) as sink:
            for row in job.rows:
                try:
                    wave = source(row)
                except SkipSample as reason:
                    report.skip(str(reason), row["song_id"])
                    continue
                if wave.size == 0 or not np.isfinite(wave).all():
                    report.skip("empty or non-finite audio", row["song_id"])
                    continue
                meta = _json_row({**row, "duration_s": round(len(wave) / SAMPLE_RATE, 3)})
                key = sample_key(row["song_index"])
                sink.write({"__key__": key, "flac": encode_flac(wave), "txt": row["lyrics"] or "", "json": meta})
                keys.append(key)

    replace_atomically(out_dir / job.name, write, sole_writer=True)  # a killed run's .part is reused
    report.written["samples"] += len(keys)
    record = {"name": job.name, "count": len(keys), "skipped": dict(report.skipped), "examples": report.examples}
    write_json_atomic(out_dir / "done" / (job.name + ".json"), record, indent=2, sort_keys=True)
    return report


def _finished(out_dir: Path, job: ShardJob) -> bool:
    return (out_dir / job.name).exists() and (out_dir / "done" / (job.name + ".json")).exists()


def _single_threaded_worker() -> None:
    """A forked worker must not enter the parent's OpenMP pool (libgomp deadlocks after fork);
    one torch thread per worker runs every op inline, and the workers are the parallelism."""
    import torch

    torch.set_num_threads(1)


def write_shards(
    root: str | Path,
    catalog: pd.DataFrame,
    assignment: dict[str, list[int]],
    source: AudioSource,
    songs_per_shard: int = 64,
    workers: int = 2,
) -> PrepareReport:
    """Render every song through `source` into shards under `root/shards`, in parallel and resumably.

    `source` must be picklable (a module-level function or a dataclass instance) when workers > 1.
    """
    out_dir = shard_dir(root)
    (out_dir / "done").mkdir(parents=True, exist_ok=True)
    jobs = plan_shards(catalog, assignment, songs_per_shard)
    todo = [job for job in jobs if not _finished(out_dir, job)]
    report = PrepareReport()
    if len(todo) < len(jobs):
        log.info("%s: keeping %d finished shard(s), writing %d", out_dir, len(jobs) - len(todo), len(todo))
    progress = tqdm(total=sum(len(j.rows) for j in todo), desc="shards", unit="song")
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_threaded_worker) as pool:
            futures = [pool.submit(write_shard, job, out_dir, source) for job in todo]
            for job, future in zip(todo, futures):
                report.merge(future.result())
                progress.update(len(job.rows))
    else:
        for job in todo:
            report.merge(write_shard(job, out_dir, source))
            progress.update(len(job.rows))
    progress.close()
    write_index(out_dir, jobs)
    return report


def write_index(out_dir: Path, jobs: list[ShardJob]) -> dict:
    """Build `index.json` from the per-shard records, so it is right even after a resumed run."""
    index: dict = {"sample_rate": SAMPLE_RATE, "splits": {name: [] for name in SPLIT_NAMES}}
    for job in jobs:
        record = json.loads((out_dir / "done" / (job.name + ".json")).read_text())
        split = job.name.split("-")[0]
        index["splits"][split].append({"url": job.name, "count": record["count"]})
    write_json_atomic(out_dir / INDEX, index, indent=2, sort_keys=True)
    return index


def shard_dir(root: str | Path) -> Path:
    """The shard folder of a dataset folder (the only place its name is spelt)."""
    return Path(root) / SHARDS_DIR


def read_index(root: str | Path) -> dict:
    """Read `shards/index.json`; an error names the file when it is missing or malformed.

    The folder is untrusted: every shard it names must be a plain file name whose file (links
    followed) lies inside `shards/`; an entry that escapes the folder is refused by name, unread.
    """
    path = shard_dir(root) / INDEX
    require_inside(Path(root), path)
    try:
        index = json.loads(path.read_text())
        index["splits"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise FileNotFoundError(f"{path}: missing or malformed shard index ({error})") from error
    if not isinstance(index["splits"], dict):
        raise DatasetError(f"{path}: 'splits' must map split names to lists of shards")
    for split, entries in index["splits"].items():
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            _check_shard_entry(Path(root), path, f"splits.{split}[{i}]", entry)
    return index


SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_shard_entry(root: Path, index_path: Path, where: str, entry: object) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise DatasetError(f"{index_path}: {where} must be {{\"url\": <shard file name>, \"count\": <songs>}}, got {entry!r}")
    name, count = entry["url"], entry.get("count")
    if not SHARD_NAME.fullmatch(name):
        raise DatasetError(
            f"{index_path}: {where}.url {name!r} is not a plain shard file name in {SHARDS_DIR}/ "
            "(letters, digits, '.', '_', '-'); refused, nothing outside the dataset folder is read"
        )
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise DatasetError(f"{index_path}: {where}.count must be a whole number >= 0, got {count!r}")
    require_inside(root, root / SHARDS_DIR / name)


def require_inside(root: Path, path: Path) -> None:
    """Refuse `path` when it (links followed) lies outside the dataset folder `root`."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise DatasetError(
            f"{path}: points outside the dataset folder {root} (to {path.resolve()}); refused, not read"
        )


def iter_shard_songs(
    urls: list[str], source: str | Path, skipped: Counter | None = None, songs: set[int] | None = None,
    n_songs: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(song index, full waveform) for every decodable song in the shards at `urls` (or only for `songs`:
    the others are passed over undecoded). `source` names the dataset in log lines.

    Shard members are untrusted: what cannot be read is skipped, logged, and counted by reason in
    `skipped`: per sample `unreadable sample metadata` (no `.json`, not JSON, no whole `song_index`),
    `song index outside the catalog` (not in [0, n_songs) where `n_songs` is given) and `undecodable
    audio`; per read error `unreadable shard data (<error>)` (a truncated shard loses its remaining songs).
    """
    skipped = Counter() if skipped is None else skipped

    def unreadable(error: Exception) -> bool:
        skipped[f"unreadable shard data ({type(error).__name__})"] += 1
        log.warning("%s: skipping unreadable shard data (%s)", source, error)
        return True

    def skip(reason: str, sample: dict, error: object) -> None:
        skipped[reason] += 1
        log.warning("%s: skipping sample %r: %s (%s)", source, str(sample.get("__key__"))[:40], reason, error)

    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False, handler=unreadable):
        try:
            song = _song_index(sample)
        except ValueError as error:
            skip("unreadable sample metadata", sample, error)
            continue
        if n_songs is not None and not 0 <= song < n_songs:
            skip("song index outside the catalog", sample, song)
        elif songs is None or song in songs:
            try:
                wave = decode_audio_bytes(sample["flac"])
            except Exception as error:  # a corrupt member must not stop the whole evaluation
                skip("undecodable audio", sample, error)
                continue
            yield song, wave
    if skipped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
        log.warning("%s: skipped reading the shards: %s", source, reasons)


def _song_index(sample: dict) -> int:
    """The catalog row a sample's `.json` names; ValueError when it names none."""
    try:
        meta = json.loads(sample["json"])
        song = meta["song_index"]
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"no readable song_index ({type(error).__name__})") from error
    if not isinstance(song, int) or isinstance(song, bool):
        raise ValueError(f"song_index {str(song)[:20]!r} is not a whole number")
    return song
