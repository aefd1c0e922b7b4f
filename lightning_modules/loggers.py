"""The training run's loggers: a CSV logger that continues a resumed run's rows (none lost, none twice),
and W&B with only the settings it acts on."""

from __future__ import annotations

import csv
import io
import os

import lightning as L
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from songdata.atomic_files import replace_atomically


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` whose `metrics.csv` survives a resume (`--ckpt_path last`) into the same folder.

    Lightning's writer deletes an existing metrics.csv when it starts; this logger reads the rows first
    and hands them back to the new writer, which writes them before any new row (new columns are added
    to the old rows). With `MetricsRowsAtCheckpoint` among the callbacks, the number of rows written is
    saved with every checkpoint; a run resumed from it drops, at its first logged step, the rows written
    after that checkpoint at steps it logs again (a killed run's last steps), so no row is doubled.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._earlier_rows: list[dict[str, str]] | None = None
        self._rows_at_checkpoint: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._earlier_rows is None:
            self._earlier_rows = self._read_rows()
            writer = super().experiment
            if self._earlier_rows:
                writer.metrics[:0] = self._earlier_rows
                writer.save()
            return writer
        return super().experiment

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.log_dir, ExperimentWriter.NAME_METRICS_FILE)

    def _read_rows(self) -> list[dict[str, str]]:
        fs = get_filesystem(self.metrics_path)
        if not fs.isfile(self.metrics_path):
            return []
        with fs.open(self.metrics_path, "r", newline="") as f:
            return list(csv.DictReader(f))

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._rows_at_checkpoint is not None and step is not None:
            self._drop_replayed_rows(self._rows_at_checkpoint, step)
            self._rows_at_checkpoint = None
        super().log_metrics(metrics, step)

    def rows_written(self) -> int:
        """Flush the pending rows, then count the rows of metrics.csv."""
        self.experiment.save()
        return len(self._read_rows())

    def resume_after_row(self, n_rows: int) -> None:
        """The run resumes from a checkpoint taken when metrics.csv held `n_rows` rows."""
        self.experiment  # noqa: B018 -- takes over the earlier rows before the writer would delete them
        self._rows_at_checkpoint = n_rows

    def _drop_replayed_rows(self, n_rows: int, first_step: int) -> None:
        """Of the rows after the first `n_rows`, drop those at steps from `first_step` on (they are logged
        again); the others (an epoch's end, logged after its checkpoint and never replayed) stay."""
        writer = self.experiment
        writer.save()
        rows = self._read_rows()
        kept = rows[:n_rows] + [row for row in rows[n_rows:] if int(float(row["step"])) < first_step]
        if len(kept) == len(rows):
            return
        text = io.StringIO(newline="")
        table = csv.DictWriter(text, fieldnames=writer.metrics_keys)
        table.writeheader()
        table.writerows(kept)
        replace_atomically(self.metrics_path, lambda f: f.write(text.getvalue().encode()))


class MetricsRowsAtCheckpoint(L.Callback):
    """Saves in each checkpoint how many rows metrics.csv held; resuming from it cuts the file back to them.

    Args:
        logger: The run's `ResumableCSVLogger`.
    """

    def __init__(self, logger: ResumableCSVLogger) -> None:
        self.logger = logger

    def state_dict(self) -> dict:
        if rank_zero_only.rank != 0:
            return {}
        return {"metrics_rows": self.logger.rows_written()}

    def load_state_dict(self, state_dict: dict) -> None:
        if rank_zero_only.rank == 0 and "metrics_rows" in state_dict:
            self.logger.resume_after_row(state_dict["metrics_rows"])


def wandb_logger(run_dir: str | os.PathLike, name: str, project: str, run_id: str) -> WandbLogger:
    """A `WandbLogger` that passes W&B only the settings it acts on, so that a run prints no warning of ours.

    `resume` only when W&B syncs (offline, W&B ignores it and says so: the same `run_id` continues the
    run), and without the `anonymous` setting that Lightning always passes (W&B warns that it has no
    effect); Lightning offers no public way to leave it out.
    """
    offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun", "disabled")
    logger = WandbLogger(name=name, project=project, save_dir=run_dir, id=run_id, resume=None if offline else "allow")
    logger._wandb_init.pop("anonymous", None)
    return logger
