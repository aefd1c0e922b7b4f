"""A user's mistake on any entry point is one line `error: ...` and exit status 2, with no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and done.stderr.rstrip().endswith(errors[0]), done.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("command, named", [
    (["evaluate.py", "--config", "eval.yaml", "--data.root", "/no/such/folder"], "/no/such/folder"),
    (["-m", "generative", "--config", "generate.yaml", "--data.root", "/no/such/folder"], "/no/such/folder"),
    (["train.py", "--config", "smoke.yaml", "--data.root", "/no/such/folder"], "/no/such/folder"),
    (["prepare_data.py", "manifest", "--input", "/no/such/manifest.csv", "--out", "/no/such/out"], "manifest.csv"),
    (["evaluate.py", "--config", "eval.yaml", "--no-such-option", "1"], "--no-such-option"),
    (["train.py", "--config", "no-such-config.yaml"], "no-such-config.yaml"),
    (["evaluate.py", "--config", "eval.yaml", "--ks", "abc"], '"ks"'),
])
def test_a_user_error_is_one_line_naming_the_thing_and_exit_status_2(command, named):
    assert named in _one_error_line(_run(*command))


def test_debug_shows_the_traceback_of_a_user_error():
    done = _run("evaluate.py", "--config", "eval.yaml", "--data.root", "/no/such/folder", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr and "/no/such/folder" in done.stderr
