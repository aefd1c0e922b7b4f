"""tune.py: searches each baseline on the validation split only and writes a config evaluate.py reads."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from jsonargparse import ArgumentError

import tune
from configs import command_line
from evaluate import build_parser as evaluate_parser
from evaluation.tuning import TUNING_SPLITS, SearchSpace, candidate_settings, load_tuning_data
from recommenders import HybridRecommender
from songdata import SongDataset
from songdata.dataset import write_tables
from songdata.splits import SplitConfig, write_splits

N_USERS, N_SONGS, N_STYLES = 60, 40, 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Users play 12 songs each, mostly from their style; split 80/10/10 per user, no cold songs."""
    root = tmp_path_factory.mktemp("tune_world")
    rng = np.random.default_rng(0)
    rows = []
    for user in range(N_USERS):
        inside = np.arange(N_SONGS) % N_STYLES == user % N_STYLES
        p = np.where(inside, 0.9 / inside.sum(), 0.1 / (~inside).sum())
        songs = rng.choice(N_SONGS, size=12, replace=False, p=p)
        rows += [(f"u{user:02d}", f"s{song:02d}", 1.0, i) for i, song in enumerate(songs)]
    interactions = pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])
    catalog = pd.DataFrame({"song_id": [f"s{s:02d}" for s in range(N_SONGS)], "artist": "a", "title": "t",
                            "lyrics": "", "tags": [[] for _ in range(N_SONGS)], "duration_s": 180.0})
    write_tables(root, catalog, interactions)
    write_splits(root, interactions, SplitConfig(seed=0, cold_fraction=0.0))
    return root


CONFIG = {
    "metric": "ndcg@10",
    "budget": 3,
    "models": [
        {"class_path": "recommenders.PopularityRecommender"},
        {"class_path": "recommenders.ItemKNNRecommender", "space": {"neighbours": [1, 20], "shrinkage": [0.0, 5.0]}},
        {"class_path": "recommenders.EASERecommender", "fixed": {"weighting": "binary"}, "space": {"l2": [1.0, 10.0]}},
    ],
}


def test_tuning_reads_only_train_and_validation_and_writes_a_config_evaluate_reads(dataset, tmp_path, monkeypatch):
    opened = []
    read_table = pq.read_table  # how the dataset folder reads its tables
    monkeypatch.setattr(pq, "read_table", lambda path, *a, **k: opened.append(Path(path).name) or read_table(path, *a, **k))
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    out = tune.main(["--config", str(tmp_path / "tune.yaml"), "--data.root", str(dataset),
                     "--out", str(tmp_path / "tuned.yaml")])
    assert sorted(opened) == ["catalog.parquet", "interactions.parquet", "train.parquet", "val.parquet"]
    tuned = yaml.safe_load(out.read_text())["baselines"]
    assert [b["class_path"].rpartition(".")[2] for b in tuned] == [
        "PopularityRecommender", "ItemKNNRecommender", "EASERecommender", "HybridRecommender"]
    trials = yaml.safe_load(out.with_suffix(".trials.json").read_text())["trials"]
    knn = [t for t in trials if t["class_path"].endswith("ItemKNNRecommender")]
    assert len(knn) == 3  # a 2 × 2 grid over a budget of 3: a random sample of 3 settings
    best = max(knn, key=lambda t: t["metrics"]["ndcg@10"])
    assert tuned[1]["init_args"] == best["init_args"]
    assert tuned[2]["init_args"]["weighting"] == "binary"
    # A greedy fusion: the best model first, then each other model at its best setting.
    fusions = [t for t in trials if t["class_path"].endswith("HybridRecommender")]
    singles = sorted((t for t in trials if t not in fusions), key=lambda t: -t["metrics"]["ndcg@10"])
    leaders = []
    for trial in singles:
        if trial["class_path"] not in [c for c, _ in leaders]:
            leaders.append((trial["class_path"], trial["init_args"]))
    members = [[(c["class_path"], c.get("init_args", {})) for c in f["init_args"]["components"]] for f in fusions]
    assert members[:2] == [[leaders[0], leaders[1]], [leaders[0], leaders[2]]]
    assert tuned[3]["init_args"] == max(fusions, key=lambda t: t["metrics"]["ndcg@10"])["init_args"]
    parser = evaluate_parser()
    config = parser.parse_args(["--config", str(out), "--data.root", str(dataset)])
    assert [b.class_path for b in config.baselines] == [b["class_path"] for b in tuned]
    fusion = parser.instantiate(config).baselines[3]
    assert [type(c).__name__ for c in fusion.components] == [c.rpartition(".")[2] for c, _ in leaders[:len(fusion.components)]]


def test_the_fusion_grows_greedily_by_model_and_weight_and_fits_each_member_once(monkeypatch):
    """Stubbed fits and scores: A leads alone; B at weight 3 helps, then C at weight 1; D never helps."""
    from evaluation import tuning

    gain = {("m.B", 3.0): 0.02, ("m.B", 1.0): 0.005, ("m.C", 1.0): 0.01, ("m.C", 3.0): -0.01}
    fitted = []

    class Member:
        name = "stub"

        def __init__(self, path):
            self.path = path

        def fit(self, data):
            fitted.append(self.path)
            return self

    def build(class_path, init_args):
        if class_path != tuning.FUSION:
            return Member(class_path)
        components = [Member(c["class_path"]) for c in init_args["components"]]
        return HybridRecommender(components, init_args["fusion"], init_args.get("weights"))

    def score(model, class_path, init_args, data, ks, fit_s):
        weights = init_args.get("weights", [1.0] * len(init_args["components"]))
        added = zip((c["class_path"] for c in init_args["components"][1:]), weights[1:])
        return tuning.Trial(class_path, init_args, {"ndcg@10": 0.5 + sum(gain.get(a, -0.05) for a in added)}, fit_s, 0.0)

    monkeypatch.setattr(tuning, "build", build)
    monkeypatch.setattr(tuning, "score_on_validation", score)
    monkeypatch.setattr(tuning, "training_only", lambda data: data)
    single = {path: [tuning.Trial(path, {}, {"ndcg@10": value}, 1.0, 0.0)]
              for path, value in [("m.D", 0.2), ("m.A", 0.5), ("m.C", 0.3), ("m.B", 0.4)]}
    fusions = tuning.tune_fusion(single, None, "ndcg@10", [10], max_members=4, weights=[1.0, 3.0])
    rounds = [[(c["class_path"] for c in f.init_args["components"]), f.init_args.get("weights")] for f in fusions]
    assert [(list(paths), weights) for paths, weights in rounds] == [
        (["m.A", "m.B"], None), (["m.A", "m.B"], [1.0, 3.0]), (["m.A", "m.C"], None), (["m.A", "m.C"], [1.0, 3.0]),
        (["m.A", "m.D"], None), (["m.A", "m.D"], [1.0, 3.0]),
        (["m.A", "m.B", "m.C"], [1.0, 3.0, 1.0]), (["m.A", "m.B", "m.C"], [1.0, 3.0, 3.0]),
        (["m.A", "m.B", "m.D"], [1.0, 3.0, 1.0]), (["m.A", "m.B", "m.D"], [1.0, 3.0, 3.0]),
        (["m.A", "m.B", "m.C", "m.D"], [1.0, 3.0, 1.0, 1.0]), (["m.A", "m.B", "m.C", "m.D"], [1.0, 3.0, 1.0, 3.0]),
    ]  # and D, tried last, lowered the metric: the search stopped
    best = tuning.best_trial(fusions, "ndcg@10")
    assert best.init_args["weights"] == [1.0, 3.0, 1.0] and best.metrics["ndcg@10"] == pytest.approx(0.53)
    assert sorted(fitted) == ["m.A", "m.B", "m.C", "m.D"]  # each member fitted once, however many fusions it joined
    assert tuning.tune_fusion(single, None, "ndcg@10", [10], max_members=1, weights=[1.0]) == []


def test_grid_no_larger_than_the_budget_is_searched_whole_and_a_larger_one_sampled_with_the_seed():
    search = SearchSpace("x.Model", fixed={"seed": 0}, space={"a": [1, 2], "b": ["u", "v", "w"]})
    grid = candidate_settings(search, budget=6, seed=0)
    assert len(grid) == 6 and all(s["seed"] == 0 for s in grid)
    assert len({(s["a"], s["b"]) for s in grid}) == 6
    sample = candidate_settings(search, budget=4, seed=1)
    assert len(sample) == 4 and len({(s["a"], s["b"]) for s in sample}) == 4
    assert sample == candidate_settings(search, budget=4, seed=1)
    assert candidate_settings(SearchSpace("x.Model"), budget=5, seed=0) == [{}]


def test_an_interrupted_search_keeps_its_trials_and_resumes_where_it_stopped(dataset, tmp_path, monkeypatch):
    from evaluation import tuning

    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["--config", str(tmp_path / "tune.yaml"), "--data.root", str(dataset), "--out", str(tmp_path / "tuned.yaml")]
    record = tmp_path / "tuned.trials.json"
    score, fitted = tuning.score_on_validation, []  # every trial, model or fusion, is scored through it

    def interrupted_after_three(model, class_path, init_args, *rest, **kwargs):
        if len(fitted) == 3:
            raise KeyboardInterrupt
        fitted.append(init_args)
        return score(model, class_path, init_args, *rest, **kwargs)

    monkeypatch.setattr(tuning, "score_on_validation", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        tune.main(args)
    kept = yaml.safe_load(record.read_text())["trials"]
    assert len(kept) == 3 and not (tmp_path / "tuned.yaml").exists()
    fitted.clear()
    monkeypatch.setattr(tuning, "score_on_validation", lambda *a, **k: fitted.append(a[2]) or score(*a, **k))
    tune.main(args)
    trials = yaml.safe_load(record.read_text())["trials"]
    n_fusions = sum(t["class_path"].endswith("HybridRecommender") for t in trials)
    assert len(fitted) == len(trials) - 3 == 3 + n_fusions  # 1 + 3 + 2 trials and the fusions, three reused
    assert trials[:3] == kept
    written = (tmp_path / "tuned.yaml").read_text()
    fitted.clear()
    tune.main(args)  # everything finished: nothing is fitted again, the same config comes out
    assert fitted == [] and yaml.safe_load(record.read_text())["trials"] == trials
    assert (tmp_path / "tuned.yaml").read_text() == written  # to the character, from fresh or stored trials
    # The same interactions in another folder are recognised by their fingerprint, not their path.
    copy = shutil.copytree(dataset, tmp_path / "elsewhere")
    tune.main([*args[:3], str(copy), *args[4:]])
    assert fitted == [] and yaml.safe_load(record.read_text())["trials"] == trials


def test_trials_of_other_interactions_are_not_reused(dataset):
    folder = SongDataset(dataset, split_names=TUNING_SPLITS)
    same = load_tuning_data(folder).fingerprint()
    assert same == load_tuning_data(SongDataset(dataset, split_names=TUNING_SPLITS)).fingerprint()
    data = load_tuning_data(folder)
    data.train.data[0] += 1.0  # one listening count changed
    assert data.fingerprint() != same
    data.catalog.loc[0, "song_id"] = "sö 1"  # ids need not be ASCII
    assert data.fingerprint() != same


def test_skipped_models_are_neither_fitted_nor_written(dataset, tmp_path):
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump({**CONFIG, "budget": 1}))
    args = ["--config", str(tmp_path / "tune.yaml"), "--data.root", str(dataset), "--out", str(tmp_path / "t.yaml")]
    out = tune.main([*args, "--skip", "[recommenders.EASERecommender]", "--fuse_max", "0"])
    written = [entry["class_path"] for entry in yaml.safe_load(out.read_text())["baselines"]]
    trials = yaml.safe_load(out.with_suffix(".trials.json").read_text())["trials"]
    assert written == ["recommenders.PopularityRecommender", "recommenders.ItemKNNRecommender"]
    assert "recommenders.EASERecommender" not in {t["class_path"] for t in trials}
    with pytest.raises(ArgumentError, match="SLIMRecommender"):
        tune.main([*args, "--skip", "[recommenders.SLIMRecommender]"])


def test_a_narrower_search_keeps_the_trials_it_leaves_out(dataset, tmp_path, monkeypatch):
    from evaluation import tuning

    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["--config", str(tmp_path / "tune.yaml"), "--data.root", str(dataset), "--out", str(tmp_path / "t.yaml")]
    tune.main(args)
    record = tmp_path / "t.trials.json"
    everything = yaml.safe_load(record.read_text())["trials"]
    score, fitted = tuning.score_on_validation, []
    monkeypatch.setattr(tuning, "score_on_validation", lambda *a, **k: fitted.append(a[2]) or score(*a, **k))
    out = tune.main([*args, "--skip", "[recommenders.EASERecommender]"])
    kept = yaml.safe_load(record.read_text())["trials"]
    assert "recommenders.EASERecommender" not in {e["class_path"] for e in yaml.safe_load(out.read_text())["baselines"]}
    assert sum(t["class_path"] == "recommenders.EASERecommender" for t in kept) == 2  # still there, for later
    assert all(t in kept for t in everything if t["class_path"] != "recommenders.HybridRecommender")
    fitted.clear()
    tune.main(args)  # and the full search finds them again: nothing is fitted anew
    assert fitted == []


@pytest.mark.parametrize("extra", [[], ["--config", "tune_word2vec_playlists.yaml"]])
def test_the_shipped_search_configs_parse(extra):
    config = tune.build_parser().parse_args(command_line(["--config", "tune.yaml", *extra]))
    searches = [SearchSpace(**model) for model in config.models]
    assert all(len(candidate_settings(s, s.budget or config.budget, 0)) > 0 for s in searches)
    if extra:  # the playlist search replaces the model list and fuses nothing
        assert [s.class_path for s in searches] == ["recommenders.Word2VecRecommender"] and config.fuse_max == 0
