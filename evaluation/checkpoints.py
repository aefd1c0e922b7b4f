"""Which checkpoints the leaderboard evaluates when none is given: the latest of each training run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest `best-*.ckpt` of a run, else its `last.ckpt`, else None."""
    folder = Path(run_dir) / "checkpoints"
    best = sorted(folder.glob("best-*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name))
    if best:
        return best[-1]
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def find_checkpoints(run_dirs: Sequence[str | Path]) -> list[Path]:
    """The latest checkpoint of each run folder that has one; says which it uses."""
    found = []
    for run_dir in run_dirs:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            log.warning("%s: no checkpoints/best-*.ckpt or checkpoints/last.ckpt; no content model from it", run_dir)
        else:
            log.info("using %s for %s", checkpoint, run_name_of(checkpoint))
            found.append(checkpoint)
    return found


def run_name_of(checkpoint: str | Path) -> str:
    from recommenders.content import run_name_of as name_of  # imports the model code only when needed

    return name_of(checkpoint)
