"""`MusicDataModule`: streams a dataset folder's shards into batches of two segments + lyrics."""

from __future__ import annotations

import logging
import math
import tarfile
import warnings
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import webdataset as wds

from songdata.dataset import load_dataset
from songdata.interactions import similarity_matrix
from datamodules.pipeline import SegmentSpec, eval_pipeline, train_pipeline
from songdata.shards import SHARDS_DIR, read_index

log = logging.getLogger(__name__)


def resolve_data_root(root: str | Path | None) -> Path:
    """`None` means the embedded demo world, built on first use."""
    if root is None:
        from prepare.demo import ensure_demo_world

        return ensure_demo_world()
    return Path(root)


class MusicDataModule(L.LightningDataModule):
    """Song segments and lyrics from webdataset shards.

    Args:
        root: Dataset folder built by `prepare_data.py`; empty means the demo world (built on first use).
        batch_size: Songs per batch on each device.
        num_workers: Loader processes per device.
        segment_seconds: Length of each of the two segments cut from a song.
        shuffle_buffer: Samples held in the training shuffle buffer.
        require_lyrics: Drop (and count) songs without lyrics.
        shard_url_template: Read shards from here instead of `root/shards`: a URL with `{name}` for the
            shard file name, e.g. `/scratch/set/{name}` or `pipe:aws s3 cp s3://bucket/set/{name} -`.
        seed: Seed of the training stream.
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 32,
        num_workers: int = 2,
        segment_seconds: float = 3.0,
        shuffle_buffer: int = 1000,
        require_lyrics: bool = True,
        shard_url_template: str | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.spec = SegmentSpec(segment_seconds, require_lyrics)
        self.skipped: Counter = Counter()
        self.root: Path | None = None
        self.index: dict = {}
        self.similarity = None
        self.dataset = None
        self._resumed_epochs = 0

    def prepare_data(self) -> None:
        resolve_data_root(self.hparams.root)

    def setup(self, stage: str | None = None) -> None:
        self.root = resolve_data_root(self.hparams.root)
        self.index = read_index(self.root)
        dataset = load_dataset(self.root, require_splits=False)
        self.dataset = dataset  # the model resolves its WNS similarity from it
        self.catalog = dataset.catalog
        if dataset.similarity is not None:
            self.similarity = similarity_matrix(dataset.similarity, pd.Index(dataset.catalog["song_id"]))
        log.info(
            "%s: %d songs; WNS similarity from %s",
            self.root,
            len(self.catalog),
            "similarity.parquet" if self.similarity is not None else "lyric embeddings (no similarity.parquet)",
        )

    # ---- shards -------------------------------------------------------------------------
    def urls(self, split: str) -> list[str]:
        """Shard URLs of a split; local shards are checked so a missing one is named up front."""
        names = [entry["url"] for entry in self.index["splits"].get(split, []) if entry["count"] > 0]
        template = self.hparams.shard_url_template
        if template:
            return [template.format(name=name) for name in names]
        urls = [str(self.root / SHARDS_DIR / name) for name in names]
        for url in urls:
            if not tarfile.is_tarfile(url):
                raise FileNotFoundError(f"{url}: shard missing or not a tar file")
        return urls

    def num_samples(self, split: str) -> int:
        return sum(entry["count"] for entry in self.index["splits"].get(split, []))

    def _world(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    # ---- loaders --------------------------------------------------------------------------
    def train_batches_per_epoch(self) -> int:
        """Full global batches that one pass over the training songs gives (at least one)."""
        _, world_size = self._world()
        return max(self.num_samples("train") // (self.hparams.batch_size * world_size), 1)

    def _epochs_trained(self) -> int:
        """Training epochs already run, so that the stream starts with the next one's data.

        On a resume the loaders are built (for the schedule's length) before the trainer restores its
        loops, when its epoch still reads 0; the count saved in the checkpoint (`state_dict`) is right.
        """
        processed = self.trainer.fit_loop.epoch_progress.current.processed if self.trainer is not None else 0
        return max(processed, self._resumed_epochs)

    def state_dict(self) -> dict[str, int]:
        return {"epochs_trained": self._epochs_trained()}

    def load_state_dict(self, state: dict) -> None:
        self._resumed_epochs = int(state.get("epochs_trained", 0))

    def train_dataloader(self) -> wds.WebLoader:
        rank, _ = self._world()
        workers = self.hparams.num_workers
        batches = self.train_batches_per_epoch()
        pipeline = train_pipeline(
            self.urls("train"),
            self.spec,
            self.hparams.batch_size,
            batches_per_worker=math.ceil(batches / max(workers, 1)),
            seed=self.hparams.seed * 1000 + rank,
            shuffle_buffer=self.hparams.shuffle_buffer,
            start_epoch=self._epochs_trained(),
        )
        loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
        # The length lets Lightning place end-of-epoch validation; with_epoch makes it true.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*with_length\(\) only sets")
            return loader.with_epoch(batches).with_length(batches)

    def _eval_loader(self, split: str) -> wds.WebLoader:
        rank, world_size = self._world()
        urls = self.urls(split)
        workers = min(self.hparams.num_workers, len(urls))
        pipeline = eval_pipeline(urls, self.spec, self.hparams.batch_size, rank, world_size)
        return wds.WebLoader(pipeline, batch_size=None, num_workers=workers)

    def val_dataloader(self) -> wds.WebLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> wds.WebLoader:
        return self._eval_loader("test")

    # ---- hooks ----------------------------------------------------------------------------
    def on_before_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        self.skipped.update(batch.pop("skipped", {}))
        return batch

    def similarity_lookup(self, rows: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor | None:
        """External similarity of songs `rows` to songs `cols` (default: `rows`), `[len(rows), len(cols)]`
        in [0, 1]; None without a similarity file."""
        if self.similarity is None:
            return None
        cols = rows if cols is None else cols
        block = self.similarity[rows.detach().cpu().numpy()][:, cols.detach().cpu().numpy()]
        return torch.from_numpy(block.toarray().astype(np.float32)).to(rows.device)
