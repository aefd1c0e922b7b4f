"""Checkpoint files that are written whole or not at all, so a killed run never leaves a torn `last.ckpt`."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from songdata.atomic_files import replace_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<name>.part` beside the checkpoint, syncs it to disk, then renames it over the old file.

    Lightning's own IO stages the bytes in the system temp folder and moves them in; when that folder
    is on another filesystem (a node-local /tmp, checkpoints on shared storage) the move is a copy into
    the final name, which a kill can cut short, losing the previous checkpoint too. A rename within one
    folder is atomic: a kill leaves the old file whole and at most a `.part` that the next save replaces
    (`replace_atomically` with `fsync` and `sole_writer`). Remote URLs (`s3://...`) keep Lightning's behaviour.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        replace_atomically(path, lambda f: torch.save(checkpoint, f), fsync=True, sole_writer=True)
