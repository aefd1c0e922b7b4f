"""Test-only callbacks that make a training process fail for real, for the fault drills."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process once `step` optimizer steps are done: no hook, handler or flush runs after it.

    On the command line: `--trainer.callbacks+=tests.fault_callbacks.KillAtStep --trainer.callbacks.step=3`.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
