"""Fault drills for training and its files: a run SIGKILLed mid-epoch and resumed, a checkpoint write killed
halfway, shards with truncated and corrupt members, and files that are not SimSong checkpoints."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

import train
from evaluation.leaderboard import HybridConfig, Leaderboard
from lightning_modules.checkpoint_io import AtomicCheckpointIO
from recommenders import PopularityRecommender
from recommenders.content import ContentRecommender, load_module
from songdata import SongDataset

REPO = Path(__file__).resolve().parents[1]


def _args(dataset: Path, runs: Path, *extra: str) -> list[str]:
    # As in test_train_cli.py: smoke.yaml trains 2 batches of 4 songs per epoch.
    args = ["--config", "smoke.yaml", "--data.root", str(dataset), "--trainer.default_root_dir", str(runs)]
    return [*args, "--data.batch_size=4", *extra]


def _state(checkpoint: Path) -> tuple[int, int]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return state["global_step"], state["epoch"]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_training_killed_mid_epoch_resumes_to_the_end_of_an_unbroken_run(tiny_dataset, tmp_path):
    """`kill -9` after the first step of epoch 2, then `--ckpt_path last`: the same weights at the same step
    as a run that was never stopped (the resumed stream goes on with epoch 2's data), and the same files."""
    three_epochs = ("--trainer.logger=false", "--trainer.max_epochs=3")
    killed = _args(tiny_dataset, tmp_path / "killed", *three_epochs)
    kill = ["--trainer.callbacks+=tests.fault_callbacks.KillAtStep", "--trainer.callbacks.step=3"]
    log = tmp_path / "killed.log"
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "train.py", *killed, *kill], cwd=REPO, stdout=sink, stderr=sink)
    try:
        train.main(_args(tiny_dataset, tmp_path / "reference", *three_epochs))  # while the other one runs
        assert process.wait(timeout=300) == -signal.SIGKILL, log.read_text()[-3000:]
    finally:
        process.kill()
    folder = tmp_path / "killed" / "smoke" / "checkpoints"
    assert _state(folder / "last.ckpt") == (2, 0)  # the end of epoch 1; epoch 2 was half done

    cli = train.main([*killed, "--ckpt_path=last"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    reference = tmp_path / "reference" / "smoke" / "checkpoints"
    assert _state(folder / "last.ckpt") == _state(reference / "last.ckpt") == (6, 2)
    resumed, unbroken = _weights(folder / "last.ckpt"), _weights(reference / "last.ckpt")
    assert resumed.keys() == unbroken.keys() and all(torch.equal(resumed[k], unbroken[k]) for k in resumed)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in reference.iterdir())  # nothing duplicated, lost or left half written
    assert len([n for n in names if n.startswith("best-")]) == 1 and "last.ckpt" in names


def test_a_checkpoint_write_killed_halfway_leaves_the_previous_checkpoint_whole(tmp_path):
    """A real SIGKILL in the middle of writing last.ckpt (in a forked child): the old file still loads."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 2, "weights": torch.ones(1000)}, path)

    def torn_save(obj, f) -> None:
        f.write(b"PK\x03\x04 the first half of a zip archive")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    child = os.fork()
    if child == 0:  # the child does file work only, then dies mid-write
        torch.save = torn_save
        try:
            AtomicCheckpointIO().save_checkpoint({"global_step": 4}, path)
        finally:
            os._exit(1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(child, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done[0] == child and os.WIFSIGNALED(done[1]) and os.WTERMSIG(done[1]) == signal.SIGKILL
    assert torch.load(path, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt", "last.ckpt.part"]
    AtomicCheckpointIO().save_checkpoint({"global_step": 4}, path)  # the next save replaces the torn part
    assert torch.load(path, weights_only=True)["global_step"] == 4 and os.listdir(path.parent) == ["last.ckpt"]


def corrupt_val_shard(root: Path) -> list[str]:
    """Rewrite the val shard: the 1st song's flac is garbage, the 2nd's lyrics are not UTF-8, and the file
    ends halfway through the last song's flac. Returns the keys of the three broken songs."""
    shard = root / "shards" / "val-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    keys = list(dict.fromkeys(m.name.split(".")[0] for m, _ in members))
    broken = {f"{keys[0]}.flac": b"fLaC" + bytes(range(256)) * 4, f"{keys[1]}.txt": b"caf\xe9 \xff\xfe lyrics"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in members:
            data = broken.get(member.name, data)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        last_flac = tar.getmember(f"{keys[-1]}.flac")
    shard.write_bytes(buffer.getvalue()[: last_flac.offset_data + last_flac.size // 2])
    return [keys[0], keys[1], keys[-1]]


def test_corrupt_shards_are_skipped_and_counted_in_training_and_evaluation(tiny_dataset, tmp_path, caplog):
    corrupt_val_shard(tiny_dataset)
    csv_logger = ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={tmp_path}"]
    train.main(_args(tiny_dataset, tmp_path, *csv_logger))
    rows = list(csv.DictReader(open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv")))
    (epoch_end,) = [r for r in rows if r.get("data/skipped")]
    skipped = {k: float(v) for k, v in epoch_end.items() if k.startswith("data/skipped")}
    assert skipped["data/skipped/undecodable_audio"] == 1 and skipped["data/skipped/lyrics_not_utf_8"] == 1
    assert skipped["data/skipped/unreadable_shard_data"] >= 1  # webdataset reports a cut-off shard once or twice
    assert skipped["data/skipped"] == sum(v for k, v in skipped.items() if k != "data/skipped")
    assert any(r.get("val/a2l_R@10") for r in rows)

    checkpoint = tmp_path / "smoke" / "checkpoints" / "last.ckpt"
    dataset = SongDataset(tiny_dataset)
    recommender = ContentRecommender(str(checkpoint))
    embeddings = recommender.song_embeddings_for(dataset.interactions)
    assert embeddings.shape[0] == 24 and (abs(embeddings).sum(axis=1) > 0).all()  # lyrics still embed them
    # The lyrics in the shards are not read here (the catalog's are): two songs lack audio, and why is told.
    assert recommender.skipped["undecodable audio"] == 1 and recommender.skipped["not found in the shards"] == 1
    assert recommender.skipped["unreadable shard data (ReadError)"] >= 1
    assert "2 of 24 songs have no audio embedding" in caplog.text

    board = Leaderboard([PopularityRecommender()], run_dirs=[], ks=[10], report_metrics=["ndcg@10"], n_bootstrap=10,
                        hybrid=HybridConfig(enabled=False), wandb=False, show_progress=False)
    board.run(SongDataset(tiny_dataset), tmp_path / "report", checkpoints=[checkpoint])  # the report says so too
    (note,) = [n for n in json.loads((tmp_path / "report" / "run.json").read_text())["notes"] if "audio embedding" in n]
    assert note.startswith("smoke: songs without an audio embedding") and "undecodable audio: 1" in note
    assert "not found in the shards: 1" in note


class Payload:
    """Unpickling this creates a marker file: proof that a loader ran code from the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_files_that_are_not_simsong_checkpoints_are_refused_by_name_and_never_run(tiny_dataset, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pickle.loads(pickle.dumps(Payload(tmp_path / "unpickled")))
    assert (tmp_path / "unpickled").exists()  # the payload does run when unpickled
    marker = tmp_path / "code-ran"
    files = {
        "random.ckpt": lambda p: p.write_bytes(os.urandom(4096)),
        "notes.ckpt": lambda p: p.write_text("not a checkpoint\n"),
        "linear.ckpt": lambda p: torch.save(torch.nn.Linear(3, 2).state_dict(), p),
        "pickle.ckpt": lambda p: p.write_bytes(pickle.dumps({"state_dict": Payload(marker)}, protocol=2)),
        "torch-pickle.ckpt": lambda p: torch.save({"state_dict": {}, "hyper_parameters": Payload(marker)}, p),
    }
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(ValueError, match=f"{tmp_path / name}: not a SimSong checkpoint") as error:
            load_module(tmp_path / name)
        assert "weights_only=False" not in str(error.value)
    with pytest.raises(ValueError, match="refused it .Unsupported global: GLOBAL io.open"):
        load_module(tmp_path / "torch-pickle.ckpt")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'missing.ckpt'}: checkpoint not found"):
        load_module(tmp_path / "missing.ckpt")
    resume = _args(tiny_dataset, tmp_path, "--trainer.logger=false", f"--ckpt_path={tmp_path / 'torch-pickle.ckpt'}")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # resuming loads weights only too
        train.main(resume)
    assert f"Restoring states from the checkpoint path at {tmp_path / 'torch-pickle.ckpt'}" in caplog.text
    assert not marker.exists()


def test_a_resumed_run_keeps_the_metrics_csv_of_the_run_before(tmp_path):
    """Lightning's CSVLogger deletes metrics.csv when a run starts in its folder, as a resume does."""
    from lightning_modules.loggers import ResumableCSVLogger

    first = ResumableCSVLogger(tmp_path, name="csv", version="")
    first.log_metrics({"train/loss": 2.0}, step=0)
    first.save()
    resumed = ResumableCSVLogger(tmp_path, name="csv", version="")
    resumed.log_metrics({"train/loss": 1.5, "val/a2l_R@10": 0.5}, step=1)
    resumed.save()
    rows = list(csv.DictReader(open(tmp_path / "csv" / "metrics.csv")))
    assert [(r["step"], r["train/loss"], r["val/a2l_R@10"]) for r in rows] == [("0", "2.0", ""), ("1", "1.5", "0.5")]
