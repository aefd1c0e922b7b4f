"""The leaderboard in W&B: the table, the plots, report metrics in the summary, generated songs beside recommendations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evaluation.generative_stage import TASTE_METRICS
from evaluation.reports import Report, flat_row, metric_columns
from lightning_modules.wandb_runs import default_wandb_offline
from songdata import SongDataset


def log_leaderboard(
    report: Report, dataset: SongDataset, project: str, settings: dict, report_metrics: Sequence[str],
    taste_table: list[dict] | None = None,
) -> str:
    """The leaderboard as a `wandb.Table`, the plots as `wandb.Image`s, report metrics in the summary.

    With the generative stage, also `generative/songs`: each generated song (audio player, lyrics)
    beside the top-k recommendations of every model for the same user, with both taste scores.
    """
    import wandb

    default_wandb_offline()
    run = wandb.init(
        project=project, name=f"eval-{dataset.name}", job_type="evaluate",
        dir=str(report.out), config={"dataset": str(dataset.root.resolve()), **settings},
    )
    try:
        columns = ["model", "slice", "n_users", "note", *metric_columns(report.rows)]
        table = wandb.Table(columns=columns, data=[flat_row(row, columns) for row in report.rows])
        images = {f"plots/{p.stem}": wandb.Image(str(p)) for p in report.files if p.suffix == ".png"}
        extra = {"generative/songs": _taste_table(wandb, taste_table)} if taste_table else {}
        run.log({"leaderboard": table, **images, **extra})
        for row in report.rows:
            for metric in report_metrics:
                if row["metrics"].get(metric) is not None:
                    run.summary[f"{row['model']}/{row['slice']}/{metric}"] = row["metrics"][metric]
        return str(Path(run.dir).parent)
    finally:
        run.finish()


def _taste_table(wandb, entries: list[dict]):
    """Generated songs (with players) and recommended songs (no audio file) side by side, per user."""
    columns = ["user_id", "source", "rank", "song", "audio", "lyrics", *TASTE_METRICS]
    data = [
        [e["user_id"], e["source"], e["rank"], e["song"], wandb.Audio(e["audio_path"]) if e["audio_path"] else None,
         e["lyrics"], *(e[m] for m in TASTE_METRICS)]
        for e in sorted(entries, key=lambda e: (e["user_id"], not e["source"].startswith("generated-"), e["source"]))
    ]
    return wandb.Table(columns=columns, data=data)
