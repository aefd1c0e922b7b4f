"""What a data preparation run did and skipped, so that nothing is dropped silently."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class PrepareReport:
    """Counts of what was written and, per reason, of what was skipped."""

    written: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str = "") -> None:
        """Count one skipped item; keep the first example of each reason for the report."""
        self.skipped[reason] += 1
        if example and reason not in self.examples:
            self.examples[reason] = example

    def skip_rows(self, reason: str, dropped: pd.DataFrame, where: str) -> None:
        """Count every dropped row of a table under `reason`, with the first one as the example."""
        if len(dropped):
            self.skipped[reason] += len(dropped)
            self.examples.setdefault(reason, f"{where}: {[str(value) for value in dropped.iloc[0].tolist()]}")

    def merge(self, other: PrepareReport) -> None:
        self.written.update(other.written)
        self.skipped.update(other.skipped)
        for reason, example in other.examples.items():
            self.examples.setdefault(reason, example)

    def summary(self) -> str:
        lines = ["written: " + (", ".join(f"{k}={v}" for k, v in sorted(self.written.items())) or "nothing")]
        if not self.skipped:
            lines.append("skipped: nothing")
        for reason, count in self.skipped.most_common():
            example = f" (e.g. {self.examples[reason]})" if reason in self.examples else ""
            lines.append(f"skipped {count}: {reason}{example}")
        return "\n".join(lines)
