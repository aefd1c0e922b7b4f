"""The training command line: LightningCLI without subcommands, bare config names found in `configs/`."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.checkpoint_io import AtomicCheckpointIO
from lightning_modules.loggers import MetricsRowsAtCheckpoint, ResumableCSVLogger


def default_wandb_offline() -> None:
    """W&B runs offline unless the user has configured it (key in the environment or `wandb login`)."""
    netrc = Path.home() / ".netrc"
    logged_in = netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    if "WANDB_MODE" not in os.environ and not os.environ.get("WANDB_API_KEY") and not logged_in:
        os.environ["WANDB_MODE"] = "offline"


def sweep_run_id() -> str | None:
    """The W&B run id when a sweep agent started this process (it sets WANDB_SWEEP_ID and WANDB_RUN_ID)."""
    return (os.environ.get("WANDB_RUN_ID") or None) if os.environ.get("WANDB_SWEEP_ID") else None


def wandb_run_id(run_dir: Path, resuming: bool) -> str:
    """The sweep's run id; else, when resuming, the id the run folder's W&B run had; else a new one.

    The id is kept in `<run_dir>/wandb_run_id`, so `--ckpt_path last` continues the W&B run it resumes.
    """
    import wandb

    saved = run_dir / "wandb_run_id"
    previous = saved.read_text().strip() if resuming and saved.is_file() else None
    run_id = sweep_run_id() or previous or wandb.util.generate_id()
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(run_id + "\n")
    os.replace(tmp, saved)
    return run_id


def per_sweep_run(name: str) -> str:
    """`name-<run id>` under a sweep agent, so that the runs of one sweep never share a folder; else `name`."""
    run_id = sweep_run_id()
    return f"{name}-{run_id}" if run_id else name


class SimSongCLI(LightningCLI):
    """Adds the run name, `--ckpt_path`, and the run folder layout `<default_root_dir>/<run_name>/`.

    Inside a run folder: `checkpoints/` (`last.ckpt` and the best by `monitor`, each written whole
    or not at all: `AtomicCheckpointIO`), `csv/` metrics (kept across resumes, no row twice),
    the W&B run (offline unless configured; a resume continues it: `wandb_run_id`) and `config.yaml`. Under a W&B sweep agent the run name
    becomes `<run_name>-<W&B run id>` and the W&B logger joins that run, so each sweep run has its
    own folder, and a run the agent resumes (same id) finds its own `--ckpt_path last`.
    """

    def before_instantiate_classes(self) -> None:
        self.config.run_name = per_sweep_run(self.config.run_name)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--run_name", type=str, default="simsong", help="Run folder and W&B run name.")
        parser.add_argument("--wandb_project", type=str, default="simsong", help="W&B project.")
        parser.add_argument("--monitor", type=str, default="val/a2l_R@10", help="Metric that picks the best checkpoint.")
        parser.add_argument(
            "--ckpt_path", type=str | None, default=None, help="Resume from a checkpoint; `last` = this run's last.ckpt."
        )
        parser.link_arguments("data.segment_seconds", "model.segment_seconds")

    def run_dir(self) -> Path:
        return Path(self.config.trainer.default_root_dir or "runs") / self.config.run_name

    def instantiate_trainer(self, **kwargs):
        run_dir = self.run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        config = self._get(self.config_init, "trainer", default={})
        extra = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        if config.get("logger") in (None, True):
            default_wandb_offline()
            csv_logger = ResumableCSVLogger(run_dir, name="csv", version="")
            run_id = wandb_run_id(run_dir, resuming=self.config.ckpt_path is not None)
            kwargs["logger"] = [
                csv_logger,
                WandbLogger(
                    name=self.config.run_name, project=self.config.wandb_project, save_dir=run_dir, id=run_id,
                    resume="allow",
                ),
            ]
            extra.append(MetricsRowsAtCheckpoint(csv_logger))
        best = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best-{epoch}-{step}", monitor=self.config.monitor, mode="max"
        )
        # Lightning only refreshes `save_last` when a best checkpoint is written; resuming needs every epoch.
        last = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1, enable_version_counter=False
        )
        callbacks = list(config.get("callbacks") or []) + extra + [best, last]
        if kwargs.get("logger", config.get("logger")) not in (False, None, []):
            callbacks.append(LearningRateMonitor("step"))
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):  # a CheckpointIO of the user's wins
            plugins = [*plugins, AtomicCheckpointIO()]
        return self.trainer_class(**{**config, **kwargs, "callbacks": callbacks, "plugins": plugins})
