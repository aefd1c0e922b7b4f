"""W&B run settings that training and evaluation share: offline unless configured, one folder per sweep run."""

from __future__ import annotations

import os
from pathlib import Path

from songdata.atomic_files import replace_atomically


def default_wandb_offline() -> None:
    """W&B runs offline unless the user has configured it (key in the environment or `wandb login`)."""
    netrc = Path.home() / ".netrc"
    logged_in = netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    if "WANDB_MODE" not in os.environ and not os.environ.get("WANDB_API_KEY") and not logged_in:
        os.environ["WANDB_MODE"] = "offline"


def sweep_run_id() -> str | None:
    """The W&B run id when a sweep agent started this process (it sets WANDB_SWEEP_ID and WANDB_RUN_ID)."""
    return (os.environ.get("WANDB_RUN_ID") or None) if os.environ.get("WANDB_SWEEP_ID") else None


def per_sweep_run(name: str) -> str:
    """`name-<run id>` under a sweep agent, so that the runs of one sweep never share a folder; else `name`."""
    run_id = sweep_run_id()
    return f"{name}-{run_id}" if run_id else name


def wandb_run_id(run_dir: Path, resuming: bool) -> str:
    """The sweep's run id; else, when resuming, the id the run folder's W&B run had; else a new one.

    The id is kept in `<run_dir>/wandb_run_id`, so `--ckpt_path last` continues the W&B run it resumes.
    """
    import wandb

    saved = run_dir / "wandb_run_id"
    previous = saved.read_text().strip() if resuming and saved.is_file() else None
    run_id = sweep_run_id() or previous or wandb.util.generate_id()
    replace_atomically(saved, lambda f: f.write(f"{run_id}\n".encode()))
    return run_id
