"""songdata.atomic_files: a file is replaced whole or left as it was, with nothing left beside it."""

from __future__ import annotations

import json
import os
import stat

import pytest

from songdata.atomic_files import replace_atomically, write_json_atomic


class Interrupted(Exception):
    pass


def _write_half_then_fail(f) -> None:
    f.write(b"the first half of the new")
    f.flush()
    raise Interrupted


@pytest.mark.parametrize("sole_writer", [False, True])
def test_a_writer_that_fails_midway_leaves_the_old_file_and_no_temporary_file(tmp_path, sole_writer):
    path = tmp_path / "table.bin"
    path.write_bytes(b"old content")
    with pytest.raises(Interrupted):
        replace_atomically(path, _write_half_then_fail, sole_writer=sole_writer)
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["table.bin"]


def test_a_keyboard_interrupt_also_removes_the_temporary_file(tmp_path):
    def interrupted(f) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(tmp_path / "new.bin", interrupted)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fsync", [False, True])
def test_a_successful_write_replaces_the_content_and_creates_missing_folders(tmp_path, fsync, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    path = tmp_path / "a" / "b" / "file.bin"
    replace_atomically(path, lambda f: f.write(b"first"), fsync=fsync)
    replace_atomically(path, lambda f: f.write(b"second"), fsync=fsync)
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["file.bin"]
    assert len(synced) == (2 if fsync else 0)


def test_the_temporary_file_is_beside_the_target_and_unique_unless_sole_writer(tmp_path):
    seen = []

    def record(f) -> None:
        seen.append(f.name)
        f.write(b"x")

    path = tmp_path / "cache.json"
    replace_atomically(path, record)
    replace_atomically(path, record)
    replace_atomically(path, record, sole_writer=True)
    names = [os.path.basename(name) for name in seen]
    assert all(os.path.dirname(name) == str(tmp_path) for name in seen)
    assert names[0] != names[1] and all(n.startswith(".cache.json.") and n.endswith(".tmp") for n in names[:2])
    assert names[2] == "cache.json.part"


def test_a_part_file_left_by_a_killed_sole_writer_is_reused(tmp_path):
    path = tmp_path / "last.ckpt"
    (tmp_path / "last.ckpt.part").write_bytes(b"torn")
    replace_atomically(path, lambda f: f.write(b"whole"), fsync=True, sole_writer=True)
    assert path.read_bytes() == b"whole" and os.listdir(tmp_path) == ["last.ckpt"]


def test_the_new_file_gets_the_permissions_open_gives(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    replace_atomically(tmp_path / "atomic", lambda f: f.write(b""))
    assert stat.S_IMODE((tmp_path / "atomic").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_write_json_atomic_passes_the_formatting_on(tmp_path):
    path = tmp_path / "meta.json"
    write_json_atomic(path, {"b": 1, "a": "é"}, indent=2, sort_keys=True)
    assert path.read_text(encoding="utf-8") == json.dumps({"a": "é", "b": 1}, indent=2)
    write_json_atomic(str(path), [1, 2])
    assert json.loads(path.read_text()) == [1, 2]
