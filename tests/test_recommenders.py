"""Recommenders on a planted world: 200 users, 300 songs, 6 listening styles, split like real data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score

from evaluation.evaluator import evaluate_scorer
from evaluation.leaderboard import CANNOT_RANK_COLD, evaluate_models
from recommenders import (
    ALSRecommender,
    BPRRecommender,
    DBSCANRecommender,
    EASERecommender,
    EmbeddingRecommender,
    HybridRecommender,
    ItemKNNRecommender,
    KMeansRecommender,
    PopularityRecommender,
    RandomRecommender,
    Recommender,
    RP3betaRecommender,
    Word2VecRecommender,
    training_only,
)
from recommenders.base import HeldOutAccessError
from songdata.dataset import DatasetTables, normalise_catalog
from songdata.interactions import InteractionData
from songdata.splits import SplitConfig, split_interactions

N_USERS, N_SONGS, N_STYLES = 200, 300, 6
SONG_STYLE = np.arange(N_SONGS) % N_STYLES
USER_STYLE = np.arange(N_USERS) % N_STYLES


@pytest.fixture(scope="module")
def world() -> InteractionData:
    """Users play 30 songs each, 90% inside their style, weighted by a Zipf song popularity."""
    rng = np.random.default_rng(0)
    popularity = rng.zipf(1.5, N_SONGS).clip(max=50).astype(float)
    rows = []
    for user in range(N_USERS):
        inside = SONG_STYLE == USER_STYLE[user]
        p = np.where(inside, 0.9 / inside.sum(), 0.1 / (~inside).sum()) * popularity
        songs = rng.choice(N_SONGS, size=30, replace=False, p=p / p.sum())
        rows += [(f"u{user:03d}", f"s{song:03d}", float(rng.integers(1, 5)), i) for i, song in enumerate(songs)]
    interactions = pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])
    catalog = pd.DataFrame(
        {"song_id": [f"s{s:03d}" for s in range(N_SONGS)], "artist": "a", "title": "t", "lyrics": "",
         "tags": [[] for _ in range(N_SONGS)], "duration_s": 180.0}
    )
    splits, meta = split_interactions(interactions, SplitConfig(seed=0, cold_fraction=0.1))
    tables = DatasetTables(Path("planted"), normalise_catalog(catalog), interactions, None, splits, meta)
    return InteractionData.from_tables(tables)


def planted_embeddings(seed: int = 0) -> np.ndarray:
    """Song embeddings that know each song's style (and nothing about popularity)."""
    return np.eye(8)[SONG_STYLE] + 0.1 * np.random.default_rng(seed).normal(size=(N_SONGS, 8))


FACTORIES = {
    "popularity": lambda seed: PopularityRecommender(),
    "random": lambda seed: RandomRecommender(seed=seed),
    "als": lambda seed: ALSRecommender(factors=16, regularization=0.1, seed=seed),
    "bpr": lambda seed: BPRRecommender(factors=16, learning_rate=0.05, seed=seed),
    "word2vec": lambda seed: Word2VecRecommender(vector_size=32, seed=seed),
    "itemknn": lambda seed: ItemKNNRecommender("cosine", neighbours=50),
    "itemknn_bm25": lambda seed: ItemKNNRecommender("bm25", neighbours=50, shrinkage=5.0, weighting="raw"),
    "rp3beta": lambda seed: RP3betaRecommender(alpha=1.0, beta=0.5, neighbours=50),
    "ease": lambda seed: EASERecommender(l2=50.0),
    "kmeans": lambda seed: KMeansRecommender(n_clusters=N_STYLES, n_init=3, seed=seed),
    "dbscan": lambda seed: DBSCANRecommender(seed=seed),
    "embedding": lambda seed: EmbeddingRecommender(planted_embeddings()),
    "hybrid": lambda seed: HybridRecommender(
        [ALSRecommender(factors=16, regularization=0.1, seed=seed), EmbeddingRecommender(planted_embeddings())]
    ),
    "hybrid_zscore": lambda seed: HybridRecommender(
        [ALSRecommender(factors=16, regularization=0.1, seed=seed), EmbeddingRecommender(planted_embeddings())],
        fusion="zscore",
    ),
}


def recall_at_10(recommender: Recommender, data: InteractionData, slice: str = "warm") -> tuple[float, list[float]]:
    result = evaluate_scorer(recommender.score, data, "test", slice, ks=[10], n_bootstrap=200, show_progress=False)
    return result.metrics["recall@10"], result.ci95["recall@10"]


@pytest.fixture(scope="module")
def baselines(world) -> float:
    """The better of popularity's and random's warm Recall@10."""
    return max(recall_at_10(FACTORIES[name](0).fit(world), world)[0] for name in ("popularity", "random"))


@pytest.mark.parametrize(
    "name", ["als", "bpr", "word2vec", "itemknn", "itemknn_bm25", "rp3beta", "ease", "kmeans", "dbscan", "hybrid",
             "hybrid_zscore"]
)
def test_personalised_models_beat_popularity_and_random(world, baselines, name):
    recall, (low, _) = recall_at_10(FACTORIES[name](0).fit(training_only(world)), world)
    assert low > baselines, f"{name}: recall@10 {recall:.3f} (CI low {low:.3f}) vs best baseline {baselines:.3f}"


def test_embeddings_rank_cold_songs_and_collaborative_models_cannot(world):
    chance = 10 / len(world.cold_songs)  # Recall@10 of a random ranking of the cold songs
    embedding = EmbeddingRecommender(planted_embeddings()).fit(world)
    recall, (low, _) = recall_at_10(embedding, world, "cold")
    assert low > 2 * chance, f"cold recall@10 {recall:.3f} vs chance {chance:.3f}"
    als = FACTORIES["als"](0).fit(world)
    assert not als.can_rank_cold and not Word2VecRecommender().can_rank_cold and not BPRRecommender().can_rank_cold
    assert torch.isinf(als.score(np.arange(5))[:, world.cold_songs]).all()
    rows, _ = evaluate_models({"als": als}, world, ks=(10,), n_bootstrap=0, seed=0, show_progress=False)
    assert [(row["slice"], row.get("note")) for row in rows] == [("warm", None), ("cold", CANNOT_RANK_COLD)]
    # ALS cannot rank cold songs, so the hybrid orders them as the embedding does.
    hybrid = HybridRecommender([als, embedding], fit_components=False)
    assert hybrid.can_rank_cold
    assert recall_at_10(hybrid, world, "cold")[0] == recall


@pytest.mark.parametrize("name", list(FACTORIES))
def test_fitting_never_reads_held_out_interactions(world, name):
    # Any read of data.val or data.test during fit raises HeldOutAccessError.
    FACTORIES[name](0).fit(training_only(world))


def test_training_only_view_refuses_held_out_matrices(world):
    guarded = training_only(world)
    reads = (
        lambda: guarded.test.nnz,
        lambda: guarded.val[0],
        lambda: guarded.train + guarded.val,
        lambda: np.asarray(guarded.test),
    )
    for read in reads:
        with pytest.raises(HeldOutAccessError):
            read()
    assert guarded.train is world.train


@pytest.mark.parametrize("name", list(FACTORIES))
def test_same_seed_gives_identical_scores(world, name):
    users = np.arange(world.n_users)
    model = FACTORIES[name](7).fit(world)
    first = model.score(users)
    assert first.shape == (world.n_users, world.n_songs) and first.dtype == torch.float32
    assert torch.equal(first, FACTORIES[name](7).fit(world).score(users))
    stale = torch.full_like(first, 3.0)  # a reused buffer holds the last chunk's scores
    assert torch.equal(model.score(users, out=stale), first)
    if name in ("random", "als", "bpr", "word2vec"):
        assert not torch.equal(first, FACTORIES[name](8).fit(world).score(users))


def test_popularity_breaks_ties_by_lower_song_index(world):
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [1, 0, 0, 3, 1], [0, 0, 0, 0, 1]], dtype=np.float32))
    histories = [row.indices for row in train]
    data = InteractionData(world.catalog.iloc[:5], ["a", "b", "c"], train, train, train, histories, np.empty(0, int))
    scores = PopularityRecommender().fit(data).score(np.array([0]))[0]
    assert torch.argsort(scores, descending=True).tolist() == [4, 0, 1, 3, 2]
    weighted = PopularityRecommender(weighted=True).fit(data).score(np.array([0]))[0]
    assert torch.argsort(weighted, descending=True).tolist() == [3, 4, 0, 1, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: KMeansRecommender(n_clusters=N_STYLES, n_init=3),
        lambda: DBSCANRecommender(),
        lambda: KMeansRecommender(
            n_clusters=N_STYLES, n_init=3, representation="content", song_embeddings=planted_embeddings()
        ),
        lambda: DBSCANRecommender(representation="content", song_embeddings=planted_embeddings()),
    ],
)
def test_clusters_recover_the_planted_styles(world, make):
    recommender = make().fit(world)
    assert adjusted_rand_score(USER_STYLE, recommender.labels) > 0.9
    # A user's top songs are the most played songs of their own style.
    top = torch.topk(recommender.score(np.arange(N_USERS)), 5).indices.numpy()
    assert np.mean(SONG_STYLE[top] == USER_STYLE[:, None]) > 0.9


def test_dbscan_noise_users_fall_back_to_global_popularity(world):
    noise_only = DBSCANRecommender(min_samples=N_USERS + 1).fit(world)
    assert (noise_only.labels == -1).all()
    popularity = PopularityRecommender().fit(world).score(np.arange(3))
    assert torch.equal(noise_only.score(np.arange(3)), popularity)


class _Fixed(Recommender):
    def __init__(self, scores: list[float], can_rank_cold: bool = False) -> None:
        self.scores, self.can_rank_cold = torch.tensor([scores]), can_rank_cold

    def fit(self, data):
        return self

    def score(self, user_indices, out=None):
        return self.scores.expand(len(user_indices), -1).clone()


def test_hybrid_fuses_only_what_each_component_can_rank():
    inf = float("inf")
    a, b = _Fixed([3.0, 2.0, 1.0, -inf, -inf]), _Fixed([-inf, 1.0, 2.0, 3.0, -inf], can_rank_cold=True)
    rrf = HybridRecommender([a, b], rrf_k=60, fit_components=False).score(np.array([0]))[0]
    expected = [1 / 61, 1 / 62 + 1 / 63, 1 / 63 + 1 / 62, 1 / 61, -inf]
    assert rrf.tolist() == pytest.approx(expected)
    zscore = HybridRecommender([a, b], fusion="zscore", weights=[1.0, 2.0], fit_components=False)
    zscore = zscore.score(np.array([0]))[0]
    z = np.sqrt(3 / 2)  # z-scores of (3, 2, 1) are (z, 0, -z)
    assert zscore.tolist() == pytest.approx([z, 0 - 2 * z, -z + 0, 2 * z, -inf])
    assert HybridRecommender([a, b]).can_rank_cold and not HybridRecommender([a]).can_rank_cold
