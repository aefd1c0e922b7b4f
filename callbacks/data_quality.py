"""Report the samples the loaders dropped, so that a run never loses data silently."""

from __future__ import annotations

import logging

import lightning as L
import torch

log = logging.getLogger(__name__)


class SkippedSamplesLogger(L.Callback):
    """Logs, once per epoch (training and validation loaders together), the samples skipped and why."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        counts = dict(getattr(datamodule, "skipped", {}) or {})
        pl_module.log("data/skipped", torch.tensor(float(sum(counts.values()))), reduce_fx="sum", sync_dist=True)
        if counts:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
            log.warning("rank %d, epoch %d: skipped samples (%s)", trainer.global_rank, trainer.current_epoch, reasons)
            datamodule.skipped.clear()
