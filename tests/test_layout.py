"""The layout's promises: one owner of the dataset folder, and training/evaluation apart from the demo world."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["callbacks", "configs", "datamodules", "evaluation", "generative", "lightning_modules", "recommenders",
            "taste"]


def _sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((REPO / folder).rglob("*.py"))]


def test_training_and_evaluation_import_nothing_of_the_demo_world():
    modules = "train, evaluate, tune, evaluate_seeds, evaluation.leaderboard, callbacks.recommendation, callbacks.generative"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith('prepare.demo')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_only_the_dataset_package_spells_out_the_folder_layout():
    """Outside `songdata/` (and `prepare/`, which writes folders) no module names a file or folder of the layout."""
    layout = re.compile(r"""["'](shards|splits|catalog\.parquet|interactions\.parquet|similarity\.parquet|index\.json)["'/]""")
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in _sources(*PACKAGES) + [REPO / "train.py", REPO / "evaluate.py"]
                 for i, line in enumerate(p.read_text().splitlines(), 1) if layout.search(line)]
    assert offenders == []


def test_ns_config_states_only_what_differs_from_wns():
    lines = [line for line in (REPO / "configs" / "ns.yaml").read_text().splitlines() if line and not line.startswith("#")]
    assert "config: wns.yaml" in lines and len(lines) <= 6
