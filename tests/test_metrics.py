"""Ranking metrics and the chunked evaluator, against hand-computed values, torchmetrics and implicit."""

import math

import implicit.cpu.als
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from implicit.evaluation import ranking_metrics_at_k
from threadpoolctl import threadpool_limits
from torchmetrics.functional.retrieval import (
    retrieval_average_precision,
    retrieval_hit_rate,
    retrieval_normalized_dcg,
    retrieval_precision,
    retrieval_recall,
    retrieval_reciprocal_rank,
)

from evaluation import evaluator
from evaluation.evaluator import block_topk, evaluate_scorer
from evaluation.metrics import METRIC_NAMES, bootstrap_ci, metric_keys, ranking_metrics
from recommenders import scoring
from songdata.interactions import InteractionData


def make_data(train, val, test, cold=()) -> InteractionData:
    train, val, test = (sp.csr_matrix(m, dtype=np.float32) for m in (train, val, test))
    n_users, n_songs = train.shape
    catalog = pd.DataFrame({"song_id": [f"s{i}" for i in range(n_songs)]})
    histories = [train[u].indices.astype(np.int64) for u in range(n_users)]
    return InteractionData(
        catalog, [f"u{u}" for u in range(n_users)], train, val, test, histories, np.asarray(cold, dtype=np.int64)
    )


def random_data(n_users=60, n_songs=80, seed=0, cold=()) -> tuple[InteractionData, torch.Tensor]:
    """Disjoint random train / val / test, varied test sizes (some users none), random scores."""
    rng = np.random.default_rng(seed)
    part = rng.choice(4, size=(n_users, n_songs), p=[0.7, 0.12, 0.06, 0.12])
    no_test = rng.random(n_users) < 0.1
    part[no_test] = np.where(part[no_test] == 3, 0, part[no_test])
    part[rng.random((n_users, n_songs)) < 0.8 * (np.arange(n_users) % 3 == 0)[:, None]] = 0  # shorter test lists
    data = make_data(part == 1, part == 2, part == 3, cold)
    return data, torch.from_numpy(rng.normal(size=(n_users, n_songs)).astype(np.float32))


def test_definitions_on_a_hand_computed_ranking():
    # 3 relevant songs; hits at ranks 1 and 3 of 5.
    hits = torch.tensor([[True, False, True, False, False]])
    values = dict(zip(metric_keys([5]), ranking_metrics(hits, torch.tensor([3]), [5])[0].tolist()))
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert values["recall@5"] == pytest.approx(2 / 3)
    assert values["precision@5"] == pytest.approx(2 / 5)
    assert values["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert values["map@5"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert values["hit@5"] == 1.0 and values["mrr@5"] == 1.0
    # With one relevant song first found at rank 2, map and ndcg normalise by min(|R|, K) = 1.
    second = ranking_metrics(torch.tensor([[False, True, False]]), torch.tensor([1]), [1, 3])
    one = dict(zip(metric_keys([1, 3]), second[0].tolist()))
    assert one["hit@1"] == 0.0 and one["mrr@3"] == 0.5 and one["map@3"] == 0.5
    assert one["ndcg@3"] == pytest.approx(1 / math.log2(3))


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_per_user_metrics_match_torchmetrics(k):
    data, scores = random_data()
    result = evaluate_scorer(lambda u, out: scores[u], data, "test", ks=[k], n_bootstrap=10, show_progress=False)
    seen = (data.train + data.val).toarray() > 0
    relevant = data.test.toarray() > 0
    assert result.n_users == int(relevant.any(axis=1).sum()) < data.n_users
    for row, u in enumerate(result.user_indices):
        candidates = ~seen[u]
        # torchmetrics ignores relevant items scored <= 0: shift the scores to be positive.
        preds = scores[u, torch.from_numpy(candidates)] - scores.min() + 1
        target = torch.from_numpy(relevant[u, candidates])
        ours = {name: result.per_user[f"{name}@{k}"][row] for name in METRIC_NAMES}
        assert ours["recall"] == pytest.approx(retrieval_recall(preds, target, top_k=k).item(), abs=1e-6)
        assert ours["precision"] == pytest.approx(retrieval_precision(preds, target, top_k=k).item(), abs=1e-6)
        assert ours["ndcg"] == pytest.approx(retrieval_normalized_dcg(preds, target, top_k=k).item(), abs=1e-6)
        assert ours["hit"] == pytest.approx(retrieval_hit_rate(preds, target, top_k=k).item(), abs=1e-6)
        assert ours["mrr"] == pytest.approx(retrieval_reciprocal_rank(preds, target, top_k=k).item(), abs=1e-6)
        # torchmetrics' AP@K divides by the hits in the top K; RecBole's MAP@K by min(|R|, K).
        n_hits = ours["precision"] * k
        tm_ap = retrieval_average_precision(preds, target, top_k=k).item()
        assert ours["map"] * min(target.sum().item(), k) == pytest.approx(tm_ap * n_hits, abs=1e-6)


def test_metrics_match_implicit_ranking_metrics_on_als_factors():
    rng = np.random.default_rng(1)
    n_users, n_songs = 300, 2000  # wide enough for block_topk's prefilter at K = 10
    user_group, song_group = rng.integers(0, 5, n_users), rng.integers(0, 5, n_songs)
    p = np.where(user_group[:, None] == song_group[None, :], 0.03, 0.005)
    listened = rng.random((n_users, n_songs)) < p
    held_out = listened & (rng.random((n_users, n_songs)) < 0.2)
    data = make_data(listened & ~held_out, held_out, np.zeros_like(held_out))
    with threadpool_limits(1, "blas"):
        model = implicit.cpu.als.AlternatingLeastSquares(factors=8, iterations=5, random_state=0, num_threads=1)
        model.fit(data.train, show_progress=False)
    users, items = torch.from_numpy(model.user_factors), torch.from_numpy(model.item_factors)
    result = evaluate_scorer(lambda u, out: users[u] @ items.T, data, "val", ks=[5, 10], n_bootstrap=10, show_progress=False)
    for k in (5, 10):
        theirs = ranking_metrics_at_k(model, data.train, data.val, K=k, show_progress=False)
        # implicit's precision pools hits over users: sum(hits) / sum(min(K, |R|)).
        pooled = (result.per_user[f"precision@{k}"] * k).sum() / np.minimum(result.n_relevant, k).sum()
        assert pooled == pytest.approx(theirs["precision"], abs=1e-6)
        assert result.metrics[f"map@{k}"] == pytest.approx(theirs["map"], abs=1e-6)
        assert result.metrics[f"ndcg@{k}"] == pytest.approx(theirs["ndcg"], abs=1e-6)


def test_seen_songs_are_masked_by_the_evaluator():
    # User 0 heard songs 0 (train) and 1 (val); test holds song 2. The scorer ranks 0 > 1 > 2 > 3.
    train, val, test = np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4))
    train[0, 0], val[0, 1], test[0, 2], val[1, 3] = 1, 1, 1, 1
    data = make_data(train, val, test)
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2)
    on_test = evaluate_scorer(lambda u, out: scores[u], data, "test", ks=[1], n_bootstrap=10, show_progress=False)
    assert on_test.n_users == 1 and on_test.metrics["hit@1"] == 1.0  # train and val songs masked
    on_val = evaluate_scorer(lambda u, out: scores[u], data, "val", ks=[1, 4], n_bootstrap=10, show_progress=False)
    assert on_val.per_user["hit@1"].tolist() == [1.0, 0.0]  # user 0: only train masked, val song 1 first
    assert on_val.per_user["mrr@4"].tolist() == [1.0, 0.25]  # user 1 has seen nothing: song 3 is 4th
    assert torch.equal(scores, torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2))  # the scorer's tensor is untouched


def test_cold_slice_ranks_only_cold_songs_and_warm_slice_only_warm_songs():
    # Songs 3 and 4 are cold. User 0's test: warm song 2 and cold song 4; user 1's test: warm only.
    train, val, test = np.zeros((2, 5)), np.zeros((2, 5)), np.zeros((2, 5))
    train[:, 0], test[0, 2], test[0, 4], test[1, 1] = 1, 1, 1, 1
    data = make_data(train, val, test, cold=[3, 4])
    # Cold songs scored above everything: they must neither push warm hits out nor count as misses.
    scores = torch.tensor([[0.0, 1.0, 2.0, 9.0, 8.0]] * 2)
    warm = evaluate_scorer(lambda u, out: scores[u], data, "test", "warm", ks=[1], n_bootstrap=10, show_progress=False)
    assert warm.n_users == 2 and warm.n_candidates == 3
    assert warm.per_user["hit@1"].tolist() == [1.0, 0.0] and warm.per_user["recall@1"].tolist() == [1.0, 0.0]
    cold = evaluate_scorer(lambda u, out: scores[u], data, "test", "cold", ks=[1, 2], n_bootstrap=10, show_progress=False)
    assert cold.n_users == 1 and cold.n_candidates == 2  # user 1 has no cold test song
    assert cold.metrics["hit@1"] == 0.0 and cold.metrics["mrr@2"] == 0.5  # song 3 outranks 4 among cold songs
    assert cold.metrics["coverage@1"] == 0.5 and cold.metrics["coverage@2"] == 1.0
    # K beyond the candidates: the extra slots are empty, precision still divides by K.
    assert cold.metrics["precision@2"] == 0.5


def test_unrankable_slots_are_never_hits_nor_coverage():
    data, scores = random_data()
    blind = torch.full_like(scores, -torch.inf)
    result = evaluate_scorer(lambda u, out: blind[u], data, "test", ks=[5], n_bootstrap=10, show_progress=False)
    assert all(value == 0.0 for value in result.metrics.values())


def test_results_do_not_depend_on_the_chunk_size():
    data, scores = random_data(cold=[0, 1, 2, 3, 4, 5])
    results = [
        evaluate_scorer(lambda u, out: scores[u], data, "test", slice, chunk_size=size, show_progress=False)
        for slice in ("warm", "cold")
        for size in (1, 7, None)
    ]
    for reference, other in [(0, 1), (0, 2), (3, 4), (3, 5)]:
        assert results[reference].metrics == results[other].metrics
        assert results[reference].ci95 == results[other].ci95


def test_users_are_split_into_chunks_of_equal_size():
    """No chunk is left with a few users, whose scores a BLAS may round differently than many users'."""
    data, scores = random_data()
    asked = []

    def scorer(users: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        asked.append(len(users))
        return scores[users]

    result = evaluate_scorer(scorer, data, "test", chunk_size=16, n_bootstrap=0, show_progress=False)
    assert sum(asked) == result.n_users and max(asked) <= 16
    assert len(asked) == -(-result.n_users // 16) and max(asked) - min(asked) <= 1


def test_scorers_writing_into_the_evaluators_buffer_rank_as_those_returning_their_own():
    data, scores = random_data()
    buffers = set()

    def into_buffer(users: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        buffers.add(out.untyped_storage().data_ptr())
        return out.copy_(scores[users])

    options = dict(ks=[1, 5], chunk_size=16, n_bootstrap=0, show_progress=False)
    written = evaluate_scorer(into_buffer, data, "test", **options)
    returned = evaluate_scorer(lambda u, out: scores[u], data, "test", **options)
    assert len(buffers) == 1 and written.n_users > 16  # one buffer, reused by every chunk
    assert all(np.array_equal(written.per_user[key], returned.per_user[key]) for key in written.per_user)


@pytest.mark.parametrize(("blas", "cpu", "onednn_built", "huge_pages", "mib"), [
    ("BLAS_INFO=mkl", "vendor_id : GenuineIntel", True, True, 16),
    ("BLAS_INFO=mkl", "vendor_id : AuthenticAMD", True, True, 128),  # scores from oneDNN, fresh on huge pages
    ("BLAS_INFO=mkl", "vendor_id : AuthenticAMD", True, False, 32),  # in 4 KiB pages: narrower
    ("BLAS_INFO=mkl", "vendor_id : AuthenticAMD", False, True, 512),  # MKL's generic kernels: wide chunks
    ("BLAS_INFO=open", "vendor_id : AuthenticAMD", True, True, 16),
])
def test_score_budget_is_wide_only_where_mkl_runs_on_another_vendors_cpu(
    monkeypatch, blas, cpu, onednn_built, huge_pages, mib
):
    if onednn_built and not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    monkeypatch.setattr(torch.__config__, "show", lambda: f"  - {blas}, BUILD_TYPE=Release")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: onednn_built)
    monkeypatch.setattr(scoring, "_cpu_description", lambda: cpu)
    monkeypatch.setattr(scoring, "fresh_tensors_on_huge_pages", lambda: huge_pages)
    for cached in (evaluator.score_budget_bytes, scoring.prefer_onednn):
        cached.cache_clear()
    try:
        assert evaluator.score_budget_bytes() == mib << 20
    finally:
        for cached in (evaluator.score_budget_bytes, scoring.prefer_onednn):
            cached.cache_clear()


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).random((500, 3))
    values[:, 2] = 0.25
    bounds = bootstrap_ci(values, n_resamples=1000, seed=3)
    assert np.array_equal(bounds, bootstrap_ci(values, n_resamples=1000, seed=3))
    # Same draws whatever the block size (up to the rounding of the block matmul).
    assert np.allclose(bounds, bootstrap_ci(values, n_resamples=1000, seed=3, max_block_elements=7 * 500))
    means = values.mean(axis=0)
    assert np.all(bounds[:, 0] <= means) and np.all(means <= bounds[:, 1])
    assert bounds[2].tolist() == pytest.approx([0.25, 0.25])
    # A uniform(0, 1) mean over 500 users has standard error 0.0129: the 95% interval is about ±1.96 of it.
    assert bounds[0, 1] - bounds[0, 0] == pytest.approx(2 * 1.96 * math.sqrt(1 / 12 / 500), rel=0.15)
    assert np.isnan(bootstrap_ci(np.empty((0, 2)))).all()


def test_bad_scores_raise_clear_errors():
    data, scores = random_data()
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scorer(lambda u, out: scores[u] * torch.nan, data, "test", show_progress=False)
    with pytest.raises(ValueError, match="expected a float tensor of shape"):
        evaluate_scorer(lambda u, out: scores[u, :10], data, "test", show_progress=False)


def layout_scores(layout: str, n_songs: int, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """30 rows of scores laid out as recommenders give them."""
    if layout == "continuous":  # as ALS or a content model
        return torch.randn(n_songs, 30, generator=generator, dtype=dtype).T  # not contiguous
    if layout == "seven values":  # ties everywhere
        return torch.randint(7, (30, n_songs), generator=generator).to(dtype)
    if layout == "mostly zero":  # item-KNN for a user with a short history: a few neighbours, zero elsewhere
        scores = torch.randn(30, n_songs, generator=generator, dtype=dtype)
        return scores * (torch.rand(30, n_songs, generator=generator) < 0.003)
    # rising along the row (a catalog in popularity order): the top k crowd into a few blocks
    return torch.randn(30, n_songs, generator=generator, dtype=dtype).sort(dim=1).values


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("n_songs", [7001, 900])  # 218 blocks of 32 and 25 columns more; too narrow to prefilter
@pytest.mark.parametrize("layout", ["continuous", "seven values", "mostly zero", "rising"])
def test_block_topk_is_a_stable_descending_sort_cut_at_k(k, dtype, n_songs, layout):
    scores = layout_scores(layout, n_songs, dtype, torch.Generator().manual_seed(k))
    scores[:5, 100:] = -torch.inf  # rows with fewer finite scores than some K
    scores[5:10, ::2] = -torch.inf
    scores[10, :] = -0.0  # equal to 0.0, though its bits differ
    ours = block_topk(scores, k)
    reference = torch.sort(scores, dim=1, descending=True, stable=True)  # equal scores: lower column first
    assert torch.equal(ours.values, reference.values[:, :k])
    finite = torch.isfinite(ours.values)  # empty slots (-inf) are never read
    assert torch.equal(ours.indices[finite], reference.indices[:, :k][finite])
    scores[3, n_songs - 2] = torch.nan
    assert torch.isnan(block_topk(scores, k).values[3, 0])


@pytest.mark.parametrize("layout", ["continuous", "seven values", "mostly zero", "rising"])
def test_block_topk_searches_the_best_blocks_only_where_the_top_k_crowd(layout, monkeypatch):
    routes = []
    for route in ("_threshold_topk", "_best_blocks_topk"):
        original = getattr(evaluator, route)
        monkeypatch.setattr(evaluator, route, lambda *a, _f=original, _r=route: routes.append(_r) or _f(*a))
    scores = layout_scores(layout, 7001, torch.float32, torch.Generator().manual_seed(0))
    top = block_topk(scores, 10)
    assert torch.equal(top.indices, torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :10])
    assert routes == ["_threshold_topk"] + (["_best_blocks_topk"] if layout == "rising" else [])


def test_scorer_tensors_are_left_as_they_were():
    # The warm slice masks the scorer's own tensor in place and must restore it.
    data, scores = random_data(n_users=20, n_songs=3000, cold=np.arange(0, 3000, 7))
    every_user = sp.csr_matrix((np.ones(20, np.float32), (np.arange(20), np.ones(20, int))), shape=data.test.shape)
    data.test = sp.csr_matrix(data.test + every_user)  # every user has a test song: one chunk holds all users
    original = scores.clone()
    options = dict(ks=[10], n_bootstrap=10, show_progress=False)
    shared = evaluate_scorer(lambda u, out: scores, data, "test", "warm", **options)
    assert torch.equal(scores, original)
    copied = evaluate_scorer(lambda u, out: scores[u].clone(), data, "test", "warm", **options)
    assert shared.metrics == copied.metrics and shared.n_users == data.n_users
    expanded = evaluate_scorer(lambda u, out: scores[:1].expand(len(u), -1), data, "test", **options)  # not writable
    assert expanded.n_users == data.n_users
