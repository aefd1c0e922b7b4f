"""What the evaluation callbacks share: run on rank 0 every N-th validation of `fit`, with no collectives."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import lightning as L
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from lightning.pytorch.trainer.states import TrainerFn


class PeriodicEvaluation(L.Callback):
    """Calls `evaluate` on rank 0 at every `every_n_epochs`-th validation run (the sanity check does not count).

    The count and the logged `history` are saved in checkpoints, so a resumed run keeps its rhythm.
    Rank 0 evaluates alone, so the model must be whole on it: sharded strategies are refused.
    """

    def __init__(self, every_n_epochs: int) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"{type(self).__name__}: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.history: list[dict[str, Any]] = []
        self._validations = 0

    @abstractmethod
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Evaluate and log (rank 0 only: no `self.log`, no collectives)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(trainer.strategy, (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)):
            raise ValueError(
                f"{type(self).__name__}: {type(trainer.strategy).__name__} shards the model across ranks, "
                "so rank 0 cannot embed songs alone; use DDP or remove the callback"
            )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._validations += 1
        if self._validations % self.every_n_epochs == 0 and trainer.is_global_zero:
            self.evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "validations": self._validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._validations = int(state_dict.get("validations", 0))
