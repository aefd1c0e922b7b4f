"""Importers: turn public music data sets and local manifests into dataset folders (see `prepare_data.py`)."""

from pathlib import Path

import pandas as pd

from prepare.report import PrepareReport
from songdata.dataset import write_tables
from songdata.splits import SplitConfig, write_splits


def write_interaction_dataset(
    input: Path, out: Path, catalog: pd.DataFrame, interactions: pd.DataFrame, split: SplitConfig | None,
    report: PrepareReport,
) -> PrepareReport:
    """The common end of an interaction-only import: tables, splits, and the counts in the report."""
    if catalog.empty:
        raise ValueError(f"{input}: no song could be imported\n{report.summary()}")
    write_tables(out, catalog, interactions)
    meta = write_splits(out, interactions, split or SplitConfig())
    report.written.update(songs=len(catalog), users=interactions["user_id"].nunique(), interactions=len(interactions))
    report.written.update({f"split_{name}": count for name, count in meta["counts"].items()})
    return report
