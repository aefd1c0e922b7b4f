"""The dataset folder is untrusted input: what escapes it is refused unread, bad audio is refused or bounded."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songdata.audio import decode_audio_bytes, decode_segments, to_mono_16k
from songdata.dataset import DatasetError
from songdata.shards import INDEX, SHARDS_DIR, read_index
from tests.conftest import write_tiny_dataset

OPENED: list[str] = []


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)  # audit hooks stay for the process; this one only appends to a list


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("hostile") / "tiny")


def _with_first_shard(tiny: Path, tmp_path: Path, name: str) -> Path:
    """A copy of the tiny folder whose index calls its first train shard `name`."""
    root = tmp_path / "copy"
    shutil.copytree(tiny, root)
    index = json.loads((root / SHARDS_DIR / INDEX).read_text())
    index["splits"]["train"][0]["url"] = name
    (root / SHARDS_DIR / INDEX).write_text(json.dumps(index))
    return root


@pytest.mark.parametrize("name", ["../../outside/secret.tar", "/etc/passwd", "sub/train.tar", "pipe:cat /etc/passwd",
                                  "..", ""])
def test_a_shard_name_that_leaves_the_folder_is_refused_by_entry_and_nothing_outside_is_opened(tiny, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.tar").write_bytes(b"not yours")
    root = _with_first_shard(tiny, tmp_path, name)
    OPENED.clear()
    with pytest.raises(DatasetError, match=r"splits\.train\[0\]\.url") as error:
        read_index(root)
    assert repr(name) in str(error.value)
    assert not [p for p in OPENED if "outside" in p or p.startswith("/etc")]


def test_a_shard_linked_to_a_file_outside_the_folder_is_refused_unread(tiny, tmp_path):
    outside = tmp_path / "outside.tar"
    outside.write_bytes(b"not yours")
    root = _with_first_shard(tiny, tmp_path, "escape.tar")
    (root / SHARDS_DIR / "escape.tar").symlink_to(outside)
    OPENED.clear()
    with pytest.raises(DatasetError, match="escape.tar: points outside the dataset folder"):
        read_index(root)
    assert str(outside) not in OPENED


def test_a_shard_index_linked_outside_the_folder_is_refused_unread(tiny, tmp_path):
    root = _with_first_shard(tiny, tmp_path, "train-000000.tar")
    elsewhere = tmp_path / "index-elsewhere.json"
    (root / SHARDS_DIR / INDEX).rename(elsewhere)
    (root / SHARDS_DIR / INDEX).symlink_to(elsewhere)
    OPENED.clear()
    with pytest.raises(DatasetError, match="index.json: points outside the dataset folder"):
        read_index(root)
    assert str(elsewhere) not in OPENED


entries = st.one_of(
    st.text(max_size=12), st.integers(), st.none(), st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"url": st.text(max_size=16), "count": st.one_of(st.integers(-3, 3), st.text(max_size=2),
                                                                          st.booleans(), st.none())}),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(splits=st.dictionaries(st.sampled_from(["train", "val", "test", "x"]), st.lists(entries, max_size=3), max_size=3))
def test_any_index_is_read_whole_or_refused_with_a_dataset_error(tmp_path, splits):
    """Generated indexes: either every entry is a plain shard name with a count, or a DatasetError names one."""
    (tmp_path / SHARDS_DIR).mkdir(exist_ok=True)
    (tmp_path / SHARDS_DIR / INDEX).write_text(json.dumps({"splits": splits}))
    try:
        index = read_index(tmp_path)
    except DatasetError as error:
        assert str(tmp_path / SHARDS_DIR / INDEX) in str(error)
        return
    for entry in (e for listed in index["splits"].values() for e in listed):
        assert (tmp_path / SHARDS_DIR / entry["url"]).resolve().parent == (tmp_path / SHARDS_DIR).resolve()
        assert isinstance(entry["count"], int) and entry["count"] >= 0


# ---- audio members --------------------------------------------------------------------------
def _encode(wave: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "FLOAT") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("wave, problem", [
    (np.zeros(0, np.float32), "0 samples"),
    (np.array([0.1, np.nan, np.inf, -np.inf], np.float32), "3 NaN or infinite sample"),
])
def test_audio_without_samples_or_with_non_finite_ones_is_refused_by_problem(wave, problem):
    with pytest.raises(ValueError, match=problem):
        decode_audio_bytes(_encode(wave, 16_000))


def test_one_sample_of_audio_is_one_sample():
    assert decode_audio_bytes(_encode(np.full(1, 0.25, np.float32), 16_000)).tolist() == [0.25]


def test_other_sample_rates_and_stereo_become_16k_mono_segment_by_segment():
    t = np.arange(44_100 * 20) / 44_100
    stereo = (0.4 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 220 * t)], axis=1)).astype(np.float32)
    data = _encode(stereo, 44_100)
    whole = to_mono_16k(stereo, 44_100)
    segments, frames = decode_segments(data, 16_000, lambda n: [80_000, n - 4_000])
    assert frames == len(whole) == 320_000
    np.testing.assert_allclose(segments[0][200:-200], whole[80_200:95_800], atol=1e-3)
    np.testing.assert_allclose(segments[1][200:3_800], whole[-3_800:-200], atol=1e-3)
    assert not segments[1][4_000:].any()  # past the end: zero-padded


def test_a_long_member_is_neither_decoded_whole_for_segments_nor_beyond_the_cap_for_songs():
    """10 minutes of 48 kHz stereo (a stand-in for hours: memory must not grow with the length)."""
    data = _encode(np.zeros((48_000 * 600, 2), np.float32), 48_000, "FLAC", "PCM_16")
    whole_bytes, cap_bytes = 600 * 16_000 * 4, 60 * 16_000 * 4
    tracemalloc.start()
    try:
        decode_segments(data, 48_000, lambda n: [0, n // 2])
        segment_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        song = decode_audio_bytes(data, max_seconds=60)
        song_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(song) == 60 * 16_000
    assert segment_peak < whole_bytes / 10 and song_peak < 4 * cap_bytes, (segment_peak, song_peak)
