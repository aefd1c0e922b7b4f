"""`evaluate.py` end to end: a tiny SimSong checkpoint on the tiny dataset, and an interaction-only dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import pytest

import evaluate
from configs import find_config
from evaluation.taste_validity import NOT_SHOWN
from recommenders.base import Recommender
from tests.conftest import write_tiny_dataset
from tests.test_encoders import make_tiny_simsong

FAST = [  # fewer resamples and cut-offs: the tiny dataset has 12 users
    "--n_bootstrap", "50", "--show_progress", "false", "--ks", "[5, 10]",
    "--report_metrics", "[recall@10, ndcg@10]",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny dataset, a copy without shards, and a run folder holding a tiny SimSong checkpoint."""
    tmp = tmp_path_factory.mktemp("evaluate")
    root = write_tiny_dataset(tmp / "tiny")
    no_shards = tmp / "interactions-only"
    shutil.copytree(root, no_shards, ignore=shutil.ignore_patterns("shards"))
    L.seed_everything(0)
    module = make_tiny_simsong(tmp / "bert")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    checkpoint = tmp / "runs" / "simsong-wns" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    trainer.save_checkpoint(checkpoint)
    return {"root": root, "no_shards": no_shards, "run_dir": checkpoint.parents[1], "tmp": tmp}


def rows_by_key(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["model"], r["slice"]): r for r in json.loads((out / "leaderboard.json").read_text())}


def test_end_to_end_with_a_content_checkpoint(world: dict[str, Path]) -> None:
    """Checkpoint found in the run folder, content and hybrid ranked warm and cold, W&B run under out."""
    out = world["tmp"] / "report"
    report = evaluate.main([
        "--config", "eval.yaml", "--data.root", str(world["root"]), "--out", str(out),
        "--run_dirs", f"[{world['run_dir']}]", *FAST,
        "--comparisons", "[{a: simsong-wns, b: als, slice: warm}]",
    ])
    expected = ["leaderboard.json", "leaderboard.csv", "leaderboard.md", "run.json",
                "recall_at_k.png", "metrics_ci.png", "embedding_map.png", "per_user.parquet",
                "comparisons.json", "comparisons.png"]
    assert all((out / name).stat().st_size > 0 for name in expected)
    rows = rows_by_key(out)
    for model in ["simsong-wns", "als+simsong-wns"]:
        for slice_name in ["warm", "cold"]:
            row = rows[model, slice_name]
            assert row["n_users"] > 0 and 0 <= row["metrics"]["ndcg@10"] <= 1
            # The only note such a row may carry: a taste score not shown to measure taste on this tiny world.
            assert all(NOT_SHOWN in part for part in row.get("note", "").split("; ") if part)
    assert rows["als", "cold"]["note"].startswith("cannot rank cold-start songs")
    assert rows["als", "cold"]["metrics"] == {}
    assert {m for m, _ in rows} >= {"popularity", "random", "als", "bpr", "word2vec", "kmeans", "dbscan"}
    run = json.loads((out / "run.json").read_text())
    assert run["checkpoints"] == {"simsong-wns": str(world["run_dir"] / "checkpoints" / "last.ckpt")}
    assert Path(run["wandb"]).is_relative_to(out.resolve()) and list(Path(run["wandb"]).glob("*.wandb"))
    assert report.markdown.startswith("# Leaderboard: tiny")
    (ndcg, recall) = json.loads((out / "comparisons.json").read_text())  # the named pair, per user
    assert (ndcg["a"], ndcg["b"], ndcg["metric"], recall["metric"]) == ("simsong-wns", "als", "ndcg@10", "recall@10")
    assert ndcg["diff"] == pytest.approx(rows["simsong-wns", "warm"]["metrics"]["ndcg@10"]
                                         - rows["als", "warm"]["metrics"]["ndcg@10"], abs=1e-6)
    assert "| simsong-wns | als | warm | ndcg@10 |" in (out / "leaderboard.md").read_text()


def test_interaction_only_dataset_runs_with_baselines_alone(world: dict[str, Path]) -> None:
    """No shards and fuse 'both': the content model gets note rows, the baselines their numbers;
    with fuse 'lyrics' the content model ranks by lyrics."""
    out = world["tmp"] / "report-interactions"
    checkpoint = world["run_dir"] / "checkpoints" / "last.ckpt"
    evaluate.main([
        "--config", "eval.yaml", "--data.root", str(world["no_shards"]), "--out", str(out),
        "--ckpt", str(checkpoint), "--wandb", "false", *FAST,
    ])
    rows = rows_by_key(out)
    assert rows["als", "warm"]["metrics"]["ndcg@10"] is not None
    assert "no audio shards" in rows["simsong-wns", "warm"]["note"] and rows["simsong-wns", "cold"]["metrics"] == {}
    assert "no audio shards" in rows["audio-logmel", "cold"]["note"] and rows["tags-tfidf", "cold"]["metrics"]
    assert ("als+simsong-wns", "warm") not in rows
    assert not (out / "embedding_map.png").exists()

    lyrics = world["tmp"] / "report-lyrics"  # the catalog has lyrics: fuse lyrics ranks by them
    evaluate.main([
        "--config", "eval.yaml", "--data.root", str(world["no_shards"]), "--out", str(lyrics),
        "--ckpt", str(checkpoint), "--fuse", "lyrics", "--wandb", "false", *FAST,
    ])
    rows = rows_by_key(lyrics)
    assert all("note" not in rows[model, s] for model in ["simsong-wns", "als+simsong-wns"] for s in ["warm", "cold"])


def test_ckpt_takes_one_path_or_appends_several() -> None:
    parser = evaluate.build_parser()
    eval_yaml = ["--config", str(find_config("eval.yaml"))]
    assert parser.parse_args([*eval_yaml, "--ckpt", "a.ckpt"]).ckpt == "a.ckpt"
    assert parser.parse_args([*eval_yaml, "--ckpt+=a.ckpt", "--ckpt+=b.ckpt", "--seed", "1"]).ckpt == ["a.ckpt", "b.ckpt"]
    assert parser.parse_args([*eval_yaml, "--ckpt", "[a, b]"]).ckpt == ["a", "b"]


def test_eval_config_parses_and_builds_every_baseline() -> None:
    parser = evaluate.build_parser()
    config = parser.parse_args(["--config", str(find_config("eval.yaml")), "--ckpt", '["x.ckpt"]'])
    init = parser.instantiate(config)
    assert [b.name for b in init.baselines] == [
        "popularity", "random", "als", "bpr", "word2vec", "itemknn", "rp3beta", "ease", "kmeans", "dbscan",
        "tags-tfidf", "lyrics-minilm", "audio-logmel",
    ]
    assert all(isinstance(b, Recommender) for b in init.baselines)
    assert init.primary_metric == "ndcg@10" and init.ks == [5, 10, 20, 50] and init.fuse == "both"
    assert init.ckpt == ["x.ckpt"] and init.data.root is None and init.hybrid.base == "als"
