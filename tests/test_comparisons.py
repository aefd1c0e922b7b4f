"""Paired comparisons: differences on shared users, CIs that widen with seed noise, p-values that can go either way."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from evaluation.comparisons import (
    Pair,
    UserScores,
    compare,
    compare_pairs,
    comparisons_markdown,
    forest_plot,
    paired_differences,
)


def scores(users, values) -> UserScores:
    return UserScores(np.asarray(users), np.asarray(values, dtype=float))


def test_differences_pair_users_by_index_and_seeds_by_position() -> None:
    a = [scores([3, 1, 2], [0.3, 0.1, 0.2]), scores([1, 2, 3], [0.5, 0.5, 0.5])]
    b = [scores([2, 3, 4], [0.0, 0.1, 0.9])]  # one evaluation: a deterministic baseline
    diffs, users = paired_differences(a, b)
    assert users.tolist() == [2, 3]
    assert diffs == pytest.approx(np.array([[0.2, 0.2], [0.5, 0.4]]))
    with pytest.raises(ValueError, match="2 seeds of A against 3 of B"):
        paired_differences(a, [b[0]] * 3)


def test_a_clear_gain_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    users = np.arange(200)
    base = rng.random(200)
    better = [scores(users, base + 0.05 + rng.normal(0, 0.02, 200)) for _ in range(3)]
    same = [scores(users, base + rng.normal(0, 0.05, 200)) for _ in range(3)]
    reference = [scores(users, base)]
    gain = compare(better, reference, n_resamples=500, n_permutations=2000)
    assert gain["diff"] == pytest.approx(0.05, abs=0.01)
    assert gain["ci95"][0] > 0 and gain["p_value"] < 0.01 and gain["n_seeds"] == 3
    null = compare(same, reference, n_resamples=500, n_permutations=2000)
    assert null["ci95"][0] < 0 < null["ci95"][1] and null["p_value"] > 0.05


def test_seed_variance_widens_the_interval() -> None:
    """Same per-seed user noise; in the second case the seeds also disagree with each other."""
    rng = np.random.default_rng(1)
    users = np.arange(300)
    noise = [rng.normal(0, 0.05, 300) for _ in range(3)]
    steady = [scores(users, 0.1 + n) for n in noise]
    shifting = [scores(users, 0.1 + shift + n) for shift, n in zip([-0.1, 0.0, 0.1], noise)]
    zero = [scores(users, np.zeros(300))]
    narrow = compare(steady, zero, n_resamples=1000, n_permutations=100)["ci95"]
    wide = compare(shifting, zero, n_resamples=1000, n_permutations=100)["ci95"]
    assert wide[1] - wide[0] > 3 * (narrow[1] - narrow[0])


def test_named_pairs_become_rows_a_table_and_a_plot(tmp_path) -> None:
    def result(model, values):
        return SimpleNamespace(model=model, slice="warm", user_indices=np.arange(4),
                               per_user={"ndcg@10": np.asarray(values), "recall@10": np.asarray(values)})

    evaluations = {
        ("wns", "warm"): [result("wns", [0.5, 0.6, 0.7, 0.8]), result("wns", [0.4, 0.6, 0.7, 0.9])],
        ("ns", "warm"): [result("ns", [0.1, 0.2, 0.3, 0.4]), result("ns", [0.2, 0.2, 0.3, 0.3])],
    }
    rows = compare_pairs(evaluations, [Pair("wns", "ns")], n_resamples=200, n_permutations=200)
    assert [(r["a"], r["b"], r["metric"]) for r in rows] == [("wns", "ns", "ndcg@10"), ("wns", "ns", "recall@10")]
    assert rows[0]["diff"] == pytest.approx(0.4)
    # 4 users: 16 sign patterns, of which 2 are as extreme as the observed one.
    assert rows[0]["p_value"] == pytest.approx(2 / 16, abs=0.06)
    assert "| wns | ns | warm | ndcg@10 | +0.4000 |" in comparisons_markdown(rows)
    assert forest_plot(rows, tmp_path / "forest.png").stat().st_size > 0
    # Every user gains the same: the CI has zero width and rounding may put a bound past the mean.
    constant = [dict(rows[0], diff=0.05, ci95=(0.05 + 2e-17, 0.05 - 2e-17))]
    assert forest_plot(constant, tmp_path / "constant.png").stat().st_size > 0
    with pytest.raises(KeyError, match="no evaluation of 'als' on the warm slice"):
        compare_pairs(evaluations, [Pair("wns", "als")])
