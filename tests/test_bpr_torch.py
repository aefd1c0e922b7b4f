"""The torch BPR (RecBole's recipe): its loss worked out by hand, its negatives, and what fitting learns."""

from math import exp, log
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recommenders import TorchBPRRecommender, training_only
from recommenders.bpr import NegativeSampler, bpr_loss
from songdata.dataset import DatasetTables, normalise_catalog
from songdata.interactions import InteractionData


def test_bpr_loss_is_minus_log_sigmoid_of_the_score_difference_plus_l2():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    liked = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    disliked = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    liked_bias, disliked_bias = torch.tensor([0.0, 0.5]), torch.tensor([0.0, 0.0])
    # Triple 0: x_ui - x_uj = 2, norms 1 + 4 + 0. Triple 1: 0 + 0.5 - 1 = -0.5, norms 1 + 0 + 1.
    by_hand = (log(1 + exp(-2.0)) + log(1 + exp(0.5))) / 2
    assert bpr_loss(users, liked, disliked, liked_bias, disliked_bias, 0.0).item() == pytest.approx(by_hand)
    with_l2 = by_hand + 0.1 * (5 + 2) / 2
    assert bpr_loss(users, liked, disliked, liked_bias, disliked_bias, 0.1).item() == pytest.approx(with_l2)


@pytest.mark.parametrize("negatives", ["uniform", "popularity"])
def test_negatives_are_trained_songs_the_user_has_not_heard(negatives):
    #      s0 s1 s2 s3 s4 (s4: no listener)
    # u0    1  1  .  .  .
    # u1    .  1  1  1  .
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0]], dtype=np.float32))
    sampler = NegativeSampler(train, negatives, np.random.default_rng(0))
    users = np.repeat([0, 1], 3000)
    songs = sampler(users)
    assert set(songs[users == 0]) == {2, 3} and set(songs[users == 1]) == {0}
    # u0 draws s2 and s3 alike under both schemes (each has one listener); seeded draws repeat.
    assert abs(np.mean(songs[users == 0] == 2) - 0.5) < 0.05
    np.testing.assert_array_equal(songs, NegativeSampler(train, negatives, np.random.default_rng(0))(users))


def test_popularity_negatives_follow_the_number_of_listeners():
    # s0 has 3 listeners, s1 has 1; u3 has heard neither, so its negatives come 3:1.
    train = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32))
    songs = NegativeSampler(train, "popularity", np.random.default_rng(0))(np.full(8000, 3))
    assert abs(np.mean(songs == 0) - 0.75) < 0.03


def blocks() -> InteractionData:
    """Two tastes: users u0..u5 listen to songs s0..s4, users u6..u11 to s5..s9; s10 has no listener.

    Each user has heard all but one song of their block (the held-out one).
    """
    train, held_out = [], []
    for user in range(12):
        block = range(0, 5) if user < 6 else range(5, 10)
        missing = block[user % 5]
        train += [(f"u{user:02d}", f"s{s:02d}") for s in block if s != missing]
        held_out.append((f"u{user:02d}", f"s{missing:02d}"))

    def table(pairs):
        return pd.DataFrame({"user_id": [u for u, _ in pairs], "song_id": [s for _, s in pairs], "weight": 1.0})

    catalog = pd.DataFrame({"song_id": [f"s{s:02d}" for s in range(11)], "artist": "a", "title": "t", "lyrics": "",
                            "tags": [[] for _ in range(11)], "duration_s": 180.0})
    splits = {"train": table(train), "val": table(held_out[::2]), "test": table(held_out[1::2])}
    interactions = pd.concat(splits.values(), ignore_index=True).assign(position=-1)
    tables = DatasetTables(Path("blocks"), normalise_catalog(catalog), interactions, None, splits, {})
    return InteractionData.from_tables(tables)


def test_fitted_bpr_ranks_the_users_own_taste_first_and_repeats_with_its_seed():
    data = blocks()
    model = TorchBPRRecommender(factors=4, learning_rate=0.05, epochs=150, batch_size=16, seed=3)
    scores = model.fit(training_only(data)).score(np.arange(data.n_users))
    assert scores.shape == (12, 11) and scores.dtype == torch.float32
    assert torch.isneginf(scores[:, 10]).all()  # no listener: cannot be ranked
    unseen = torch.from_numpy(data.train.toarray() == 0)
    best = torch.where(unseen[:, :10], scores[:, :10], -torch.inf).argmax(dim=1)
    held_out = torch.from_numpy((data.val + data.test).toarray().argmax(axis=1))
    assert torch.equal(best, held_out)
    again = TorchBPRRecommender(factors=4, learning_rate=0.05, epochs=150, batch_size=16, seed=3).fit(data)
    assert torch.equal(again.score(np.arange(data.n_users)), scores)
    assert torch.equal(again.score(np.arange(data.n_users), out=torch.ones(12, 11)), scores)  # into a buffer


def test_score_before_fit_fails_clearly():
    with pytest.raises(RuntimeError, match="call fit"):
        TorchBPRRecommender().score(np.array([0]))
