"""Two evaluations sharing one cache folder (`generative.cache_dir`) never leave it unreadable."""

from __future__ import annotations

import json
import multiprocessing
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from songdata.atomic_files import write_json_atomic
from taste import EmbeddingLyricJudge

ROUNDS = 15


def _embed_lyrics(cache_dir: str, tag: str) -> None:
    """One evaluation's lyric judge, adding one text at a time (each add rewrites the cache file)."""
    judge = EmbeddingLyricJudge(cache_dir=cache_dir)
    judge.encoder = lambda texts: torch.ones(len(texts), 8)  # no model: only the cache file is under test
    for i in range(ROUNDS):
        judge._embed([f"{tag} {i}"])


def _write_hashes(path: str, tag: str) -> None:
    for i in range(ROUNDS * 4):
        write_json_atomic(Path(path), {f"{tag}-{j}": "0" * 40 for j in range(i * 20)}, sort_keys=True)


def _run_two(target, *args) -> list[multiprocessing.Process]:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(*args, tag)) for tag in ("a", "b")]
    for process in processes:
        process.start()
    return processes


def _read_while_running(processes, read) -> int:
    reads = 0
    while any(p.is_alive() for p in processes):
        reads += read()
        time.sleep(0.001)  # leave the writers the CPU
    for process in processes:
        process.join()
        assert process.exitcode == 0
    return reads


def test_two_processes_adding_lyric_embeddings_to_one_cache_never_corrupt_it(tmp_path):
    processes = _run_two(_embed_lyrics, str(tmp_path))

    def read() -> int:
        for path in tmp_path.glob("lyric-embeddings-*.npz"):
            with np.load(path) as stored:  # raises on half a file (BadZipFile) or a torn member
                assert stored["vectors"].shape == (len(stored["keys"]), 8)
            return 1
        return 0

    assert _read_while_running(processes, read) > 0
    (path,) = tmp_path.glob("lyric-embeddings-*.npz")
    assert zipfile.is_zipfile(path)
    assert len(np.load(path)["keys"]) >= ROUNDS  # the last writer kept at least its own texts
    assert not list(tmp_path.glob("*.tmp"))


def test_two_processes_rewriting_one_json_cache_file_never_leave_half_a_file(tmp_path):
    path = tmp_path / "catalog_audio_hashes.json"
    processes = _run_two(_write_hashes, str(path))

    def read() -> int:
        if path.exists():
            json.loads(path.read_text())  # raises on half a file
            return 1
        return 0

    assert _read_while_running(processes, read) > 0
    assert not list(tmp_path.glob("*.tmp"))
