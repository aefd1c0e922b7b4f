"""`MusicDataModule`: streams a dataset folder's shards into batches of two segments + lyrics."""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter

import lightning as L
import webdataset as wds

from datamodules.pipeline import SegmentSpec, eval_pipeline, train_pipeline
from songdata import SongDataset

log = logging.getLogger(__name__)


class MusicDataModule(L.LightningDataModule):
    """Song segments and lyrics from webdataset shards.

    The dataset folder is opened once, in `setup`, as `self.dataset` (a `SongDataset`): the callbacks
    and the model read songs, interactions and similarity from there.

    Args:
        root: Dataset folder built by `prepare_data.py`. `train.py` opens the demo world (built on
            first use) when it is empty.
        batch_size: Songs per batch on each device.
        num_workers: Loader processes per device.
        segment_seconds: Length of each of the two segments cut from a song.
        shuffle_buffer: Samples held in the training shuffle buffer.
        require_lyrics: Drop (and count) songs without lyrics.
        shard_url_template: Read shards from here instead of the dataset folder: a URL with `{name}` for the
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
        self.dataset: SongDataset | None = None
        self._resumed_epochs = 0

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        if not self.hparams.root:
            raise ValueError("MusicDataModule: no dataset folder; set data.root (train.py defaults to the demo world)")
        self.dataset = SongDataset(
            self.hparams.root, require_splits=False, shard_url_template=self.hparams.shard_url_template
        )
        if not self.dataset.has_audio:
            raise FileNotFoundError(f"{self.dataset.root}: no audio shards (shards/index.json); training needs them")
        log.info("%s: %d songs, %d training songs in shards", self.dataset.root, len(self.dataset.catalog),
                 self.dataset.num_samples("train"))

    # ---- shards -------------------------------------------------------------------------
    def urls(self, split: str) -> list[str]:
        """Shard URLs of a split; local shards are checked so a missing one is named up front."""
        return self.dataset.shard_urls(split)

    def num_samples(self, split: str) -> int:
        return self.dataset.num_samples(split)

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
