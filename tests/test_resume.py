"""A resumed training run continues its own files: metrics.csv without lost or doubled rows, the same W&B run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import wandb

import train
from lightning_modules.loggers import MetricsRowsAtCheckpoint, ResumableCSVLogger

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _values(rows: list[dict]) -> list[tuple[str, str, str]]:
    """Every logged value as (step, key, value), in file order."""
    return [(row["step"], key, value) for row in rows for key, value in sorted(row.items()) if value and key != "step"]


def test_resuming_from_a_checkpoint_drops_the_rows_logged_after_it(tmp_path):
    """Rows flushed after the checkpoint at steps the resumed run logs again go; an epoch's end logged after
    its checkpoint (never replayed) stays."""
    logger = ResumableCSVLogger(tmp_path, name="csv", version="")
    for step in (0, 1):
        logger.log_metrics({"train/loss": 2.0 - step}, step=step)
    state = MetricsRowsAtCheckpoint(logger).state_dict()  # a checkpoint after step 1
    logger.log_metrics({"data/skipped": 0.0}, step=1)  # the epoch's end, after its checkpoint
    logger.log_metrics({"train/loss": 0.5}, step=2)
    logger.save()  # flushed, then killed

    resumed = ResumableCSVLogger(tmp_path, name="csv", version="")
    MetricsRowsAtCheckpoint(resumed).load_state_dict(state)
    resumed.log_metrics({"train/loss": 0.5, "val/a2l_R@10": 0.25}, step=2)
    resumed.save()
    rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert [(r["step"], r["train/loss"], r["data/skipped"], r["val/a2l_R@10"]) for r in rows] == [
        ("0", "2.0", "", ""), ("1", "1.0", "", ""), ("1", "", "0.0", ""), ("2", "0.5", "", "0.25"),
    ]


def _args(dataset: Path, runs: Path, *extra: str) -> list[str]:
    args = ["--config", "smoke.yaml", "--data.root", str(dataset), "--trainer.default_root_dir", str(runs)]
    return [*args, "--data.batch_size=4", "--trainer.max_epochs=3", *extra]


def _wandb_run_ids(run_dir: Path) -> list[str]:
    return [folder.name.rsplit("-", 1)[-1] for folder in sorted((run_dir / "wandb").glob("offline-run-*"))]


def test_a_run_killed_and_resumed_logs_what_an_unbroken_run_logs_into_the_same_wandb_run(tiny_dataset, tmp_path):
    """kill -9 after step 3 (its rows after the step-2 checkpoint flushed), then `--ckpt_path last`."""
    killed = _args(tiny_dataset, tmp_path / "killed")
    kill = ["--trainer.callbacks+=tests.fault_callbacks.KillAtStep", "--trainer.callbacks.step=3",
            "--trainer.callbacks.flush_logs=true"]
    log = tmp_path / "killed.log"
    with open(log, "w") as sink:
        # Its own W&B service, as a real process has: one inherited from this test process would keep
        # the killed run's id "in use" after the kill.
        env = {key: value for key, value in os.environ.items() if key != "WANDB_SERVICE"}
        process = subprocess.Popen(
            [sys.executable, "train.py", *killed, *kill], cwd=REPO, stdout=sink, stderr=sink, env=env
        )
    try:
        train.main(_args(tiny_dataset, tmp_path / "reference"))  # while the other one runs
        wandb.finish()  # as the process would end; the resumed run would join this one otherwise
        assert process.wait(timeout=600) == -signal.SIGKILL, log.read_text()[-3000:]
    finally:
        process.kill()
    run_dir = tmp_path / "killed" / "smoke"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    at_checkpoint = [s["metrics_rows"] for s in checkpoint["callbacks"].values() if "metrics_rows" in s]
    assert len(_rows(run_dir / "csv" / "metrics.csv")) > at_checkpoint[0]  # rows after it reached the file

    train.main([*killed, "--ckpt_path=last"])
    resumed = _values(_rows(run_dir / "csv" / "metrics.csv"))
    unbroken = _values(_rows(tmp_path / "reference" / "smoke" / "csv" / "metrics.csv"))
    assert sorted(resumed) == sorted(unbroken)  # nothing lost, nothing twice
    ids = _wandb_run_ids(run_dir)
    assert len(ids) == 2 and ids[0] == ids[1], ids  # the killed run and its resume, one W&B run
    assert (run_dir / "wandb_run_id").read_text().strip() == ids[0]


def test_a_fresh_run_in_a_used_folder_starts_a_new_wandb_run(tiny_dataset, tmp_path):
    args = _args(tiny_dataset, tmp_path, "--trainer.max_epochs=1")
    train.main(args)
    wandb.finish()
    train.main(args)
    ids = _wandb_run_ids(tmp_path / "smoke")
    assert len(ids) == 2 and ids[0] != ids[1], ids
