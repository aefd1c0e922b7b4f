"""InfoNCE / Soft-InfoNCE against values computed independently with explicit loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.losses import info_nce, negative_weights, negatives_mask, soft_info_nce, weight_summary


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)


def _loop_soft_info_nce(q, k, sim, tau, alpha, wt, min_w, offset=0) -> float:
    """The documented formula, one row and one negative at a time, in plain Python floats."""
    q, k, sim = q.tolist(), k.tolist(), sim.tolist()
    total = 0.0
    for i, qi in enumerate(q):
        pos = offset + i
        s = [sum(a * b for a, b in zip(qi, kj)) / tau for kj in k]
        negatives = [j for j in range(len(k)) if j != pos]
        mean_u = sum(math.exp(-sim[i][j] / wt) for j in negatives) / len(negatives)
        denominator = math.exp(s[pos])
        for j in negatives:
            w = max((1 - alpha) + alpha * math.exp(-sim[i][j] / wt) / mean_u, min_w)
            denominator += w * math.exp(s[j])
        total += -math.log(math.exp(s[pos]) / denominator)
    return total / len(q)


def test_info_nce_matches_hand_computed_value() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    tau = 0.5
    # Row 0: logits (2, 1.2); row 1: logits (0, 1.6).
    row0 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(1.2)))
    row1 = -math.log(math.exp(1.6) / (math.exp(0.0) + math.exp(1.6)))
    assert info_nce(q, k, tau).item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_soft_info_nce_matches_loop_formula() -> None:
    q, k = _unit(5, 4, seed=0), _unit(5, 4, seed=1)
    sim = torch.rand(5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    args = dict(temperature=0.1, alpha=0.8, weight_temperature=0.5, min_weight=0.1)
    got = soft_info_nce(q, k, sim, **args).item()
    expected = _loop_soft_info_nce(q, k, sim, 0.1, 0.8, 0.5, 0.1)
    assert got == pytest.approx(expected, rel=1e-10)


def test_min_weight_floor_is_applied() -> None:
    # A very similar negative's weight falls below the floor before clipping.
    q, k = _unit(4, 3, seed=3), _unit(4, 3, seed=4)
    sim = torch.eye(4, dtype=torch.float64) + torch.tensor([[0, 5.0, 0, 0]] * 4).double()
    args = dict(temperature=0.2, alpha=1.0, weight_temperature=0.1, min_weight=0.3)
    weights = negative_weights(sim, 1.0, 0.1, 0.3)
    assert weights[0, 1] == 0.3 and weights[0, 0] == 1.0
    got = soft_info_nce(q, k, sim, **args).item()
    assert got == pytest.approx(_loop_soft_info_nce(q, k, sim, 0.2, 1.0, 0.1, 0.3), rel=1e-10)


def test_alpha_zero_equals_info_nce_exactly() -> None:
    q, k = _unit(6, 8, seed=5).float(), _unit(6, 8, seed=6).float()
    sim = torch.randn(6, 6, generator=torch.Generator().manual_seed(7))
    assert torch.equal(soft_info_nce(q, k, sim, 0.07, alpha=0.0), info_nce(q, k, 0.07))


def test_similar_negative_gets_lower_weight_and_lower_loss() -> None:
    q, k = _unit(4, 3, seed=8), _unit(4, 3, seed=9)
    hardest = int((q[0] @ k.T)[1:].argmax()) + 1  # the negative closest to row 0
    base = torch.zeros(1, 4, dtype=torch.float64)
    similar = base.clone()
    similar[0, hardest] = 3.0  # that song resembles song 0: a likely false negative
    args = dict(temperature=0.1, alpha=0.5)
    # Weights are renormalised over the negatives, so the loss drops when the down-weighted
    # negative is the one that dominated the denominator.
    assert soft_info_nce(q[:1], k, similar, **args) < soft_info_nce(q[:1], k, base, **args)
    # Its own contribution (the gradient pushing it away) shrinks whatever its rank.
    for j in (1, 2, 3):
        similar = base.clone()
        similar[0, j] = 3.0
        k_base, k_similar = k.clone().requires_grad_(), k.clone().requires_grad_()
        soft_info_nce(q[:1], k_base, base, **args).backward()
        soft_info_nce(q[:1], k_similar, similar, **args).backward()
        assert k_similar.grad[j].norm() < k_base.grad[j].norm()


def test_no_gradient_flows_into_similarity() -> None:
    q = _unit(4, 3, seed=10).requires_grad_()
    sim = torch.rand(4, 4, dtype=torch.float64, requires_grad=True)
    soft_info_nce(q, _unit(4, 3, seed=11), sim, 0.1, alpha=0.5).backward()
    assert q.grad is not None and sim.grad is None


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_offset_form_equals_full_batch_rowwise(alpha: float) -> None:
    """Two 'ranks' with 3 local rows each reproduce the 6-row loss (what DDP relies on)."""
    q, k = _unit(6, 5, seed=12), _unit(6, 5, seed=13)
    sim = torch.rand(6, 6, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    full_info = info_nce(q, k, 0.1)
    full_soft = soft_info_nce(q, k, sim, 0.1, alpha=alpha)
    local_info, local_soft = [], []
    for rank in range(2):
        rows = slice(3 * rank, 3 * rank + 3)
        local_info.append(info_nce(q[rows], k, 0.1, offset=3 * rank))
        local_soft.append(soft_info_nce(q[rows], k, sim[rows], 0.1, alpha=alpha, offset=3 * rank))
        expected = _loop_soft_info_nce(q[rows], k, sim[rows], 0.1, alpha, 0.2, 0.05, 3 * rank)
        assert local_soft[-1].item() == pytest.approx(expected, rel=1e-10)
    assert torch.stack(local_info).mean().item() == pytest.approx(full_info.item(), rel=1e-12)
    assert torch.stack(local_soft).mean().item() == pytest.approx(full_soft.item(), rel=1e-12)


def test_bad_shapes_and_parameters_raise() -> None:
    q, k = _unit(3, 2, seed=15), _unit(3, 2, seed=16)
    with pytest.raises(ValueError, match="outside"):
        info_nce(q, k, 0.1, offset=1)
    with pytest.raises(ValueError, match="similarity has shape"):
        soft_info_nce(q, k, torch.zeros(3, 2), 0.1, alpha=0.5)
    with pytest.raises(ValueError, match="weight_temperature"):
        soft_info_nce(q, k, torch.zeros(3, 3), 0.1, alpha=0.5, weight_temperature=0.0)


def test_weights_average_one_and_act_at_every_batch_size() -> None:
    """At N = 16,384 negatives (one rank's rows of a large DDP batch) the most similar decile of a
    synthetic similarity is down-weighted as strongly as in a small batch: the strength does not
    fade as 1/N."""
    generator = torch.Generator().manual_seed(17)
    for num_keys in (32, 16_384):
        n = 8
        # Sparse like co-listening: ~80% of pairs unrelated (0), the rest spread over (0, 1].
        sim = torch.rand(n, num_keys, generator=generator)
        sim = torch.where(torch.rand(n, num_keys, generator=generator) < 0.8, 0.0, sim)
        weights = negative_weights(sim, alpha=1.0, weight_temperature=0.1, min_weight=0.05)
        negative = negatives_mask(n, num_keys)
        summary = weight_summary(weights, sim, negative, min_weight=0.05)
        per_row_mean = (weights * negative).sum(1) / negative.sum(1)
        assert per_row_mean.min() >= 1.0 - 1e-5 and summary["mean"] <= 1.05  # 1, plus what the floor adds
        assert summary["top_decile"] <= 0.6
        assert summary["bin/sim<=0"] > 1.0  # unrelated songs carry the weight taken off similar ones


def test_repeated_song_is_never_its_own_negative() -> None:
    """Song 0 drawn twice: its second copy leaves row 0's denominator in both losses."""
    q, k = _unit(4, 3, seed=18), _unit(4, 3, seed=19)
    song = torch.tensor([0, 1, 0, 2])
    same_song = song[:, None] == song[None, :]
    without_copy = [1, 3]
    expected = info_nce(q[:1], k[[0, *without_copy]], 0.1)
    got_rows = F.cross_entropy(
        (q @ k.T / 0.1).masked_fill(same_song & ~torch.eye(4, dtype=torch.bool), float("-inf")),
        torch.arange(4), reduction="none",
    )
    assert got_rows[0].item() == pytest.approx(expected.item(), rel=1e-12)
    assert info_nce(q, k, 0.1, same_song=same_song).item() == pytest.approx(got_rows.mean().item(), rel=1e-12)
    sim = torch.rand(4, 4, generator=torch.Generator().manual_seed(20), dtype=torch.float64)
    weights = negative_weights(sim, 0.7, 0.1, 0.05, same_song=same_song)
    assert weights[0, 2] == 0 and weights[2, 0] == 0 and weights[0, 0] == 1
    assert torch.equal(soft_info_nce(q, k, sim, 0.1, alpha=0.0, same_song=same_song),
                       info_nce(q, k, 0.1, same_song=same_song))
