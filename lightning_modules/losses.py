"""Contrastive losses for SimSong: InfoNCE and Soft-InfoNCE (pure torch, no Lightning).

Both losses are one-directional: the caller symmetrises (a->l and l->a). Both take an
optional ``offset`` so that the same code serves a single process and the open_clip-style
global batch under DDP: each rank passes its ``n`` local queries and the ``N`` keys gathered
from all ranks, and the positive of local row ``i`` is gathered column ``offset + i`` with
``offset = rank * n``. With ``offset=0`` and ``n == N`` this is the ordinary full-batch loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _positive_labels(query: Tensor, key: Tensor, offset: int) -> Tensor:
    """Column of each query's positive; checks that the local block fits in the keys."""
    n, num_keys = query.shape[0], key.shape[0]
    if offset < 0 or offset + n > num_keys:
        raise ValueError(
            f"losses: positives for {n} queries at offset {offset} fall outside {num_keys} keys"
        )
    return torch.arange(n, device=query.device) + offset


def info_nce(query: Tensor, key: Tensor, temperature: float | Tensor, offset: int = 0) -> Tensor:
    """InfoNCE: each query must pick its own key out of all keys in the batch.

    Args:
        query: ``[n, D]`` L2-normalised queries.
        key: ``[N, D]`` L2-normalised keys (``N >= n``; all ranks' keys under DDP).
        temperature: softmax temperature (float or 0-dim tensor, e.g. a learnt one).
        offset: the positive of row ``i`` is column ``offset + i``.

    Returns:
        Mean over query rows of ``-log softmax(query @ key.T / temperature)[i, offset + i]``.
    """
    logits = query @ key.T / temperature
    return F.cross_entropy(logits, _positive_labels(query, key, offset))


def soft_info_nce(
    query: Tensor,
    key: Tensor,
    similarity: Tensor,
    temperature: float | Tensor,
    alpha: float,
    beta: float = 1.0,
    weight_temperature: float = 1.0,
    min_weight: float = 0.1,
    offset: int = 0,
) -> Tensor:
    """Soft-InfoNCE (Li et al., EMNLP 2023): negatives that resemble the anchor count less.

    Songs that are externally similar to the anchor (co-listened, same artist, ...) are
    often not true negatives, so their term in the denominator is down-weighted:
    ``p_ij = softmax_{j != i}(similarity_ij / weight_temperature)``,
    ``w_ij = max((beta - alpha * p_ij) / (beta - alpha / (N - 1)), min_weight)``,
    ``loss_i = -log(exp(s_ii) / (exp(s_ii) + sum_{j != i} w_ij exp(s_ij)))``.
    The weights average to 1 over the negatives before clipping, and ``alpha=0`` gives
    exactly :func:`info_nce`.

    Args:
        query: ``[n, D]`` L2-normalised queries.
        key: ``[N, D]`` L2-normalised keys.
        similarity: ``[n, N]`` external similarity of each query's song to each key's song;
            a constant prior, so it is detached (no gradient flows into it).
        temperature: softmax temperature of the logits ``s``.
        alpha: strength of the down-weighting (0 = plain InfoNCE).
        beta: base weight; must exceed ``alpha / (N - 1)`` so weights stay positive on average.
        weight_temperature: temperature of the softmax that turns similarity into ``p_ij``.
        min_weight: floor on every negative's weight, so no negative is ignored entirely.
        offset: the positive of row ``i`` is column ``offset + i``.

    Returns:
        Mean over query rows of ``loss_i``.
    """
    num_keys = key.shape[0]
    if similarity.shape != (query.shape[0], num_keys):
        raise ValueError(
            f"soft_info_nce: similarity has shape {tuple(similarity.shape)}, "
            f"expected {(query.shape[0], num_keys)} (queries x keys)"
        )
    if num_keys < 2:  # no negatives: nothing to weight
        return info_nce(query, key, temperature, offset)
    normaliser = beta - alpha / (num_keys - 1)
    if normaliser <= 0:
        raise ValueError(
            f"soft_info_nce: beta={beta} must exceed alpha/(N-1)={alpha / (num_keys - 1)}"
        )
    labels = _positive_labels(query, key, offset)
    is_positive = F.one_hot(labels, num_keys).bool()
    # Weights in at least float32, also when the logits are half precision under autocast.
    weight_dtype = torch.promote_types(query.dtype, torch.float32)
    scaled = similarity.detach().to(weight_dtype) / weight_temperature
    p = scaled.masked_fill(is_positive, float("-inf")).softmax(dim=1)
    weights = ((beta - alpha * p) / normaliser).clamp(min=min_weight)
    # Weighting a term of the denominator by w equals adding log(w) to its logit, so the
    # weighted loss is a plain cross-entropy on shifted logits; the positive keeps log 1 = 0.
    log_weights = weights.log().masked_fill(is_positive, 0.0)
    logits = query @ key.T / temperature
    return F.cross_entropy(logits + log_weights, labels)
