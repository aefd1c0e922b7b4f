"""Item-KNN, RP3beta and EASE against figures worked out by hand on a 3-user × 4-song matrix.

        s0 s1 s2 s3
    u0   1  1  .  .
    u1   1  1  1  .
    u2   .  1  1  1      (s4: no training interaction)

Listeners: s0 {u0,u1}, s1 {u0,u1,u2}, s2 {u1,u2}, s3 {u2}. u0 has heard s0 and s1, so its
scores for s2 and s3 are the sums of s0's and s1's similarities to them.
"""

from math import sqrt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recommenders import EASERecommender, ItemKNNRecommender, RP3betaRecommender, training_only
from songdata.dataset import DatasetTables, normalise_catalog
from songdata.interactions import InteractionData

TRAIN = [("u0", 0), ("u0", 1), ("u1", 0), ("u1", 1), ("u1", 2), ("u2", 1), ("u2", 2), ("u2", 3)]
HELD_OUT = [("u0", 2), ("u1", 3), ("u2", 0)]


@pytest.fixture(scope="module")
def tiny() -> InteractionData:
    def table(pairs):
        return pd.DataFrame({"user_id": [u for u, _ in pairs], "song_id": [f"s{s}" for _, s in pairs],
                             "weight": 3.0, "position": range(len(pairs))})

    catalog = pd.DataFrame({"song_id": [f"s{s}" for s in range(5)], "artist": "a", "title": "t", "lyrics": "",
                            "tags": [[] for _ in range(5)], "duration_s": 180.0})
    splits = {"train": table(TRAIN), "val": table(HELD_OUT[:1]), "test": table(HELD_OUT[1:])}
    interactions = pd.concat(splits.values(), ignore_index=True)
    splits = {name: split.drop(columns="position") for name, split in splits.items()}
    tables = DatasetTables(Path("tiny"), normalise_catalog(catalog), interactions, None, splits, {})
    return InteractionData.from_tables(tables)


def u0_scores(model) -> list[float]:
    """u0's scores for s2 and s3, after checking that the untrained s4 cannot be ranked."""
    scores = model.score(np.array([0]))[0]
    assert scores.dtype == torch.float32 and torch.isneginf(scores[4])
    return scores[[2, 3]].tolist()


def test_item_knn_cosine_sums_the_cosines_of_the_users_songs(tiny):
    model = ItemKNNRecommender("cosine", neighbours=3).fit(training_only(tiny))
    # cos(s0,s2) = 1/(√2·√2), cos(s1,s2) = 2/(√3·√2); cos(s0,s3) = 0, cos(s1,s3) = 1/(√3·1)
    assert u0_scores(model) == pytest.approx([1 / 2 + 2 / sqrt(6), 1 / sqrt(3)], rel=1e-6)
    assert model.similarity.diagonal().sum() == 0  # a song is not its own neighbour


def test_item_knn_keeps_only_the_nearest_neighbours_and_shrinks_rare_pairs(tiny):
    nearest = ItemKNNRecommender("cosine", neighbours=1).fit(tiny)
    # nearest: s0 → s1 (0.816 > 0.5), s2 → s1 (0.816 > 0.707), s3 → s2 (0.707 > 0.577)
    assert [nearest.similarity[s].indices.tolist() for s in (0, 2, 3)] == [[1], [1], [2]]
    assert u0_scores(nearest)[1] == 0.0  # s3 is no kept neighbour of s0 or s1
    shrunk = ItemKNNRecommender("cosine", neighbours=3, shrinkage=1.0).fit(tiny)
    # common listeners: (s0,s2) 1, (s1,s2) 2, (s1,s3) 1 → damped by 1/2, 2/3, 1/2
    assert u0_scores(shrunk) == pytest.approx([1 / 4 + 2 / sqrt(6) * 2 / 3, 1 / sqrt(3) / 2], rel=1e-6)


def test_item_knn_bm25_and_tfidf_use_implicits_weights(tiny):
    # implicit's idf of a user over the 5 catalog songs: log 5 - log(1 + songs the user heard)
    a, b = np.log(5) - np.log(3), np.log(5) - np.log(4)  # u0 heard 2 songs; u1, u2 heard 3
    # BM25 with b = 0 weighs every play (K1 + 1) / (K1 + 1) · idf: dot products of idf-weighted songs
    bm25 = ItemKNNRecommender("bm25", neighbours=3, bm25_k1=1.2, bm25_b=0.0).fit(tiny)
    assert u0_scores(bm25) == pytest.approx([b * b + 2 * b * b, b * b], rel=1e-5)
    # TF-IDF then cosine: s0 = (a, b, 0), s1 = (a, b, b), s2 = (0, b, b), s3 = (0, 0, b)
    tfidf = ItemKNNRecommender("tfidf", neighbours=3).fit(tiny)
    s0, s1 = np.hypot(a, b), np.sqrt(a * a + 2 * b * b)
    expected = [b / (s0 * sqrt(2)) + 2 * b / (s1 * sqrt(2)), b / s1]
    assert u0_scores(tfidf) == pytest.approx(expected, rel=1e-5)


def test_rp3beta_is_a_three_step_walk_damped_by_popularity(tiny):
    # P(s→u) = 1/listeners(s), P(u→s) = 1/songs(u): W[s0,s2] = ½·⅓, W[s1,s2] = ⅓·⅓ + ⅓·⅓, W[s1,s3] = ⅓·⅓
    walk = RP3betaRecommender(alpha=1.0, beta=0.0, neighbours=3).fit(training_only(tiny))
    assert u0_scores(walk) == pytest.approx([1 / 6 + 2 / 9, 1 / 9], rel=1e-6)
    # beta divides by popularity ** beta (s2 has 2 listeners, s3 one); alpha raises each step's probability
    damped = RP3betaRecommender(alpha=2.0, beta=0.5, neighbours=3).fit(tiny)
    assert u0_scores(damped) == pytest.approx([(1 / 36 + 2 / 81) / sqrt(2), 1 / 81], rel=1e-6)
    assert walk.similarity.diagonal().sum() == 0


def test_rp3beta_normalise_makes_rows_sum_to_one(tiny):
    model = RP3betaRecommender(alpha=1.0, beta=0.3, neighbours=2, normalise=True).fit(tiny)
    sums = np.asarray(model.similarity.sum(axis=1)).ravel()[:4]
    assert sums == pytest.approx(np.ones(4), rel=1e-6)
    assert (np.diff(model.similarity.indptr) <= 2).all()


def test_ease_equals_one_ridge_regression_per_song(tiny):
    # With diag(B) = 0, song j is regressed on the others: b_j = (X₋ⱼᵀX₋ⱼ + λI)⁻¹ X₋ⱼᵀ x_j. By hand, λ = 1:
    # j = 2 (on s0, s1, s3): [[3,2,0],[2,4,1],[0,1,2]] b = [1,2,1] → b = [1/13, 5/13, 4/13]; u0: 1/13 + 5/13
    # j = 3 (on s0, s1, s2): [[3,2,1],[2,4,2],[1,2,3]] b = [0,1,1] → b = [-1/4, 1/4, 1/4];  u0: -1/4 + 1/4
    model = EASERecommender(l2=1.0).fit(training_only(tiny))
    assert u0_scores(model) == pytest.approx([6 / 13, 0.0], abs=1e-6)
    assert model.weights[[0, 1, 2], 3].tolist() == pytest.approx([-1 / 4, 1 / 4, 1 / 4], abs=1e-6)
    assert torch.all(torch.diagonal(model.weights) == 0)
    # Row-major, as `score`'s sparse @ dense reads it: a column-major B would be copied on every call.
    assert model.weights.is_contiguous()


def test_ease_refuses_a_catalog_above_max_songs_with_the_memory_it_would_need(tiny):
    with pytest.raises(MemoryError, match=r"4 songs with >= 1 training listeners exceed max_songs=3.*GiB"):
        EASERecommender(max_songs=3).fit(tiny)


def test_ease_leaves_out_songs_with_too_few_listeners(tiny):
    # s3 has one listener: without it, s2 is regressed on s0, s1 only and s3 cannot be ranked.
    # [[3,2],[2,4]] b = [1,2] → b = [0, 1/2]; u0's score of s2 is 0 + 1/2.
    model = EASERecommender(l2=1.0, min_listeners=2).fit(tiny)
    scores = model.score(np.array([0]))[0]
    assert scores[2].item() == pytest.approx(0.5, abs=1e-6) and torch.isneginf(scores[[3, 4]]).all()
