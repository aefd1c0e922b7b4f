"""Generated bad shard members: the reader skips and counts them or refuses naming the file, never crashes
with another exception, and never reads or writes outside the dataset folder."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from songdata import SongDataset
from songdata.dataset import DatasetError, write_tables
from songdata.shards import INDEX, SHARDS_DIR, iter_shard_songs, sample_key

N_SONGS = 5
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _audio(wave: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, 16_000, format=fmt, subtype="FLOAT" if fmt == "WAV" else "PCM_16")
    return buffer.getvalue()


song_indices = st.one_of(st.integers(-2, N_SONGS + 2), st.just(2**70), st.text(max_size=3), st.floats(), st.none(),
                         st.booleans(), st.lists(st.integers(), max_size=2))
metadata = st.one_of(
    song_indices.map(lambda i: json.dumps({"song_index": i}).encode()),
    st.binary(max_size=20), st.just(b"[" * 5000), st.just(b"{}"), st.just(b"\xff\xfe{"),
)
audio = st.one_of(
    st.integers(0, 3).map(lambda n: _audio(np.full(n, 0.25, np.float32), "FLAC")),
    st.just(_audio(np.array([0.1, np.nan, np.inf], np.float32), "WAV")),
    st.just(_audio(np.zeros(0, np.float32), "WAV")),
    st.binary(max_size=40),
)
good = st.fixed_dictionaries({
    "json": st.integers(0, N_SONGS - 1).map(lambda i: json.dumps({"song_index": i}).encode()),
    "flac": st.integers(1, 3).map(lambda n: _audio(np.full(n, 0.25, np.float32), "FLAC")),
})
bad = st.fixed_dictionaries({}, optional={"json": metadata, "flac": audio, "txt": st.binary(max_size=8)})
members = st.lists(st.one_of(good, bad), max_size=6)


def _tar(path: Path, samples: list[dict], names: list[str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, sample in enumerate(samples):
            for extension, data in sample.items():
                info = tarfile.TarInfo(f"{(names or [])[i] if names else sample_key(i)}.{extension}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _sound(song: int, wave: np.ndarray) -> None:
    assert 0 <= song < N_SONGS and wave.dtype == np.float32 and wave.size > 0 and np.isfinite(wave).all()


@SETTINGS
@given(samples=members, cut=st.one_of(st.none(), st.integers(0, 3000)), garbage=st.booleans())
def test_generated_members_are_decoded_or_skipped_and_counted(tmp_path, samples, cut, garbage):
    url = tmp_path / "shard.tar"
    data = _tar(url, samples)
    if garbage:
        url.write_bytes(bytes(reversed(data)) or b"\x00")
    elif cut is not None:
        url.write_bytes(data[:cut])
    skipped = Counter()
    read = list(iter_shard_songs([str(url)], "fuzz", skipped, n_songs=N_SONGS))
    for song, wave in read:
        _sound(song, wave)
    if not garbage and cut is None:
        event("whole shard")
        assert len(read) + sum(skipped.values()) == len([s for s in samples if s])
    event("read some" if read else "read none")


@SETTINGS
@given(samples=members)
def test_only_the_wanted_songs_are_decoded(tmp_path, samples):
    url = tmp_path / "shard.tar"
    _tar(url, samples)
    for song, wave in iter_shard_songs([str(url)], "fuzz", Counter(), songs={1, 3}, n_songs=N_SONGS):
        assert song in {1, 3}
        _sound(song, wave)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("untrusted") / "set"
    catalog = pd.DataFrame({"song_id": [f"s{i}" for i in range(N_SONGS)], "artist": "a", "title": "t", "lyrics": "",
                            "tags": [[] for _ in range(N_SONGS)], "duration_s": 1.0})
    interactions = pd.DataFrame({"user_id": "u", "song_id": ["s0"], "weight": [1.0], "position": [0]})
    write_tables(root, catalog, interactions)
    (root / SHARDS_DIR).mkdir()
    (root / SHARDS_DIR / INDEX).write_text(json.dumps({"splits": {"train": [{"url": "train-0.tar", "count": 1}]}}))
    return root


member_names = st.one_of(st.integers(0, N_SONGS + 3).map(sample_key), st.sampled_from(
    ["../../outside/evil", "/tmp/evil", "abc", "²", "-1", "1e3", "0x1", "a/b/00000001", ""]))


@SETTINGS
@given(samples=members, names=st.lists(member_names, min_size=6, max_size=6))
def test_a_folder_with_generated_members_is_read_sound_or_refused_by_shard(folder, samples, names):
    shard = folder / SHARDS_DIR / "train-0.tar"
    _tar(shard, samples, names)
    before = sorted(p.name for p in folder.parent.iterdir())
    dataset = SongDataset(folder, require_splits=False)
    try:
        listed = dataset.shard_songs("train")
        assert ((listed >= 0) & (listed < N_SONGS)).all()
        event("listed")
    except DatasetError as error:
        assert str(shard) in str(error)
        event("refused")
    for song, wave in dataset.iter_songs(skipped=Counter()):
        _sound(song, wave)
    assert sorted(p.name for p in folder.parent.iterdir()) == before  # nothing written beside the folder
