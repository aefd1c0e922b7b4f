"""A CSV logger for run folders that are resumed: the rows of the run before are kept, none twice."""

from __future__ import annotations

import csv
import os

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only


class _ContinuingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv when it starts; this one continues it."""

    def __init__(self, log_dir: str) -> None:
        self._checkpoint_rows: int | None = None
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(csv.DictReader(f).fieldnames or [])

    def _read_rows(self) -> list[dict]:
        if not self._fs.isfile(self.metrics_file_path):
            return []
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            return list(csv.DictReader(f))

    def _rewrite_with_new_header(self, fieldnames: list[str], rows: list[dict] | None = None) -> None:
        """Lightning rewrites metrics.csv in place; this writes a new file and renames it over the old."""
        rows = self._read_rows() if rows is None else rows
        tmp = f"{self.metrics_file_path}.tmp"
        with self._fs.open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.metrics_file_path)

    def rows_written(self) -> int:
        """Flush the pending rows, then count the rows of metrics.csv."""
        self.save()
        return len(self._read_rows())

    def resume_after_row(self, n_rows: int) -> None:
        """The run resumes from a checkpoint taken when metrics.csv held `n_rows` rows.

        Of the rows after them, those at a step the resumed run logs again are dropped when it first
        saves; the others (an epoch's end, logged after its checkpoint and never replayed) stay.
        """
        self._checkpoint_rows = n_rows

    def save(self) -> None:
        n_rows = self._checkpoint_rows
        if n_rows is not None and self.metrics:
            replayed_from = min(int(m["step"]) for m in self.metrics)
            rows = self._read_rows()
            kept = rows[:n_rows] + [r for r in rows[n_rows:] if int(float(r["step"])) < replayed_from]
            if len(kept) < len(rows):
                self._rewrite_with_new_header(self.metrics_keys, kept)
            self._checkpoint_rows = None
        super().save()


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` whose `metrics.csv` survives a resume (`--ckpt_path last`) into the same folder.

    New columns are added to the old rows. With `MetricsRowsAtCheckpoint` among the callbacks, rows are
    flushed at every checkpoint and their count saved with it; a resumed run drops the rows logged after
    that checkpoint at steps it logs again (a killed run's last steps), so no row is lost or doubled.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


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
        return {"metrics_rows": self.logger.experiment.rows_written()}

    def load_state_dict(self, state_dict: dict) -> None:
        if rank_zero_only.rank == 0 and "metrics_rows" in state_dict:
            self.logger.experiment.resume_after_row(state_dict["metrics_rows"])
