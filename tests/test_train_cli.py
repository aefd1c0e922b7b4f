"""`train.py`: configs resolve, smoke training leaves checkpoints, resume continues, DDP on CPU runs."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train

REPO = Path(__file__).resolve().parents[1]


def _args(dataset: Path, runs: Path, *extra: str) -> list[str]:
    # 15 training songs in batches of 4: 3 full batches, of which smoke.yaml trains on 2 per epoch.
    args = ["--config", "smoke.yaml", "--data.root", str(dataset), "--trainer.default_root_dir", str(runs)]
    return [*args, "--data.batch_size=4", *extra]


def _global_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


def test_smoke_trains_logs_and_checkpoints(tiny_dataset, tmp_path):
    cli = train.main(_args(tiny_dataset, tmp_path))
    run = tmp_path / "smoke"
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    assert list((run / "wandb").glob("offline-run-*"))
    metrics = (run / "csv" / "metrics.csv").read_text()
    assert "val/a2l_R@10" in metrics and "train/loss" in metrics
    assert cli.model.hparams.segment_seconds == cli.datamodule.hparams.segment_seconds == 1.0


def test_resume_from_last_continues_at_the_right_step(tiny_dataset, tmp_path):
    train.main(_args(tiny_dataset, tmp_path, "--trainer.logger=false"))
    last = tmp_path / "smoke" / "checkpoints" / "last.ckpt"
    assert _global_step(last) == 2
    train.main(_args(tiny_dataset, tmp_path, "--trainer.logger=false", "--trainer.max_epochs=2", "--ckpt_path=last"))
    assert _global_step(last) == 4


def test_overrides_after_config_win_and_unknown_configs_are_named(tiny_dataset, tmp_path):
    from configs import resolve_config_args

    assert resolve_config_args(["--config", "trainer/gpu.yaml"])[1] == str(REPO / "configs" / "trainer" / "gpu.yaml")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        resolve_config_args(["--config", "nope.yaml"])
    cli = train.main(_args(tiny_dataset, tmp_path, "--trainer.logger=false", "--model.temperature=0.05", "--model.loss=ns"))
    assert cli.model.hparams.temperature == 0.05 and cli.model.hparams.loss == "ns"


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=REPO, capture_output=True, text=True, check=True)
    for option in ("--model.alpha", "--model.loss", "--data.root", "--data.segment_seconds", "--ckpt_path", "--run_name"):
        assert option in out.stdout
    assert "soft-InfoNCE" in out.stdout or "Soft-InfoNCE" in out.stdout


@pytest.mark.ddp
def test_smoke_runs_on_two_cpu_processes(tiny_dataset, tmp_path):
    cmd = [sys.executable, "train.py", *_args(tiny_dataset, tmp_path), "--trainer.logger=false"]
    cmd += ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--data.batch_size=2"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "smoke" / "checkpoints" / "last.ckpt").exists()
