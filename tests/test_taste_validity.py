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


def test_model_rows_that_gain_a_score_not_shown_to_measure_taste_say_so():
    from evaluation.generative_stage import add_taste_metrics
    from evaluation.taste_results import StageResult

    shown = {"auc": 0.9, "ci95": [0.85, 0.95], "shown": True}
    noise = {"auc": 0.52, "ci95": [0.45, 0.6], "shown": False}
    result = StageResult(
        model_metrics={"als": ({"midi_similarity": 0.7, "lyric_relevance": 0.4}, {})},
        rows=[], meta={"validity": {"midi_similarity": shown, "lyric_relevance": noise}}, table=[],
    )
    warm = {"model": "als", "slice": "warm", "n_users": 5, "metrics": {"ndcg@10": 0.1}, "ci95": {}}
    skipped = {"model": "dbscan", "slice": "warm", "n_users": 0, "metrics": {}, "ci95": {}, "note": "skipped"}
    rows = add_taste_metrics([warm, skipped], result)
    assert rows[0]["metrics"]["lyric_relevance"] == 0.4
    assert rows[0]["note"].startswith("lyric_relevance: " + NOT_SHOWN) and "midi_similarity" not in rows[0]["note"]
    assert rows[1]["note"] == "skipped"
