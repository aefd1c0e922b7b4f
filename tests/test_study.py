"""study.py's bookkeeping: run names and commands, per-seed reports merged into one leaderboard and comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from jsonargparse import ArgumentParser

import study
from configs import CONFIG_DIR
from evaluation.comparisons import Pair
from evaluation.study import StudyPlan, summarise_study, train_command


def test_run_names_commands_and_renames(tmp_path: Path) -> None:
    plan = StudyPlan("st", {"wns": "wns.yaml", "ns": "ns.yaml"}, [0, 1], tmp_path)
    runs = plan.runs()
    assert [r.run_name for r in runs] == ["st-wns-s0", "st-ns-s0", "st-wns-s1", "st-ns-s1"]
    command = train_command(runs[2], ["--trainer.max_epochs=2"], "data/x")
    assert command[:3] == ["train.py", "--config", "wns.yaml"] and command[-1] == "--trainer.max_epochs=2"
    assert "--seed_everything" in command and command[command.index("--data.seed") + 1] == "1"
    assert plan.rename("als+st-wns-s1", 1) == "als+wns" and plan.rename("st-wns-s10", 1) == "st-wns-s10"
    assert not runs[0].finished()


def test_default_study_config_parses() -> None:
    parser = ArgumentParser()
    parser.add_function_arguments(study.run_study)
    config = parser.parse_object(yaml.safe_load((CONFIG_DIR / "study.yaml").read_text()))
    assert config.seeds == [0, 1, 2] and set(config.configs) == {"wns", "ns"}
    assert Pair("wns", "ns", "warm") in parser.instantiate_classes(config).pairs


def _seed_folder(folder: Path, seed: int, gain: float) -> None:
    """A seed's evaluation as evaluate.py writes it: content models under their run names."""
    rng = np.random.default_rng(seed)
    users = np.arange(50)
    values = {"als": rng.random(50) * 0.2, f"st-ns-s{seed}": rng.random(50) * 0.2}
    values[f"st-wns-s{seed}"] = values[f"st-ns-s{seed}"] + gain
    folder.mkdir(parents=True)
    rows, frames = [], []
    for model, v in values.items():
        rows.append({"model": model, "slice": "warm", "n_users": 50, "metrics": {"ndcg@10": float(v.mean()),
                     "recall@10": float(v.mean())}, "ci95": {}})
        frames.append(pd.DataFrame({"model": model, "slice": "warm", "user": users, "ndcg@10": v, "recall@10": v}))
    rows.append({"model": "als", "slice": "cold", "n_users": 0, "metrics": {}, "ci95": {}, "note": "cannot rank"})
    (folder / "leaderboard.json").write_text(json.dumps(rows))
    pd.concat(frames).to_parquet(folder / "per_user.parquet")


def test_seeds_merge_into_one_row_per_model_and_paired_comparisons(tmp_path: Path) -> None:
    plan = StudyPlan("st", {"wns": "wns.yaml", "ns": "ns.yaml"}, [0, 1, 2], tmp_path / "runs")
    for seed in plan.seeds:
        _seed_folder(tmp_path / "out" / f"seed-{seed}", seed, gain=0.05)
    pairs = [Pair("wns", "ns", "warm"), Pair("best_content", "best_baseline", "warm")]
    summary = summarise_study(plan, tmp_path / "out", pairs, ["ndcg@10"], 200, 500, 0, wandb=False)
    rows = {(r["model"], r["slice"]): r for r in summary["rows"]}
    assert rows["wns", "warm"]["n_seeds"] == 3 and rows["als", "cold"]["note"] == "cannot rank"
    lo, hi = rows["wns", "warm"]["ci95"]["ndcg@10"]
    assert lo < rows["wns", "warm"]["metrics"]["ndcg@10"] < hi
    wns_ns, content_baseline = summary["comparisons"]
    assert wns_ns["diff"] == pytest.approx(0.05) and wns_ns["n_seeds"] == 3 and wns_ns["p_value"] < 0.01
    assert (content_baseline["a"], content_baseline["b"]) == ("wns", "als")
    for name in ["leaderboard.json", "leaderboard.md", "comparisons.json", "comparisons.png"]:
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "| wns | ns | warm | ndcg@10 | +0.0500 |" in (tmp_path / "out" / "leaderboard.md").read_text()
