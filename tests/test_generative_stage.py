"""The leaderboard's generative stage (taste scores of generated songs and of every model's top-k) and the
GenerativeComparison callback, on the tiny tone dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.loggers import CSVLogger

from evaluation.generative_stage import GenerativeConfig, JudgeConfig
from evaluation.leaderboard import Leaderboard
from recommenders import ALSRecommender, PopularityRecommender
from songdata import SongDataset
from tests.chat_server import ChatServer, Reply
from tests.conftest import wandb_records, write_tiny_dataset

STAGE = dict(enabled=True, num_users=3, k=2, backends=["oracle", "random"], reference_songs=6,
             generate_args=["--generator.seconds", "2"])
ROWS = {"heldout", "history", "random-songs", "popularity", "als", "generated-oracle", "generated-random"}


def leaderboard(wandb: bool = False, **generative) -> Leaderboard:
    return Leaderboard(
        baselines=[PopularityRecommender(), ALSRecommender(factors=4, iterations=3)], run_dirs=[], ks=[5, 10],
        n_bootstrap=50, wandb=wandb, show_progress=False, report_metrics=["recall@10"],
        generative=GenerativeConfig(**generative),
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("generative")
    root = write_tiny_dataset(tmp / "tiny")
    out = tmp / "report"
    first = leaderboard(wandb=True, **STAGE).run(SongDataset(root), out, checkpoints=[])
    run_json = json.loads((out / "run.json").read_text())
    meta_first, wandb_dir = run_json["generative"], Path(run_json["wandb"])
    second = leaderboard(**STAGE).run(SongDataset(root), out, checkpoints=[])
    meta_second = json.loads((out / "run.json").read_text())["generative"]
    return {"root": root, "out": out, "first": first, "second": second, "meta": (meta_first, meta_second), "tmp": tmp,
            "wandb_dir": wandb_dir}


def test_rows_gain_taste_scores_with_cis_and_generators_get_rows(two_runs: dict) -> None:
    rows = {(r["model"], r["slice"]): r for r in json.loads((two_runs["out"] / "leaderboard.json").read_text())}
    for key in [("popularity", "warm"), ("als", "warm"), ("generated-oracle", "generated")]:
        row = rows[key]
        for metric in ["midi_similarity", "lyric_relevance"]:
            lo, hi = row["ci95"][metric]
            assert -1 <= lo <= row["metrics"][metric] <= hi <= 1, (key, metric)
    assert "embedding, not LLM" in rows["generated-oracle", "generated"]["note"]
    assert rows["generated-oracle", "generated"]["n_users"] == 3
    assert "midi_similarity" not in rows["als", "cold"]["metrics"]  # a note row stays as it was
    meta = two_runs["meta"][0]
    assert meta["judge"]["kind"] == "embedding, not LLM"
    assert set(meta["failures"]) == ROWS  # counted per row and metric
    for name in ["heldout", "history", "random-songs"]:
        assert rows[name, "reference"]["n_users"] == 3 and "midi_similarity" in rows[name, "reference"]["ci95"]
    assert rows["generated-random", "generated"]["metrics"]["near_copy_rate"] == 0.0
    assert "lyric_relevance" in (two_runs["out"] / "leaderboard.csv").read_text().splitlines()[0]


def test_second_run_reuses_songs_and_transcriptions(two_runs: dict) -> None:
    first, second = two_runs["meta"]
    assert first["generation_counts"]["oracle"] == {"complete": 3}
    assert second["generation_counts"]["oracle"] == {"skipped_complete": 3}  # nothing generated again
    assert first["transcriber"]["misses"] > 0 and first["catalog_songs_decoded"] > 0 and first["catalog_skipped"] == {}
    assert second["transcriber"]["misses"] == 0 and second["catalog_songs_decoded"] == 0
    assert two_runs["first"].rows == two_runs["second"].rows  # same seed, same scores


def logged_tables(wandb_dir: Path) -> dict[str, tuple[dict, dict[str, Path]]]:
    """Tables of an offline W&B run, read back from its `.wandb` log: artifact name → (table json, staged files).

    A logged table travels as a `run_table` artifact holding the table and its media (staged outside the run
    folder until `wandb sync`); the run folder itself only keeps a copy without media.
    """
    def tables_of(records: list) -> list:
        return [r.artifact for r in records if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "run_table"]

    tables = {}
    for artifact in tables_of(wandb_records(wandb_dir, lambda records: len(tables_of(records)) >= 2)):
        files = {e.path: Path(e.local_path) for e in artifact.manifest.contents}
        (table,) = [json.loads(path.read_text()) for name, path in files.items() if name.endswith(".table.json")]
        tables[artifact.name] = (table, files)
    return tables


def test_wandb_table_plays_generated_songs_beside_the_recommendations(two_runs: dict) -> None:
    tables = logged_tables(two_runs["wandb_dir"])
    (name,) = [n for n in tables if "generativesongs" in n]  # W&B drops the "/" of the key
    table, files = tables[name]
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    generated = [r for r in rows if r["source"] == "generated-oracle"]
    recommended = [r for r in rows if r["source"] in ("popularity", "als")]
    assert len(generated) == 6 and len(recommended) == 3 * 2 * 2  # 3 users: 2 songs each; top-2 of 2 models
    for row in generated:  # a player: the wav itself travels with the table
        assert row["audio"]["_type"] == "audio-file" and files[row["audio"]["path"]].stat().st_size > 1000
        assert row["lyrics"] and -1 <= row["midi_similarity"] <= 1 and 0 <= row["lyric_relevance"] <= 1
    assert all(r["audio"] is None and r["lyrics"] for r in recommended)  # catalog songs: lyrics, no file
    by_user = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row["source"])
    assert len(by_user) == 3 and all(sources[:2] == ["generated-oracle"] * 2 for sources in by_user.values())


def judged_copy(two_runs: dict, tmp_path: Path, server: ChatServer) -> tuple[Path, dict]:
    """The stage again, on a copy of the first report (songs and transcriptions reused), judged by `server`."""
    out = tmp_path / "report"
    shutil.copytree(two_runs["out"], out)
    judge = JudgeConfig("openai", "judge-test", server.base_url, api_key_env="JUDGE_KEY")
    leaderboard(**{**STAGE, "judge": judge}).run(SongDataset(two_runs["root"]), out, checkpoints=[])
    rows = {(r["model"], r["slice"]): r for r in json.loads((out / "leaderboard.json").read_text())}
    return out, rows


def test_llm_judge_on_an_openai_compatible_server_scores_every_row(two_runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-stage-SECRET-5150")
    reply = json.dumps({"rationale": "Same imagery.", "theme_consistency": 7, "style_consistency": 9, "overall": 8})
    with ChatServer([Reply(content=reply)]) as server:
        out, rows = judged_copy(two_runs, tmp_path, server)
    for key in [("popularity", "warm"), ("als", "warm"), ("generated-oracle", "generated")]:
        assert rows[key]["metrics"]["lyric_relevance"] == pytest.approx(0.8)
        assert rows[key]["ci95"]["lyric_relevance"] == pytest.approx([0.8, 0.8])
    assert "lyric judge: llm" in rows["generated-oracle", "generated"]["note"]
    meta = json.loads((out / "run.json").read_text())["generative"]
    assert meta["judge"] == {"name": "lyric_judge/openai:judge-test", "kind": "llm"}
    sent = server.requests
    assert sent and all(r["headers"]["Authorization"] == "Bearer sk-stage-SECRET-5150" for r in sent)
    assert all(r["json"]["model"] == "judge-test" for r in sent)
    assert len({json.dumps(r["json"]["messages"]) for r in sent}) == len(sent)  # each pair judged once
    assert not any(b"sk-stage-SECRET-5150" in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_unparseable_judgements_are_counted_never_scored(two_runs, tmp_path) -> None:
    with ChatServer([Reply(content="These lyrics are a solid 9/10!")]) as server:
        out, rows = judged_copy(two_runs, tmp_path, server)
    for key in [("popularity", "warm"), ("als", "warm"), ("generated-oracle", "generated")]:
        assert "lyric_relevance" not in rows[key]["metrics"] and "lyric_relevance" not in rows[key]["ci95"]
        assert rows[key]["metrics"]["midi_similarity"] is not None  # the other score is unaffected
    failures = json.loads((out / "run.json").read_text())["generative"]["failures"]
    assert sum(failures["generated-oracle"]["lyric_relevance"].values()) == 6
    assert all(reason.startswith("unparseable") for reason in failures["als"]["lyric_relevance"])


def test_disabled_stage_adds_no_taste_columns(two_runs: dict) -> None:
    out = two_runs["tmp"] / "off"
    report = leaderboard(enabled=False).run(SongDataset(two_runs["root"]), out, checkpoints=[])
    assert not any("lyric_relevance" in r["metrics"] or r["slice"] == "generated" for r in report.rows)
    assert "midi_similarity" not in (out / "leaderboard.csv").read_text()
    assert not (out / "generated").exists()


def test_callback_logs_taste_scalars_beside_generated_songs(two_runs: dict, tmp_path: Path) -> None:
    from callbacks.generative import GenerativeComparison
    from datamodules.music import MusicDataModule
    from tests.test_encoders import make_tiny_simsong

    L.seed_everything(0)
    module = make_tiny_simsong(tmp_path / "bert")
    callback = GenerativeComparison(
        manifest_dir=str(two_runs["out"] / "generated" / "oracle"), num_users=2, k=2,
        cache_dir=str(two_runs["out"] / "cache"),  # the stage's transcriptions and reference statistics
    )
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=CSVLogger(tmp_path, name="csv", version=""), callbacks=[callback],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_train_batches=1, limit_val_batches=1,
    )
    trainer.fit(module, datamodule=MusicDataModule(str(two_runs["root"]), batch_size=4, num_workers=0,
                                                    segment_seconds=1.0))
    metrics = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    for name in ["simsong", "generated-oracle"]:
        for key in ["midi_similarity", "lyric_relevance"]:
            assert metrics[f"gen/{name}/{key}"].dropna().between(-1, 1).all() and len(metrics[f"gen/{name}/{key}"].dropna()) == 1


def test_validity_auc_is_recomputed_from_the_stored_per_song_scores(two_runs: dict) -> None:
    """The report's validity AUC follows from taste_scores.csv alone: heldout vs random-songs per user, averaged."""
    scores = pd.read_csv(two_runs["out"] / "taste_scores.csv")
    validity = two_runs["meta"][0]["validity"]
    for metric in ["midi_similarity", "lyric_relevance"]:
        aucs = []
        for _, songs in scores.groupby("user_id"):
            pos = songs.loc[songs["source"] == "heldout", metric].dropna().to_numpy()
            neg = songs.loc[songs["source"] == "random-songs", metric].dropna().to_numpy()
            if len(pos) and len(neg):
                aucs.append(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))
        assert validity[metric]["auc"] == pytest.approx(np.mean(aucs), abs=1e-6)
        assert validity[metric]["n_users"] == len(aucs)
        lo, hi = validity[metric]["ci95"]
        marked = "not shown to measure taste on this dataset" in (two_runs["out"] / "taste.md").read_text()
        assert marked == any(not validity[m]["shown"] for m in validity) and lo <= validity[metric]["auc"] <= hi


def test_generators_are_compared_pairwise_with_the_best_recommender_and_heldout(two_runs: dict) -> None:
    comparisons = two_runs["meta"][0]["comparisons"]
    pairs = {(c["metric"], c["a"], c["b"]) for c in comparisons}
    for metric in ["midi_similarity", "lyric_relevance"]:
        for generator in ["generated-oracle", "generated-random"]:
            assert (metric, generator, "heldout") in pairs
            assert any(a == generator and b in ("popularity", "als") for m, a, b in pairs if m == metric)
    assert all(c["n_users"] == 3 and c["ci95"][0] <= c["diff"] <= c["ci95"][1] for c in comparisons)
