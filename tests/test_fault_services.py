"""Fault drills for the services a run talks to: a generation run killed with SIGKILL mid-batch, and Suno
and judge servers that answer garbage, fail forever or answer too slowly. Cases that test_suno_client.py,
test_generation_run.py and test_lyric_judge.py already cover (a 5xx then success, 402, 401, a judge
timeout, unparseable judge text) are not repeated here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from generative.__main__ import load_config, main
from generative.manifest import load_manifest, load_songs
from generative.run import choose_users, generate_for_users
from prepare.demo import build_demo_world
from songdata import SongDataset
from taste import LLMLyricJudge, OpenAIChatBackend, TasteSong
from tests.chat_server import ChatServer, Reply
from tests.suno_server import FakeSuno

REPO = Path(__file__).resolve().parents[1]
HISTORY = [TasteSong("h1", "Salt wind over the harbour\nthe boats come home at dawn", weight=3)]
CANDIDATE = TasteSong("c1", "Tide rolls in at the harbour")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, SongDataset]:
    root = tmp_path_factory.mktemp("faults") / "world"
    build_demo_world(root, scale=0.1, song_seconds=1.0, workers=1)
    return root, SongDataset(root)


def suno_args(url: str, *extra: str) -> list[str]:
    return [
        "--generator.backend", "suno", "--generator.base_url", url, "--generator.poll_interval_s", "0.01",
        "--generator.backoff_s", "0.01", "--generator.poll_timeout_s", "30", "--generator.seconds", "1", *extra,
    ]


def requests_of(out: Path) -> dict[str, dict]:
    return {r["request_id"]: r for r in load_manifest(out) if r["kind"] == "request"}


def wait_for(condition, process: subprocess.Popen, log: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"generation exited early ({process.returncode}): {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"condition not reached in {timeout_s} s: {log.read_text()[-3000:]}")
        time.sleep(0.02)


def test_generation_killed_while_polling_resumes_without_loss_or_repeat(world, tmp_path):
    """SIGKILL while the second user's clips are being polled; the same command again finishes every user."""
    root, _ = world
    out, log = tmp_path / "out", tmp_path / "generate.log"
    with FakeSuno() as suno:
        suno.stall_after_submits = 2
        args = ["--config", "generate.yaml", "--data.root", str(root), "--out", str(out), "--num_users", "3",
                *suno_args(suno.url)]
        with open(log, "w") as sink:
            process = subprocess.Popen([sys.executable, "-m", "generative", *args], cwd=REPO, stdout=sink, stderr=sink)
        wait_for(lambda: len(suno.accepted) == 2, process, log)
        polls = suno.counts["get"]
        wait_for(lambda: suno.counts["get"] >= polls + 3, process, log)  # polling the stalled clips
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        finished = {s["song_id"]: os.stat(s["audio_path"]).st_mtime_ns for s in load_songs(out)}
        states = requests_of(out)
        assert len(finished) == 2 and [s["status"] for s in states.values()] == ["complete", "submitted"]

        suno.stall, suno.stall_after_submits = False, None
        run = main(args)
        assert run.counts == {"skipped_complete": 1, "complete": 2} and len(run.songs) == 6
        assert len(suno.accepted) == suno.counts["custom_generate"] == 3  # the killed request was collected
    assert {s["status"] for s in requests_of(out).values()} == {"complete"}
    songs = {s["song_id"]: s for s in run.songs}
    assert all(os.stat(songs[i]["audio_path"]).st_mtime_ns == mtime for i, mtime in finished.items())
    assert set(Counter(r["song_id"] for r in load_manifest(out) if r["kind"] == "song").values()) == {1}
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.tmp"))  # no temporary file left


def test_garbage_poll_answers_are_retried_then_left_pending_not_paid_again(world, tmp_path):
    """A 200 that is not JSON, then JSON of the wrong shape, to a poll: bounded retries, then `pending`."""
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 2, seed=0)
    with FakeSuno() as suno:
        suno.garble["get"] = [b"<html>502 Bad Gateway</html>", {"detail": "not a clip list"}]
        config = load_config(suno_args(suno.url, "--generator.max_retries", "1"))
        run = generate_for_users(dataset, users, config, tmp_path / "out")
        assert run.counts == {"pending": 1, "complete": 1} and suno.counts["get"] == 2 + 4
        first = requests_of(tmp_path / "out")[f"{data.user_ids[users[0]]}/0"]
        assert first["status"] == "pending" and first["job"]["clip_ids"] == ["clip-0001", "clip-0002"]
        assert "expected a list of clips" in first["error"] and "after 2 attempts" in first["error"]
        run = generate_for_users(dataset, users, config, tmp_path / "out")
        assert run.counts == {"complete": 1, "skipped_complete": 1} and len(run.songs) == 4
        assert len(suno.accepted) == suno.counts["custom_generate"] == 2


@pytest.mark.parametrize("fault", ["garbage", "slow", "hang_up"])
def test_a_submission_answered_badly_is_never_sent_twice(world, tmp_path, fault):
    """A paid submission answered with garbage, too late or not at all is recorded as failed, not resubmitted."""
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 1, seed=0)
    with FakeSuno() as suno:
        if fault == "garbage":
            suno.garble["custom_generate"] = [b"<html>oops</html>"]
        elif fault == "slow":
            suno.slow["custom_generate"] = [1.5]
        else:
            suno.hang_up["custom_generate"] = 1
        config = load_config(suno_args(suno.url, "--generator.request_timeout_s", "0.3"))
        run = generate_for_users(dataset, users, config, tmp_path / "out")
        assert run.counts == {"failed": 1} and run.songs == []
        (request,) = requests_of(tmp_path / "out").values()
        assert request["status"] == "failed" and "may still have been submitted" in request["error"]
        assert request["job"] is None and request["retry"] == "submit"
        assert generate_for_users(dataset, users, config, tmp_path / "out").counts == {"skipped_failed": 1}
        assert suno.counts["custom_generate"] == len(suno.accepted) == 1


@pytest.mark.parametrize("fault, logged", [("slow", "timed out"), ("hang_up", "connection error (ConnectionError)")])
def test_a_poll_answered_late_or_not_at_all_is_retried(world, tmp_path, caplog, fault, logged):
    root, dataset = world
    data = dataset.interactions
    with FakeSuno() as suno:
        if fault == "slow":
            suno.slow["get"] = [1.5]
        else:
            suno.hang_up["get"] = 1
        config = load_config(suno_args(suno.url, "--generator.request_timeout_s", "0.3"))
        run = generate_for_users(dataset, choose_users(data, 1, seed=0), config, tmp_path / "out")
        assert run.counts == {"complete": 1} and len(run.songs) == 2
        assert f"GET /api/get: {logged}; retry 1/4" in caplog.text
        assert suno.counts["get"] == 4 and len(suno.accepted) == 1  # the unanswered poll had moved the clips on


def judge_for(server: ChatServer, max_retries: int = 2) -> LLMLyricJudge:
    backend = OpenAIChatBackend("m", base_url=server.base_url, api_key="k", timeout_s=2.0, max_retries=max_retries,
                                backoff_s=0.01)
    return LLMLyricJudge(backend)


@pytest.mark.parametrize("status", [429, 500])
def test_a_judge_that_always_fails_gives_failure_records_after_bounded_retries(status):
    with ChatServer([Reply(status)]) as server:
        judge = judge_for(server)
        first, second = judge.score([CANDIDATE, TasteSong("c2", "Gulls over the pier")], HISTORY)
        assert len(server.requests) == 2 * 3  # each song: the first attempt and 2 retries, then it gives up
    for result in (first, second):
        assert result.value is None and result.failure == f"http {status} after 3 attempt(s)"


@pytest.mark.parametrize(
    "body, reason",
    [
        ("<html>upstream error</html>", "malformed response: JSONDecodeError"),
        (json.dumps({"choices": []}), "malformed response: IndexError"),
        (json.dumps({"choices": [{"message": {"content": None}}]}), "malformed response: message has no text"),
        (json.dumps({"overall": 9}), "malformed response: KeyError"),
    ],
)
def test_a_garbage_200_from_the_judge_is_a_failure_not_a_score(body, reason):
    with ChatServer([Reply(body=body)]) as server:
        (result,) = judge_for(server).score([CANDIDATE], HISTORY)
        assert len(server.requests) == 1
    assert result.value is None and result.failure.startswith(reason)
