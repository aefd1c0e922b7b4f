"""Report the samples the loaders dropped, so that a run never loses data silently."""

from __future__ import annotations

import logging
import re
from collections import Counter

import lightning as L
import torch

from datamodules.pipeline import SKIP_REASONS

log = logging.getLogger(__name__)


def skip_metric(reason: str) -> str:
    """`unreadable shard data (ReadError)` → `data/skipped/unreadable_shard_data`."""
    return "data/skipped/" + re.sub(r"\W+", "_", reason.split(" (")[0].lower()).strip("_")


class SkippedSamplesLogger(L.Callback):
    """Logs, once per epoch (training and validation loaders together), the samples skipped and why.

    `data/skipped` is the total and `data/skipped/<reason>` the count of each of `SKIP_REASONS`; every
    rank logs every key (zeros included), so the sums across ranks never wait on a key one rank lacks.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        counts = dict(getattr(datamodule, "skipped", {}) or {})
        by_metric = Counter({skip_metric(reason): 0 for reason in SKIP_REASONS})
        for reason, n in counts.items():
            if skip_metric(reason) in by_metric:  # a reason outside SKIP_REASONS counts in the total only
                by_metric[skip_metric(reason)] += n
        by_metric["data/skipped"] = sum(counts.values())
        for key, n in sorted(by_metric.items()):
            pl_module.log(key, torch.tensor(float(n)), reduce_fx="sum", sync_dist=True)
        if counts:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
            log.warning("rank %d, epoch %d: skipped samples (%s)", trainer.global_rank, trainer.current_epoch, reasons)
            datamodule.skipped.clear()
