"""The leaderboard writer: the JSON contract, notes instead of numbers, sorting, files, determinism,
and a popularity row recomputed by hand from the split files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.checkpoints import latest_checkpoint
from evaluation.generative_stage import GenerativeConfig
from evaluation.leaderboard import CANNOT_RANK_COLD, HybridConfig, Leaderboard
from evaluation.reports import sort_rows, to_csv, to_markdown
from recommenders import ALSRecommender, HybridRecommender, PopularityRecommender, RandomRecommender
from songdata import SongDataset

KS = [5, 10]


def tiny_leaderboard(**overrides) -> Leaderboard:
    baselines = [PopularityRecommender(), RandomRecommender(seed=0), ALSRecommender(factors=4, iterations=3)]
    settings = dict(
        baselines=baselines, run_dirs=[], ks=KS, n_bootstrap=50, wandb=False, show_progress=False,
        report_metrics=["recall@10", "ndcg@10", "coverage@10"],
    )
    return Leaderboard(**{**settings, **overrides})


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as a strict reader (e.g. in JavaScript) would."""
    def refuse(constant: str):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from tests.conftest import write_tiny_dataset

    tmp = tmp_path_factory.mktemp("leaderboard")
    root = write_tiny_dataset(tmp / "tiny")
    first, second = tmp / "first", tmp / "second"
    tiny_leaderboard().run(SongDataset(root), first, checkpoints=[])
    tiny_leaderboard().run(SongDataset(root), second, checkpoints=[])
    return root, first, second


def test_rows_follow_the_contract_with_notes_for_cold_cf(two_runs) -> None:
    _, out, _ = two_runs
    for name in ["leaderboard.json", "leaderboard.csv", "leaderboard.md", "run.json", "recall_at_k.png",
                 "metrics_ci.png"]:
        assert (out / name).stat().st_size > 0, name
    rows = strict_json((out / "leaderboard.json").read_text())
    by_key = {(row["model"], row["slice"]): row for row in rows}
    assert set(by_key) == {(m, s) for m in ["popularity", "random", "als"] for s in ["warm", "cold"]}
    for model in ["popularity", "als"]:
        cold = by_key[model, "cold"]
        assert cold["note"] == CANNOT_RANK_COLD and cold["metrics"] == {} and cold["ci95"] == {}
    for row in rows:
        assert set(row) >= {"model", "slice", "metrics", "ci95", "n_users"}
        if "note" not in row:
            assert row["n_users"] > 0 and {"recall@10", "precision@10", "ndcg@10"} <= set(row["metrics"])
            lo, hi = row["ci95"]["ndcg@10"]
            assert lo <= row["metrics"]["ndcg@10"] <= hi
    assert by_key["random", "cold"]["metrics"]["recall@10"] is not None  # random ranks cold songs too
    run = json.loads((out / "run.json").read_text())
    assert "embedding_map.png not drawn: no content model" in run["notes"] and run["checkpoints"] == {}
    assert set(run["timings"]) == {"popularity", "random", "als"}  # per model: fit and evaluation seconds
    assert all(t["fit_s"] >= 0 and t["eval_s"] > 0 for t in run["timings"].values())


def test_same_seed_gives_identical_json(two_runs) -> None:
    _, first, second = two_runs
    assert (first / "leaderboard.json").read_bytes() == (second / "leaderboard.json").read_bytes()
    assert (first / "leaderboard.csv").read_bytes() == (second / "leaderboard.csv").read_bytes()


def test_markdown_is_sorted_by_the_primary_metric(two_runs) -> None:
    _, out, _ = two_runs
    markdown = (out / "leaderboard.md").read_text()
    warm = markdown.split("## warm songs")[1].split("## cold songs")[0]
    lines = [line for line in warm.splitlines() if line.startswith("| ") and "---" not in line]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    column = header.index("ndcg@10")
    values = [float(line.strip("|").split("|")[column]) for line in lines[1:]]
    assert len(values) == 3 and values == sorted(values, reverse=True)
    cold = markdown.split("## cold songs")[1]
    assert cold.index("| random |") < cold.index("| als |")  # rows with numbers above rows with notes


def test_popularity_row_matches_a_recomputation_from_the_split_files(two_runs) -> None:
    root, out, _ = two_runs
    catalog = pd.read_parquet(root / "catalog.parquet")
    splits = {name: pd.read_parquet(root / "splits" / f"{name}.parquet") for name in ["train", "val", "test"]}
    cold = set(json.loads((root / "splits" / "meta.json").read_text())["cold_song_ids"])
    listeners = splits["train"].groupby("song_id")["user_id"].nunique()
    counts = catalog["song_id"].map(listeners).fillna(0).to_numpy()
    order = sorted(range(len(catalog)), key=lambda i: (-counts[i], i))  # ties: lower catalog row first
    ranking = [catalog["song_id"][i] for i in order if catalog["song_id"][i] not in cold]
    recalls = []
    for user, test in splits["test"].groupby("user_id"):
        relevant = set(test["song_id"]) - cold
        if not relevant:
            continue
        seen = set(splits["train"].query("user_id == @user")["song_id"]) | set(
            splits["val"].query("user_id == @user")["song_id"])
        top = [song for song in ranking if song not in seen][:10]
        recalls.append(len(relevant & set(top)) / len(relevant))
    rows = json.loads((out / "leaderboard.json").read_text())
    popularity = next(r for r in rows if r["model"] == "popularity" and r["slice"] == "warm")
    assert popularity["n_users"] == len(recalls)
    assert popularity["metrics"]["recall@10"] == pytest.approx(np.mean(recalls), abs=1e-6)


def test_writers_turn_missing_values_into_nulls_and_keep_extra_columns() -> None:
    """NaN never reaches the files, and a later stage's extra metric becomes a column everywhere."""
    rows = [
        {"model": "a", "slice": "warm", "n_users": 3, "metrics": {"ndcg@10": 0.2, "taste@10": 0.7},
         "ci95": {"ndcg@10": [None, None]}},
        {"model": "b", "slice": "warm", "n_users": 3, "metrics": {"ndcg@10": 0.5}, "ci95": {"ndcg@10": [0.4, 0.6]}},
        {"model": "c", "slice": "cold", "n_users": 0, "metrics": {}, "ci95": {}, "note": "why"},
    ]
    ordered = sort_rows(rows, "ndcg@10")
    assert [r["model"] for r in ordered] == ["b", "a", "c"]
    csv_text = to_csv(ordered)
    assert csv_text.splitlines()[0] == "model,slice,n_users,note,ndcg@10,ndcg@10_lo,ndcg@10_hi,taste@10"
    assert csv_text.splitlines()[2] == "a,warm,3,,0.2,,,0.7"
    markdown = to_markdown(ordered, "ndcg@10", ["taste@10"], "t")
    assert "| 1 | b | 0.5000 | — | [0.4000, 0.6000] | 3 |  |" in markdown
    assert "| 1 | c | — | — | — | 0 | why |" in markdown


def test_leaderboard_without_bootstrap_writes_null_intervals(tmp_path: Path, two_runs) -> None:
    report = tiny_leaderboard(n_bootstrap=0, hybrid=HybridConfig(enabled=False)).run(SongDataset(two_runs[0]), tmp_path, [])
    text = (tmp_path / "leaderboard.json").read_text()
    assert "NaN" not in text and strict_json(text)
    assert all(bounds == [None, None] for row in report.rows for bounds in row["ci95"].values())


def test_validation_split_is_reported_as_such_and_differs_from_test(tmp_path: Path, two_runs) -> None:
    """`split: val`, for tuning: validation users and songs, recorded in the title, run.json and settings."""
    root, test_out, _ = two_runs
    report = tiny_leaderboard(split="val").run(SongDataset(root), tmp_path, checkpoints=[])
    val = {(row["model"], row["slice"]): row for row in report.rows}
    test = {(row["model"], row["slice"]): row for row in strict_json((test_out / "leaderboard.json").read_text())}
    for model in ["popularity", "als"]:
        assert val[model, "warm"]["metrics"] != test[model, "warm"]["metrics"], model
    assert val["random", "cold"]["note"] == "no val user has a cold song"  # every cold interaction is in test
    assert "(validation split, sorted by ndcg@10)" in (tmp_path / "leaderboard.md").read_text()
    assert json.loads((tmp_path / "run.json").read_text())["settings"]["split"] == "val"
    assert json.loads((test_out / "run.json").read_text())["settings"]["split"] == "test"


class PeekingRecommender(PopularityRecommender):
    """Looks at the test split while fitting: the leaderboard must refuse it."""

    name = "peeking"

    def fit(self, data):
        data.test.sum()
        return super().fit(data)


def test_a_baseline_that_reads_test_interactions_while_fitting_fails(two_runs) -> None:
    from recommenders.base import HeldOutAccessError

    board = tiny_leaderboard(baselines=[PeekingRecommender()], hybrid=HybridConfig(enabled=False))
    with pytest.raises(HeldOutAccessError):
        board.fit(SongDataset(two_runs[0]), checkpoints=[])


def test_bad_settings_fail_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="primary_metric"):
        tiny_leaderboard(primary_metric="ndcg@7")
    with pytest.raises(ValueError, match="hybrid.base"):
        tiny_leaderboard(baselines=[PopularityRecommender()])
    with pytest.raises(ValueError, match="split='val' with generative.enabled"):
        tiny_leaderboard(split="val", generative=GenerativeConfig(enabled=True))


def test_latest_checkpoint_prefers_the_newest_best_then_last(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    assert latest_checkpoint(tmp_path / "run") is None
    (folder / "last.ckpt").touch()
    assert latest_checkpoint(tmp_path / "run") == folder / "last.ckpt"
    for i, name in enumerate(["best-epoch=3-step=9.ckpt", "best-epoch=1-step=3.ckpt"]):
        (folder / name).touch()
        os.utime(folder / name, (1000 + i, 1000 + i))
    assert latest_checkpoint(tmp_path / "run") == folder / "best-epoch=1-step=3.ckpt"


def test_a_configured_fusion_takes_its_members_from_their_rows(two_runs, monkeypatch) -> None:
    fits = []
    fit = ALSRecommender.fit
    monkeypatch.setattr(ALSRecommender, "fit", lambda self, data: fits.append(self.factors) or fit(self, data))
    fusion = HybridRecommender([ALSRecommender(factors=4, iterations=3), ALSRecommender(factors=6, iterations=3)],
                               fusion="zscore")
    board = tiny_leaderboard(baselines=[ALSRecommender(factors=4, iterations=3), fusion],
                             hybrid=HybridConfig(enabled=False))
    fitted = board.fit(SongDataset(two_runs[0]), checkpoints=[])
    assert fits == [4, 6]  # the 4-factor ALS once, for its row and the fusion; the 6-factor one for the fusion
    assert fitted.models["hybrid"].components[0] is fitted.models["als"]
    assert fitted.seconds["hybrid"] >= fitted.seconds["als"]  # a fusion's fit time counts the member it took
