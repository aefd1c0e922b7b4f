"""A first run prints no warning caused by the project's own usage (the smoke config, as a new user runs it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import train


@pytest.mark.slow
def test_smoke_run_prints_no_warning_of_ours(tiny_dataset: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    args = ["--config", "smoke.yaml", "--data.root", str(tiny_dataset), "--trainer.default_root_dir", str(tmp_path)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Libraries deprecating each other's APIs (e.g. Lightning's use of torch's LeafSpec): not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"lightning\.")
        # Intentional: frozen lyrics-encoder layers stay in eval mode (no dropout); Lightning asks to ignore it then.
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        train.main([*args, "--data.batch_size=4"])
    stderr = capfd.readouterr().err
    assert "wandb: WARNING" not in stderr, [line for line in stderr.splitlines() if "WARNING" in line]
    assert (tmp_path / "smoke" / "checkpoints" / "last.ckpt").exists()
