"""Contrastive losses for SimSong: InfoNCE and Soft-InfoNCE (pure torch, no Lightning).

Both losses are one-directional: the caller symmetrises (a->l and l->a). Both take an
optional ``offset`` so that the same code serves a single process and the open_clip-style
global batch under DDP: each rank passes its ``n`` local queries and the ``N`` keys gathered
from all ranks, and the positive of local row ``i`` is gathered column ``offset + i`` with
``offset = rank * n``. With ``offset=0`` and ``n == N`` this is the ordinary full-batch loss.

Both also take ``same_song``, an ``[n, N]`` mask of the keys that hold the query's own song
(a song drawn twice into one batch): such a key is never a negative, so it leaves the
denominator, as in Chen et al. (2020)'s masking of a sample's own views.
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


def _other_copies(n: int, num_keys: int, offset: int, same_song: Tensor | None, device: torch.device) -> Tensor:
    """``[n, N]`` True where key ``j`` holds query ``i``'s song but is not its positive."""
    if same_song is None:
        return torch.zeros(n, num_keys, dtype=torch.bool, device=device)
    if same_song.shape != (n, num_keys):
        raise ValueError(f"losses: same_song has shape {tuple(same_song.shape)}, expected {(n, num_keys)}")
    rows = torch.arange(n, device=device)
    copies = same_song.to(device=device, dtype=torch.bool).clone()
    copies[rows, rows + offset] = False
    return copies


def negatives_mask(n: int, num_keys: int, offset: int = 0, same_song: Tensor | None = None) -> Tensor:
    """``[n, N]`` True where key ``j`` is a negative of query ``i``: not its positive, not its song."""
    device = same_song.device if same_song is not None else None
    negative = ~_other_copies(n, num_keys, offset, same_song, device)
    rows = torch.arange(n, device=negative.device)
    negative[rows, rows + offset] = False
    return negative


def info_nce(
    query: Tensor, key: Tensor, temperature: float | Tensor, offset: int = 0, same_song: Tensor | None = None
) -> Tensor:
    """InfoNCE: each query must pick its own key out of all keys in the batch.

    Args:
        query: ``[n, D]`` L2-normalised queries.
        key: ``[N, D]`` L2-normalised keys (``N >= n``; all ranks' keys under DDP).
        temperature: softmax temperature (float or 0-dim tensor, e.g. a learnt one).
        offset: the positive of row ``i`` is column ``offset + i``.
        same_song: optional ``[n, N]`` mask of keys holding the query's song; left out.

    Returns:
        Mean over query rows of ``-log softmax(query @ key.T / temperature)[i, offset + i]``.
    """
    labels = _positive_labels(query, key, offset)
    logits = query @ key.T / temperature
    if same_song is not None:
        copies = _other_copies(query.shape[0], key.shape[0], offset, same_song, logits.device)
        logits = logits.masked_fill(copies, float("-inf"))
    return F.cross_entropy(logits, labels)


def negative_weights(
    similarity: Tensor,
    alpha: float,
    weight_temperature: float,
    min_weight: float,
    offset: int = 0,
    same_song: Tensor | None = None,
) -> Tensor:
    """Soft-InfoNCE weights of each key in each query's denominator, ``[n, N]``.

    Over the ``M_i`` negatives of row ``i``::

        w_ij = max((1 - alpha) + alpha * M_i * softmax_{j in negatives(i)}(-similarity_ij / weight_temperature),
                   min_weight)

    The second term is Robinson et al. (ICLR 2021)'s importance weight ``exp(b s) / mean exp(b s)``
    with ``b = -1 / weight_temperature < 0``: it down-weights negatives that resemble the anchor
    instead of up-weighting hard ones. It averages exactly 1 over the negatives, whatever their
    number, so the strength does not fade as the batch grows (as the weight ``beta - alpha * p_ij``
    of Li et al. (2023), with ``p_ij ~ 1/N``, does). ``alpha`` blends it with uniform weights;
    ``alpha = 0`` gives weights of exactly 1 (InfoNCE); the floor keeps every negative in play,
    so the mean lies slightly above 1 where it clips. The positive keeps weight 1 and keys of the
    query's own song get 0 (they leave the denominator).

    Args:
        similarity: ``[n, N]`` external similarity of each query's song to each key's song;
            a constant prior, detached here.
        alpha: blend between uniform weights (0) and the similarity weights (1).
        weight_temperature: scale of similarity over which a weight falls by a factor ``e``.
        min_weight: floor on a negative's weight.
        offset: the positive of row ``i`` is column ``offset + i``.
        same_song: optional ``[n, N]`` mask of keys holding the query's song.
    """
    if alpha < 0 or weight_temperature <= 0 or min_weight < 0:
        raise ValueError(
            f"negative_weights: alpha={alpha}, weight_temperature={weight_temperature}, "
            f"min_weight={min_weight}; expected alpha >= 0, weight_temperature > 0, min_weight >= 0"
        )
    n, num_keys = similarity.shape
    negative = negatives_mask(n, num_keys, offset, same_song)
    scaled = (-similarity.detach().to(torch.promote_types(similarity.dtype, torch.float32))) / weight_temperature
    p = scaled.masked_fill(~negative, float("-inf")).softmax(dim=1).nan_to_num(0.0)  # rows without negatives
    count = negative.sum(dim=1, keepdim=True).to(p.dtype)
    weights = ((1.0 - alpha) + alpha * count * p).clamp(min=min_weight)
    weights = weights.masked_fill(~negative, 0.0)
    rows = torch.arange(n, device=weights.device)
    weights[rows, rows + offset] = 1.0
    return weights


def weighted_info_nce(
    query: Tensor, key: Tensor, weights: Tensor, temperature: float | Tensor, offset: int = 0
) -> Tensor:
    """InfoNCE whose denominator weighs key ``j`` of row ``i`` by ``weights[i, j]`` (0 = left out).

    ``loss_i = -log(exp(s_ii) / sum_j w_ij exp(s_ij))`` with ``w_ii = 1``. Weighting a term of
    the denominator by ``w`` equals adding ``log w`` to its logit, so this is a plain
    cross-entropy on shifted logits.
    """
    if weights.shape != (query.shape[0], key.shape[0]):
        raise ValueError(
            f"weighted_info_nce: weights have shape {tuple(weights.shape)}, "
            f"expected {(query.shape[0], key.shape[0])} (queries x keys)"
        )
    labels = _positive_labels(query, key, offset)
    logits = query @ key.T / temperature
    return F.cross_entropy(logits + weights.detach().log().to(logits.dtype), labels)


def soft_info_nce(
    query: Tensor,
    key: Tensor,
    similarity: Tensor,
    temperature: float | Tensor,
    alpha: float,
    weight_temperature: float = 0.2,
    min_weight: float = 0.05,
    offset: int = 0,
    same_song: Tensor | None = None,
) -> Tensor:
    """Soft-InfoNCE: negatives that resemble the anchor count less (weights: :func:`negative_weights`).

    Songs that are externally similar to the anchor (co-listened, same artist, ...) are often
    not true negatives, so their term in the denominator is down-weighted. ``alpha = 0`` equals
    :func:`info_nce` exactly.

    Args:
        query: ``[n, D]`` L2-normalised queries.
        key: ``[N, D]`` L2-normalised keys.
        similarity: ``[n, N]`` external similarity of each query's song to each key's song.
        temperature: softmax temperature of the logits.
        alpha, weight_temperature, min_weight: see :func:`negative_weights`.
        offset: the positive of row ``i`` is column ``offset + i``.
        same_song: optional ``[n, N]`` mask of keys holding the query's song; left out.
    """
    if similarity.shape != (query.shape[0], key.shape[0]):
        raise ValueError(
            f"soft_info_nce: similarity has shape {tuple(similarity.shape)}, "
            f"expected {(query.shape[0], key.shape[0])} (queries x keys)"
        )
    _positive_labels(query, key, offset)
    weights = negative_weights(similarity, alpha, weight_temperature, min_weight, offset, same_song)
    return weighted_info_nce(query, key, weights, temperature, offset)


# Lower edges of the similarity bins whose mean weight is logged (a bin runs to the next edge;
# the first holds similarity <= 0: unrelated songs under co-listening).
SIMILARITY_BIN_EDGES = (0.0, 0.1, 0.25, 0.5)


def weight_summary(weights: Tensor, similarity: Tensor, negative: Tensor, min_weight: float) -> dict[str, Tensor]:
    """What the weights did in one batch, over its negatives only.

    Returns mean, min, 10th percentile, share at the floor, mean weight of the top decile of
    similarity (ties broken by position) and mean weight per similarity bin (NaN when empty).
    """
    w, s = weights[negative].float(), similarity.detach()[negative].float()
    if w.numel() == 0:
        return {}
    top = torch.topk(s, max(1, w.numel() // 10)).indices
    summary = {
        "mean": w.mean(),
        "min": w.min(),
        "p10": w.kthvalue(max(1, int(0.1 * w.numel()))).values,
        "at_floor": (w <= min_weight * (1 + 1e-6)).float().mean(),
        "top_decile": w[top].mean(),
    }
    edges = (float("-inf"), *SIMILARITY_BIN_EDGES, float("inf"))
    for low, high in zip(edges[:-1], edges[1:]):
        name = "sim<=0" if low == float("-inf") else f"sim{low:g}-{min(high, 1.0):g}"
        members = (s > low) & (s <= high)
        summary[f"bin/{name}"] = w[members].mean() if members.any() else torch.tensor(float("nan"))
    return summary
