"""Secrets drill: with a W&B key, a Suno cookie and a judge key in the environment, a smoke training and an
evaluation (content model, Suno generation, LLM judge, W&B) write none of them into any file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wandb

import evaluate
import train
from tests.chat_server import ChatServer, Reply
from tests.suno_server import FakeSuno

SECRETS = {
    "WANDB_API_KEY": "wandbMARKER0123456789abcdef0123456789ab",  # 40 characters, as W&B keys are
    "SUNO_COOKIE": "__session=suno-cookie-MARKER-5e1f",
    "OPENAI_API_KEY": "sk-judge-MARKER-77c0",
}
VERDICT = json.dumps({"rationale": "Close enough.", "theme_consistency": 6, "style_consistency": 5, "overall": 6})


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The secrets in the environment, and W&B's own folders (cache, config, debug logs) under tmp_path.

    W&B's service process reads its environment when it starts, so it is stopped before and after.
    """
    wandb.teardown()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    yield
    wandb.teardown()


def leaks(folder: Path) -> list[str]:
    """`file: secret` for every secret found in any file under `folder`."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {name}" for name, value in SECRETS.items() if value.encode() in data]
    return found


def test_no_secret_reaches_any_written_file(tiny_dataset, tmp_path, secret_env, capsys):
    runs = tmp_path / "runs"
    train.main(["--config", "smoke.yaml", "--data.root", str(tiny_dataset), "--trainer.default_root_dir", str(runs),
                "--data.batch_size=4"])
    run = runs / "smoke"
    assert list((run / "wandb").rglob("*.wandb")) and (run / "csv" / "metrics.csv").exists()
    wandb.finish()  # as the training process would on exit; evaluate.py starts a W&B run of its own

    with FakeSuno(cookie=SECRETS["SUNO_COOKIE"]) as suno, ChatServer([Reply(content=VERDICT)]) as judge:
        generate = ["--generator.base_url", suno.url, "--generator.poll_interval_s", "0.01"]
        report = evaluate.main([
            "--config", "eval.yaml", "--data.root", str(tiny_dataset), "--out", str(tmp_path / "report"),
            "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--n_bootstrap", "20", "--show_progress", "false",
            "--ks", "[5, 10]", "--report_metrics", "[recall@10]", "--hybrid.enabled", "false",
            "--baselines", '[{"class_path": "recommenders.PopularityRecommender"}]',
            "--generative.backends", "[suno]", "--generative.num_users", "2", "--generative.reference_songs", "4",
            "--generative.generate_args", json.dumps(generate), "--generative.judge.backend", "openai",
            "--generative.judge.model", "judge-model", "--generative.judge.base_url", judge.base_url,
        ])
        assert len(suno.accepted) == 2  # the cookie was sent: the server answers 401 without it
    assert judge.requests[0]["headers"]["Authorization"] == f"Bearer {SECRETS['OPENAI_API_KEY']}"
    rows = {(r["model"], r["slice"]): r for r in report.rows}
    assert rows["generated-suno", "generated"]["metrics"]["lyric_relevance"] == pytest.approx(0.6)
    assert list((tmp_path / "report").rglob("*.wandb")) and list((tmp_path / "report").rglob("debug*.log"))

    assert leaks(tmp_path) == []
    (tmp_path / "canary.bin").write_bytes(b"\x00" + SECRETS["SUNO_COOKIE"].encode() + b"\xff")
    assert leaks(tmp_path) == [f"{tmp_path / 'canary.bin'}: SUNO_COOKIE"]  # the search does find one
    printed = capsys.readouterr()
    assert not [name for name, value in SECRETS.items() if value in printed.out + printed.err]
