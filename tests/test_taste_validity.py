"""Validity AUC of a taste score: exact values on hand-made scores."""

import numpy as np
import pytest

from evaluation.taste_validity import NOT_SHOWN, score_validity, user_auc, validity_note


def test_user_auc_counts_pairs_and_half_ties():
    assert user_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert user_auc([0.1], [0.9]) == 0.0
    assert user_auc([0.5, 0.9], [0.5]) == pytest.approx(0.75)  # one tie (0.5) and one win
    assert user_auc([], [0.3]) is None


def test_a_score_that_separates_heldout_from_random_is_shown_and_noise_is_marked():
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(60)]
    separating = score_validity({u: [0.8, 0.9] for u in users}, {u: [0.1, 0.2] for u in users}, 200, 0)
    assert separating["auc"] == 1.0 and separating["shown"] and separating["n_users"] == 60
    assert validity_note("midi_similarity", separating) == ""
    noise = score_validity({u: rng.random(2).tolist() for u in users}, {u: rng.random(2).tolist() for u in users}, 200, 0)
    lo, hi = noise["ci95"]
    assert lo < 0.5 < hi and not noise["shown"]
    assert NOT_SHOWN in validity_note("lyric_relevance", noise) and f"{noise['auc']:.3f}" in validity_note("x", noise)
