"""Test-only callbacks that make a training process fail for real, for the fault drills."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process once `step` optimizer steps are done: no hook, handler or flush runs after it.

    On the command line: `--trainer.callbacks+=tests.fault_callbacks.KillAtStep --trainer.callbacks.step=3`.

    Args:
        step: Optimizer steps done before the kill.
        flush_logs: Flush the loggers first, as Lightning does every `flush_logs_every_n_steps`: rows
            logged after the last checkpoint are then on disk when the process dies.
    """

    def __init__(self, step: int, flush_logs: bool = False) -> None:
        self.step = step
        self.flush_logs = flush_logs

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step >= self.step:
            for logger in trainer.loggers if self.flush_logs else []:
                logger.save()
            os.kill(os.getpid(), signal.SIGKILL)
