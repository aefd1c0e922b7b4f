"""SimSongModule: trains on a synthetic batch stream, round-trips checkpoints, and under
2-process DDP gives the same loss and gradients as one process on the global batch."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import socket
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from lightning_modules.simsong import SimSongModule, first_occurrences, retrieval_metrics
from lightning_modules.song_embeddings import song_windows
from songdata.similarity import SongSimilarity
from tests.test_encoders import make_tiny_bert

SAMPLE_RATE = 16000
SEGMENT_SECONDS = 0.25


class SyntheticSongs(Dataset):
    """Songs as seeded tones + noise, two segments each, with distinct lyrics."""

    def __init__(self, n_songs: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        length = int(SAMPLE_RATE * SEGMENT_SECONDS)
        t = torch.arange(2 * length) / SAMPLE_RATE
        pitch = 200 + 600 * torch.rand(n_songs, 1, generator=generator)
        noise = 0.1 * torch.randn(n_songs, 2 * length, generator=generator)
        tone = torch.sin(2 * math.pi * pitch * t) + noise
        self.audio = tone.view(n_songs, 2, length)
        words = ["love", "night", "rain", "fire", "heart", "road", "dance", "blue"]
        self.lyrics = [f"{words[i % 8]} {words[(3 * i) % 8]} song number {i}" for i in range(n_songs)]

    def __len__(self) -> int:
        return len(self.lyrics)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"audio": self.audio[i], "lyrics": self.lyrics[i], "song_index": i, "song_id": f"s{i}"}


class UnsizedSongs(IterableDataset):
    """Some songs with no length, as a webdataset stream: Lightning runs the validation loop (and its
    epoch-end hooks) even when a rank's stream turns out to be empty."""

    def __init__(self, songs: Dataset, indices: range) -> None:
        self.songs, self.indices = songs, indices

    def __iter__(self):
        return (self.songs[i] for i in self.indices)


def tiny_module(bert: Path, **overrides: Any) -> SimSongModule:
    settings = dict(
        audio_channels=4, audio_layers=2, n_mels=32, lyrics_model=str(bert), embed_dim=8,
        warmup_steps=2, lr=1e-3, segment_seconds=SEGMENT_SECONDS, sample_rate=SAMPLE_RATE,
    )
    return SimSongModule(**{**settings, **overrides})


def tiny_trainer(**overrides: Any) -> L.Trainer:
    settings = dict(
        accelerator="cpu", devices=1, max_steps=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    return L.Trainer(**{**settings, **overrides})


def random_similarity(n_songs: int, seed: int = 1) -> SongSimilarity:
    """A fixed symmetric catalog similarity in [0, 1], as `SimSongModule.setup` resolves one."""
    matrix = torch.rand(n_songs, n_songs, generator=torch.Generator().manual_seed(seed))
    return SongSimilarity(sp.csr_matrix(((matrix + matrix.T) / 2).numpy()), "test table")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), n_layers=2)


@pytest.mark.parametrize("loss", ["ns", "wns"])
def test_trains_and_reports_metrics(tiny_bert: Path, loss: str) -> None:
    L.seed_everything(0)
    module = tiny_module(tiny_bert, loss=loss, learnable_temperature=True, lyrics_trainable_layers=1,
                         similarity="lyrics")
    with torch.no_grad():
        module.logit_scale.fill_(10.0)  # beyond log(100): must be clamped back after a step
    before = module.audio_head[0].weight.detach().clone()
    data = SyntheticSongs(12)
    trainer = tiny_trainer(max_steps=3, val_check_interval=3)
    trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data, batch_size=5))
    metrics = trainer.callback_metrics
    for key in ["train/loss", "train/loss_a2a", "train/loss_a2l", "train/temperature", "val/loss"]:
        assert torch.isfinite(metrics[key]), key
    assert metrics["train/repeats"] == 0
    if loss == "wns":  # what the weights did is logged every step
        for key in ["mean", "min", "p10", "at_floor", "top_decile"]:
            assert torch.isfinite(metrics[f"train/wns_weight/{key}"]), key
        assert metrics["train/wns_weight/mean"] == pytest.approx(1.0, abs=0.05)
    for head in ["a2l", "l2a", "a2a"]:
        for k in [1, 5, 10]:
            assert 0.0 <= metrics[f"val/{head}_R@{k}"] <= 1.0
        assert 1.0 <= metrics[f"val/{head}_medr"] <= 12.0
    assert metrics["val/a2l_R@10"] >= metrics["val/a2l_R@1"]
    assert not torch.equal(before, module.audio_head[0].weight)
    assert module.logit_scale.item() == pytest.approx(math.log(100.0))


def test_wns_similarity_source_and_fallback(tiny_bert: Path, caplog: pytest.LogCaptureFixture) -> None:
    L.seed_everything(0)
    module = tiny_module(tiny_bert, loss="wns", similarity="lyrics")
    batch = next(iter(DataLoader(SyntheticSongs(6), batch_size=6)))
    embeddings = module._encode(batch["audio"], batch["lyrics"])
    with caplog.at_level(logging.INFO, logger="lightning_modules.simsong"):
        fallback = module._losses(embeddings, batch["song_index"], gather=True)
        module.song_similarity = random_similarity(6)
        external = module._losses(embeddings, batch["song_index"], gather=True)
    assert "lyric-embedding cosine" in caplog.text and "test table" in caplog.text
    assert not torch.isclose(fallback["loss"], external["loss"])
    # The most similar decile of negatives weighs less than the average negative.
    assert external["weights"]["top_decile"] < external["weights"]["mean"]
    module.song_similarity = None
    with pytest.raises(ValueError, match="needs a datamodule with a dataset"):
        tiny_module(tiny_bert, loss="wns", similarity="co_listening").setup("fit")


def test_repeated_song_in_a_batch_is_counted_and_not_its_own_negative(tiny_bert: Path) -> None:
    L.seed_everything(0)
    module = tiny_module(tiny_bert, loss="ns")
    songs = SyntheticSongs(4)
    batch = next(iter(DataLoader(Subset(songs, [0, 1, 0, 2]), batch_size=4)))
    embeddings = module._encode(batch["audio"], batch["lyrics"])
    losses = module._losses(embeddings, batch["song_index"], gather=True)
    assert losses["repeats"] == 1
    # Rows 0 and 2 hold the same song: each is its own positive, never the other's negative.
    a1, a2, lyrics, _ = embeddings
    other_copy = torch.zeros(4, 4, dtype=torch.bool)
    other_copy[0, 2] = other_copy[2, 0] = True

    def masked(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        logits = (query @ key.T / module.temperature).masked_fill(other_copy, float("-inf"))
        return torch.nn.functional.cross_entropy(logits, torch.arange(4))

    pairs = [(a1, lyrics), (lyrics, a1), (a2, lyrics), (lyrics, a2)]
    assert torch.allclose(losses["loss_a2l"], sum(masked(q, k) for q, k in pairs) / 4)


def test_checkpoint_rebuilds_identical_embeddings(tiny_bert: Path, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = tiny_module(tiny_bert, lyrics_trainable_layers=1)
    data = SyntheticSongs(8)
    trainer = tiny_trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(module, DataLoader(data, batch_size=4))
    path = tmp_path / "simsong.ckpt"
    trainer.save_checkpoint(path)
    restored = SimSongModule.load_from_checkpoint(path, map_location="cpu")
    waves, lyrics = data.audio[:, 0], data.lyrics
    assert torch.equal(module.embed_audio(waves), restored.embed_audio(waves))
    assert torch.equal(module.embed_lyrics(lyrics), restored.embed_lyrics(lyrics))
    assert restored.hparams.segment_seconds == SEGMENT_SECONDS
    length = int(round(SEGMENT_SECONDS * restored.hparams.sample_rate))
    windows = song_windows(data.audio[0].flatten().numpy(), length)  # two training-length windows
    assert windows.shape[0] == 2 and torch.equal(module.embed_audio(windows), restored.embed_audio(windows))


def test_retrieval_metrics_and_dedup() -> None:
    gallery = torch.eye(4)
    query = gallery[[0, 2, 1, 3]]  # rows 1 and 2 point at each other's item
    metrics = retrieval_metrics(query, gallery, "val/x", chunk=3)
    assert metrics["val/x_R@1"] == 0.5 and metrics["val/x_R@5"] == 1.0
    assert metrics["val/x_medr"] == 1.0  # ranks 1, 2, 2, 1 -> lower median
    assert first_occurrences(torch.tensor([5, 3, 5, 7, 3])).tolist() == [0, 1, 3]


def test_optimizer_groups_and_schedule(tiny_bert: Path) -> None:
    module = tiny_module(tiny_bert, learnable_temperature=True, warmup_steps=10)
    trainer = tiny_trainer(max_steps=110)
    module.trainer = trainer
    config = module.configure_optimizers()
    decay, no_decay = config["optimizer"].param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert any(p is module.logit_scale for p in no_decay["params"])
    assert all(p.ndim >= 2 for p in decay["params"])
    assert not any(p.requires_grad for p in module.lyrics_encoder.parameters())  # frozen default
    scheduler = config["lr_scheduler"]["scheduler"]
    multipliers = []
    for _ in range(111):
        multipliers.append(scheduler.get_last_lr()[0] / 1e-3)
        config["optimizer"].step()
        scheduler.step()
    assert [multipliers[s] for s in (0, 5, 10, 60, 110)] == pytest.approx([0, 0.5, 1, 0.5, 0], abs=1e-6)


def test_every_argument_is_documented_for_the_cli() -> None:
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser()
    parser.add_class_arguments(SimSongModule, "model")
    documented = {a.dest: a.help for a in parser._actions if a.dest.startswith("model.")}
    args = SimSongModule.__init__.__code__.co_varnames[1 : SimSongModule.__init__.__code__.co_argcount]
    for arg in args:
        assert documented.get(f"model.{arg}"), f"model.{arg} has no help text"


# ---- DDP ----------------------------------------------------------------------------------
GLOBAL_BATCH = 8


class _RecordStep(L.Callback):
    """Keeps the first step's loss and the (already DDP-averaged) head gradients."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {"gathered": []}

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        # BatchNorm normalises with per-rank batch statistics unless SyncBatchNorm is used
        # (GPU only); running statistics isolate what this test checks: the gather + loss.
        module.audio_encoder.eval()

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        named = dict(module.named_parameters())
        keys = [k for k in named if k.startswith(("audio_head", "lyrics_head"))] + ["logit_scale"]
        self.record["grads"] = {k: named[k].grad.detach().clone() for k in keys}

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        self.record["loss"] = outputs["loss"].detach().clone()


def run_one_step(bert: Path, devices: int, rank: int = 0) -> dict[str, Any]:
    """One WNS training step on this rank's share of a fixed global batch."""
    torch.set_num_threads(1)
    L.seed_everything(0)
    # Lyric-cosine similarity: its keys are gathered too, so the weights must match across ranks.
    module = tiny_module(bert, loss="wns", learnable_temperature=True, similarity="lyrics")
    recorder = _RecordStep()
    gather = module._gather

    def spy(x: torch.Tensor, with_grad: bool = True) -> torch.Tensor:
        gathered = gather(x, with_grad)
        recorder.record["gathered"].append((x.shape[0], gathered.shape[0]))
        return gathered

    module._gather = spy
    songs = SyntheticSongs(GLOBAL_BATCH)
    local = GLOBAL_BATCH // devices
    train = Subset(songs, range(rank * local, (rank + 1) * local))
    # Validation shards rarely split evenly: 5 songs on rank 0, 3 on rank 1.
    val = Subset(songs, [range(0, 5), range(5, 8)][rank] if devices > 1 else range(8))
    strategy = "ddp" if devices > 1 else "auto"
    trainer = tiny_trainer(devices=devices, strategy=strategy, max_steps=1,
                           callbacks=[recorder], use_distributed_sampler=False)
    (metrics,) = trainer.validate(module, DataLoader(val, batch_size=2), verbose=False)
    recorder.record["val"] = {k: v for k, v in metrics.items() if "R@" in k or "medr" in k}
    # Every validation song on rank 0, none on rank 1: the empty rank must neither hang nor change the figures.
    one_rank = UnsizedSongs(songs, [range(8), range(0)][rank] if devices > 1 else range(8))
    (metrics,) = trainer.validate(module, DataLoader(one_rank, batch_size=2), verbose=False)
    recorder.record["val_one_rank"] = metrics
    trainer.fit(module, DataLoader(train, batch_size=local))
    return recorder.record


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_rank(bert: Path, out_dir: Path, rank: int, port: int) -> None:
    """One DDP rank; the environment is what Lightning's own launcher gives its processes."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": "0",
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
    torch.save(run_one_step(bert, devices=2, rank=rank), out_dir / f"rank{rank}.pt")


@pytest.mark.ddp
def test_ddp_matches_single_process_on_global_batch(tiny_bert: Path, tmp_path: Path) -> None:
    """Ranks are forked from a forkserver that has only imported the code: a fresh interpreter
    per rank would pay the heavy imports twice, and forking this process (which has already
    run OpenMP kernels) hangs the child."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    port = _free_port()
    procs = [context.Process(target=_ddp_rank, args=(tiny_bert, tmp_path, r, port)) for r in range(2)]
    for proc in procs:
        proc.start()
    threads = torch.get_num_threads()
    try:
        single = run_one_step(tiny_bert, devices=1)  # overlaps with the ranks starting up
        for proc in procs:
            proc.join(timeout=240)
    finally:
        torch.set_num_threads(threads)
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0, 0]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    local = GLOBAL_BATCH // 2
    assert all(rec["gathered"] and set(rec["gathered"]) == {(local, 2 * local)} for rec in ranks)
    assert set(single["gathered"]) == {(GLOBAL_BATCH, GLOBAL_BATCH)}
    ddp_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    assert torch.allclose(ddp_loss, single["loss"], atol=1e-5)
    for name, grad in single["grads"].items():
        for rec in ranks:
            assert torch.allclose(rec["grads"][name], grad, atol=1e-5), name
    assert len(single["val"]) == 12  # R@1/5/10 and median rank for a2l, l2a and a2a
    for rec in ranks:  # retrieval over the 8 gathered validation songs, as in one process
        assert rec["val"] == pytest.approx(single["val"], abs=1e-6)
        assert rec["val_one_rank"] == pytest.approx(single["val_one_rank"], abs=1e-5)
    assert "val/loss" in single["val_one_rank"]


def test_default_front_end_has_no_empty_mel_band() -> None:
    """Every mel filter of the shipped front end holds an FFT bin (torchaudio warns of, and the CNN would
    get, an input row that is always zero otherwise)."""
    import inspect
    import warnings

    import torchaudio

    defaults = {k: p.default for k, p in inspect.signature(SimSongModule.__init__).parameters.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = torchaudio.functional.melscale_fbanks(
            defaults["n_fft"] // 2 + 1, 0.0, defaults["sample_rate"] / 2, defaults["n_mels"], defaults["sample_rate"]
        )
    assert (fb.sum(dim=0) > 0).all()
