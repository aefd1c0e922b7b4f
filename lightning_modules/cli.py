"""The training command line: LightningCLI without subcommands, bare config names found in `configs/`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jsonargparse import Namespace
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from configs import command_line
from lightning_modules.checkpoint_io import AtomicCheckpointIO
from lightning_modules.loggers import MetricsRowsAtCheckpoint, ResumableCSVLogger, wandb_logger
from lightning_modules.wandb_runs import default_wandb_offline, per_sweep_run, wandb_run_id


class SimSongCLI(LightningCLI):
    """Adds the run name, `--ckpt_path`, and the run folder layout `<default_root_dir>/<run_name>/`.

    Inside a run folder: `checkpoints/` (`last.ckpt` and the best by `monitor`, each written whole
    or not at all: `AtomicCheckpointIO`), `csv/` metrics (kept across resumes, no row twice),
    the W&B run (offline unless configured; a resume continues it: `wandb_run_id`) and `config.yaml`. Under a W&B sweep agent the run name
    becomes `<run_name>-<W&B run id>` and the W&B logger joins that run, so each sweep run has its
    own folder, and a run the agent resumes (same id) finds its own `--ckpt_path last`.

    Args:
        dataset_root: Turns `data.root` into the folder to open (the entry point's default for an empty one).
        *args, **kwargs: As `LightningCLI`; `args=None` reads the command line.
    """

    def __init__(self, *args, dataset_root: Callable[[str | None], Path] | None = None, **kwargs) -> None:
        self.dataset_root = dataset_root
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """The command line (or `args`, never both), with bare config names found in `configs/`."""
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(command_line(args))

    def before_instantiate_classes(self) -> None:
        self.config.run_name = per_sweep_run(self.config.run_name)
        if self.dataset_root is not None:
            self.config.data.root = str(self.dataset_root(self.config.data.root))

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
                wandb_logger(run_dir, self.config.run_name, self.config.wandb_project, run_id),
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
