"""evaluate_seeds.py: the same dataset over several split seeds, mean over seeds with a seeds × users CI."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import evaluate_seeds
from configs.errors import UserError
from evaluation.split_seeds import evaluate_over_seeds, resplit
from recommenders import ALSRecommender, HybridRecommender, ItemKNNRecommender, PopularityRecommender
from songdata import SongDataset
from tests.test_tuning import dataset  # noqa: F401  (the fixture: a 60-user world written to disk)


def test_each_split_seed_redraws_the_split_with_the_same_fractions(dataset):  # noqa: F811
    folder = SongDataset(dataset)
    first, again, other = resplit(folder, 0), resplit(folder, 0), resplit(folder, 1)
    assert (first.test != again.test).nnz == 0 and (first.test != other.test).nnz > 0
    assert first.train.nnz == other.train.nnz and first.test.nnz == other.test.nnz


def test_two_settings_of_one_model_get_a_row_each(dataset):  # noqa: F811
    models = [PopularityRecommender(), PopularityRecommender(weighted=True)]
    results, seconds, _ = evaluate_over_seeds(models, SongDataset(dataset), [0, 1], [10], show_progress=False)
    assert {name: len(r) for name, r in results.items()} == {"popularity": 2, "popularity-2": 2}
    assert [r.model for r in results["popularity-2"]] == ["popularity-2"] * 2 and len(seconds) == 2
    with pytest.raises(ValueError, match="split_seeds is empty"):
        evaluate_over_seeds(models, SongDataset(dataset), [], [10])
    with pytest.raises(UserError, match="evaluate_seeds.py settings: --split_seeds is empty"):
        evaluate_seeds.main(["--config", "eval.yaml", "--data.root", str(dataset), "--split_seeds", "[]"])


def test_a_fusion_takes_its_members_fits_on_the_same_split_and_ranks_as_if_fitted_alone(dataset, monkeypatch):  # noqa: F811
    def models():
        als = {"factors": 8, "regularization": 0.1, "iterations": 5, "num_threads": 1, "seed": 0}
        return [ALSRecommender(**als), ItemKNNRecommender(neighbours=20),
                HybridRecommender([ALSRecommender(**als), ItemKNNRecommender(neighbours=20)], "zscore", [1.0, 2.0])]

    fits = []
    fit = ALSRecommender.fit
    monkeypatch.setattr(ALSRecommender, "fit", lambda self, data: fits.append(self) or fit(self, data))
    shared, seconds, _ = evaluate_over_seeds(models(), SongDataset(dataset), [0, 1], [10], show_progress=False)
    assert len(fits) == 2  # one ALS per split, for its row and the fusion's
    alone, _, _ = evaluate_over_seeds(models()[2:], SongDataset(dataset), [0, 1], [10], show_progress=False)
    assert len(fits) == 4
    assert [r.metrics for r in shared["hybrid"]] == [r.metrics for r in alone["hybrid"]]
    assert shared["hybrid"][0].metrics != shared["als"][0].metrics  # the fusion is not just its first member
    fusion_s, members_s = seconds["hybrid"]["fit_s"], np.add(seconds["als"]["fit_s"], seconds["itemknn"]["fit_s"])
    assert np.allclose(fusion_s, members_s, atol=2e-3)  # its fit time is its members'


def test_leaderboard_over_split_seeds_reports_the_mean_its_ci_and_timings(dataset, tmp_path):  # noqa: F811
    config = {"baselines": [{"class_path": "recommenders.PopularityRecommender"},
                            {"class_path": "recommenders.ItemKNNRecommender", "init_args": {"neighbours": 20}}],
              "run_dirs": [], "hybrid": {"enabled": False}, "generative": {"enabled": False}, "wandb": False,
              "n_bootstrap": 200, "show_progress": False}
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(config))
    out = evaluate_seeds.main(["--config", "eval.yaml", "--config", str(tmp_path / "seeds.yaml"),
                               "--data.root", str(dataset), "--split_seeds", "[0, 1, 2]", "--out", str(tmp_path / "r")])
    rows = {row["model"]: row for row in json.loads((out / "leaderboard.json").read_text())}
    assert set(rows) == {"popularity", "itemknn"}
    for row in rows.values():
        per_seed = row["per_seed"]["ndcg@10"]
        assert len(per_seed) == 3 and row["metrics"]["ndcg@10"] == pytest.approx(np.mean(per_seed), abs=1e-6)
        low, high = row["ci95"]["ndcg@10"]
        assert low <= row["metrics"]["ndcg@10"] <= high and "mrr@10" in row["metrics"] and "hit@10" in row["metrics"]
    assert len(set(rows["itemknn"]["per_seed"]["ndcg@10"])) > 1  # the seeds really differ
    timings = json.loads((out / "run.json").read_text())["timings"]
    assert all(len(timings[m]["fit_s"]) == len(timings[m]["eval_s"]) == 3 for m in rows)
    # By default the leading row is compared with every other row, paired per user over the same splits.
    leader, other = sorted(rows, key=lambda m: -rows[m]["metrics"]["ndcg@10"])
    pairs = json.loads((out / "comparisons.json").read_text())
    assert [(p["a"], p["b"], p["metric"]) for p in pairs] == [(leader, other, "ndcg@10"), (leader, other, "recall@10")]
    for pair in pairs:
        low, high = pair["ci95"]
        assert pair["n_seeds"] == 3 and low <= pair["diff"] <= high and 0 < pair["p_value"] <= 1
        assert pair["diff"] == pytest.approx(pair["mean_a"] - pair["mean_b"], abs=1e-9)
    assert "Paired comparisons" in (out / "leaderboard.md").read_text() and (out / "comparisons.png").exists()


def test_configured_pairs_replace_the_default_comparison(dataset, tmp_path):  # noqa: F811
    config = {"baselines": [{"class_path": "recommenders.PopularityRecommender"},
                            {"class_path": "recommenders.RandomRecommender"}],
              "run_dirs": [], "hybrid": {"enabled": False}, "generative": {"enabled": False}, "wandb": False,
              "n_bootstrap": 50, "show_progress": False, "comparisons": [{"a": "random", "b": "popularity"}]}
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(config))
    out = evaluate_seeds.main(["--config", "eval.yaml", "--config", str(tmp_path / "seeds.yaml"),
                               "--data.root", str(dataset), "--split_seeds", "[0, 1]", "--out", str(tmp_path / "r")])
    pairs = json.loads((out / "comparisons.json").read_text())
    assert {(p["a"], p["b"]) for p in pairs} == {("random", "popularity")} and all(p["n_seeds"] == 2 for p in pairs)


def test_an_interrupted_run_resumes_from_its_saved_fits(dataset, tmp_path, monkeypatch, caplog):  # noqa: F811
    from recommenders import ItemKNNRecommender

    def baselines(neighbours: int) -> dict:
        return {"baselines": [{"class_path": "recommenders.PopularityRecommender"},
                              {"class_path": "recommenders.ItemKNNRecommender",
                               "init_args": {"neighbours": neighbours}}],
                "run_dirs": [], "hybrid": {"enabled": False}, "generative": {"enabled": False}, "wandb": False,
                "n_bootstrap": 50, "show_progress": False}

    def run(neighbours: int, *extra: str) -> Path:
        (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(baselines(neighbours)))
        return evaluate_seeds.main(["--config", "eval.yaml", "--config", str(tmp_path / "seeds.yaml"),
                                    "--data.root", str(dataset), "--out", str(tmp_path / "r"), *extra])

    fitted, real_fit = [], ItemKNNRecommender.fit

    def fit(self, data):
        fitted.append(data.train.nnz)
        if len(fitted) == 2 and crash:  # the second split's fit dies, as a run cut off would
            raise KeyboardInterrupt
        return real_fit(self, data)

    monkeypatch.setattr(ItemKNNRecommender, "fit", fit)
    crash = True
    with pytest.raises(KeyboardInterrupt):
        run(20, "--split_seeds", "[0, 1]")
    assert len(list((tmp_path / "r" / "fits").rglob("*.npz"))) == 3  # both models of seed 0, popularity of seed 1
    crash, fitted[:] = False, []
    out = run(20, "--split_seeds", "[0, 1]", "--resume", "true")
    assert len(fitted) == 1  # only item-KNN on seed 1 is fitted again
    assert json.loads((out / "run.json").read_text())["reused_fits"] == {"popularity": [0, 1], "itemknn": [0]}
    resumed = json.loads((out / "leaderboard.json").read_text())

    fitted[:] = []
    shutil.rmtree(out)
    fresh = json.loads((run(20, "--split_seeds", "[0, 1]") / "leaderboard.json").read_text())
    assert len(fitted) == 2 and fresh == resumed  # the same rows as an uninterrupted run, CIs included
    fitted[:] = []
    run(20, "--split_seeds", "[0, 1]")  # without --resume nothing saved is read back
    assert len(fitted) == 2
    fitted[:] = []
    run(10, "--split_seeds", "[0, 1, 2]", "--resume", "true")  # other settings, another split: all fitted
    assert len(fitted) == 3
    damaged, kept = sorted((tmp_path / "r" / "fits" / "seed-2").glob("*.npz"))
    damaged.write_bytes(damaged.read_bytes()[:100])  # cut short: named, then its model is fitted again
    caplog.set_level(logging.WARNING)
    reused = json.loads((run(10, "--split_seeds", "[2]", "--resume", "true") / "run.json").read_text())["reused_fits"]
    assert f"{damaged}: unreadable saved fit" in caplog.text and list(reused.values()) == [[2]]
    assert np.load(damaged)["user_indices"].size > 0  # saved again, whole
