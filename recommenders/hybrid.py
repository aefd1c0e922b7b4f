"""Fuse the scores of several recommenders (e.g. ALS for warm songs + content for every song).

Two fusions, both per user over the whole catalog:

- "rrf", reciprocal rank fusion (Cormack et al., 2009): sum_c w_c / (k + rank_c(song)), ranks from 1.
- "zscore": sum_c w_c * (score_c - mean_c) / std_c, mean and std over the songs c can rank.

A song a component scores -inf gets nothing from that component; a song no component can rank
stays -inf. Cold-start songs are therefore ranked by the components that can rank them.

RRF sorts every user's full catalog: its temporaries are about five times the score matrix, so
give the evaluator a smaller `chunk_size` on catalogs of a million songs.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping, Sequence
from typing import Literal, Self

import numpy as np
import torch

from recommenders.base import Recommender
from songdata.interactions import InteractionData


class HybridRecommender(Recommender):
    """Weighted fusion of component recommenders' scores.

    Args:
        components: The recommenders to fuse (our configured default: ALS and content).
        fusion: "rrf" (reciprocal rank fusion) or "zscore" (weighted z-scores).
        weights: One weight per component (default: all 1).
        rrf_k: The k of reciprocal rank fusion; larger flattens the rank discount.
        fit_components: Fit every component in `fit`; False keeps components already fitted.
    """

    name = "hybrid"

    def __init__(
        self,
        components: Sequence[Recommender],
        fusion: Literal["rrf", "zscore"] = "rrf",
        weights: Sequence[float] | None = None,
        rrf_k: float = 60.0,
        fit_components: bool = True,
    ) -> None:
        if not components:
            raise ValueError("HybridRecommender: components is empty; give at least one recommender")
        if fusion not in ("rrf", "zscore"):
            raise ValueError(f"HybridRecommender: fusion must be 'rrf' or 'zscore', got {fusion!r}")
        if weights is not None and len(weights) != len(components):
            raise ValueError(f"HybridRecommender: {len(weights)} weights for {len(components)} components")
        self.components = list(components)
        self.fusion = fusion
        self.weights = list(weights) if weights is not None else [1.0] * len(components)
        self.rrf_k = rrf_k
        self.fit_components = fit_components

    @property
    def can_rank_cold(self) -> bool:
        return any(c.can_rank_cold for c in self.components)

    def fit(self, data: InteractionData) -> Self:
        if self.fit_components:
            for component in self.components:
                component.fit(data)
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        fused, rankable = None, None
        for weight, component in zip(self.weights, self.components):
            scores = component.score(user_indices).to(torch.float32)
            finite = torch.isfinite(scores)
            part = _reciprocal_ranks(scores, self.rrf_k) if self.fusion == "rrf" else _z_scores(scores, finite)
            part = weight * part.masked_fill(~finite, 0.0)
            fused = part if fused is None else fused + part
            rankable = finite if rankable is None else rankable | finite
        return fused.masked_fill_(~rankable, -torch.inf)


def settings_key(model: Recommender) -> str:
    """A recommender's class and settings, read from its public attributes (its name aside): two unfitted
    recommenders with the same key fit to the same model, given the same data."""
    settings = sorted((key, value) for key, value in vars(model).items() if not key.startswith("_") and key != "name")
    return f"{type(model).__module__}.{type(model).__qualname__}{settings!r}"


def fit_with_shared_components(
    fusion: HybridRecommender, data: InteractionData, fitted: MutableMapping[str, tuple[Recommender, float]],
) -> float:
    """Fit an unfitted `fusion`, taking each component that `fitted` holds under its `settings_key`
    (e.g. a baseline row of the same leaderboard and split) instead of fitting it again; the components
    it fits are added to `fitted`, for the next fusion.

    Returns the seconds the fusion's fit costs: the fits done now plus those of the components taken,
    so a fusion's fit time does not depend on which rows happen to run beside it.
    """
    if not fusion.fit_components:
        return 0.0
    seconds = 0.0
    for index, component in enumerate(fusion.components):
        key = settings_key(component)
        if key not in fitted:
            clock = time.perf_counter()
            component.fit(data)
            fitted[key] = (component, time.perf_counter() - clock)
        fusion.components[index], fit_s = fitted[key]
        seconds += fit_s
    fusion.fit_components = False
    return seconds


def _reciprocal_ranks(scores: torch.Tensor, k: float) -> torch.Tensor:
    """1 / (k + rank), rank 1 = best; ties broken by the lower song index."""
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, scores.shape[1] + 1).expand_as(order))
    return 1.0 / (k + ranks.to(torch.float32))


def _z_scores(scores: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
    """Standardise each user's finite scores; a constant row becomes zeros."""
    n = finite.sum(1, keepdim=True).clamp(min=1)
    x = scores.masked_fill(~finite, 0.0)
    mean = x.sum(1, keepdim=True) / n
    var = ((x - mean).masked_fill(~finite, 0.0) ** 2).sum(1, keepdim=True) / n
    std = var.sqrt()
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))
