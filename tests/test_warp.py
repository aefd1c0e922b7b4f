"""The WARP model: its rank weights, violations and loss worked out by hand, and what fitting learns."""

import numpy as np
import pytest
import torch

from recommenders import WARPRecommender, training_only
from recommenders.warp import first_violations, warp_rank_weights
from tests.test_bpr_torch import blocks


def test_rank_weights_are_harmonic_numbers():
    # Five trained songs: a liked song can be outranked by at most 4, so L(1..4) = 1, 3/2, 11/6, 25/12.
    torch.testing.assert_close(warp_rank_weights(5), torch.tensor([1.0, 1.5, 11 / 6, 25 / 12]))
    assert warp_rank_weights(1).tolist() == [1.0]


def test_first_violation_skips_heard_songs_and_songs_inside_the_margin():
    positive = torch.tensor([2.0, 0.0, 1.0])
    negatives = torch.tensor([[0.5, 1.5, 3.0], [-2.0, -1.5, -1.0], [0.5, -1.0, 2.0]])
    heard = torch.tensor([[False, True, False], [False, False, False], [False, False, True]])
    # Pair 0: 0.5 keeps the margin, 1.5 breaks it but was heard, 3.0 breaks it: draw 2.
    # Pair 1: -1.0 is not above 0 - 1: none. Pair 2: 0.5 > 1 - 1 at once: draw 0.
    assert first_violations(positive, negatives, heard).tolist() == [2, -1, 0]


def test_loss_is_the_rank_weighted_hinge_plus_l2():
    model = WARPRecommender(factors=2, regularization=0.1)
    model.user_factors = torch.tensor([[1.0, 0.0]])
    model.song_factors = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    model.song_bias = torch.tensor([0.0, 0.5, 0.0])
    u, i, j = torch.tensor([0, 0]), torch.tensor([0, 2]), torch.tensor([1, 1])
    # Triple 0: x_ui = 2, x_uj = 1.5, hinge 1 - 2 + 1.5 = 0.5, norms 1 + 4 + 2. Triple 1: 1 - 0 + 1.5, norms 1 + 0 + 2.
    by_hand = 1.5 * 0.5 + 0.1 * 7 + 2.0 * 2.5 + 0.1 * 3
    assert model._loss(u, i, j, torch.tensor([1.5, 2.0])).item() == pytest.approx(by_hand)


def test_fitted_warp_ranks_the_users_own_taste_first_and_repeats_with_its_seed():
    data = blocks()
    settings = dict(factors=2, learning_rate=0.05, regularization=0.01, epochs=100, batch_size=8, max_draws=10, seed=0)
    scores = WARPRecommender(**settings).fit(training_only(data)).score(np.arange(data.n_users))
    assert scores.shape == (12, 11) and torch.isneginf(scores[:, 10]).all()  # s10: no listener
    unseen = torch.from_numpy(data.train.toarray() == 0)
    best = torch.where(unseen[:, :10], scores[:, :10], -torch.inf).argmax(dim=1)
    assert torch.equal(best, torch.from_numpy((data.val + data.test).toarray().argmax(axis=1)))
    assert torch.equal(WARPRecommender(**settings).fit(data).score(np.arange(data.n_users)), scores)


def test_max_draws_must_allow_a_draw():
    with pytest.raises(ValueError, match="max_draws"):
        WARPRecommender(max_draws=0)
