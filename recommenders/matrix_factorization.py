"""Matrix factorisation with `implicit`: ALS (implicit feedback) and BPR (pairwise ranking).

implicit takes the user × song CSR (since 0.5) and learns user and song factors; a score is
user_factors @ song_factors.T. Songs without a training interaction get no meaningful factor
(ALS leaves them at zero, BPR at its random start), so they score -inf and
`can_rank_cold` is False.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal, Self

import implicit.als
import implicit.bpr
import implicit.gpu
import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from recommenders.base import Recommender, trained_songs
from recommenders.scoring import dot_scores
from songdata.interactions import InteractionData

Weighting = Literal["binary", "log", "raw"]


def weighted_interactions(train: sp.csr_matrix, weighting: Weighting) -> sp.csr_matrix:
    """Play counts span orders of magnitude; raw counts let a few heavy plays swamp the fit.

    `binary` treats every interaction as 1 (the RecBole protocol), `log` uses 1 + log(w).
    """
    matrix = train.astype(np.float32).tocsr()
    if weighting == "binary":
        matrix.data[:] = 1.0
    elif weighting == "log":
        matrix.data = 1.0 + np.log(np.maximum(matrix.data, 1.0))
    return matrix


class _ImplicitRecommender(Recommender):
    """Fits an implicit model on `data.train` and scores with its factors in torch."""

    def __init__(self, use_gpu: bool, num_threads: int, seed: int, weighting: Weighting = "log") -> None:
        if use_gpu and not implicit.gpu.HAS_CUDA:
            raise RuntimeError(
                f"{type(self).__name__}(use_gpu=True): this implicit build has no CUDA support "
                "(implicit.gpu.HAS_CUDA is False); set use_gpu=False or install implicit's CUDA build"
            )
        self.use_gpu = use_gpu
        self.num_threads = num_threads
        self.seed = seed
        self.weighting = weighting
        self._user_factors: torch.Tensor | None = None
        self._item_factors: torch.Tensor | None = None
        self._unrankable: torch.Tensor | None = None

    @abstractmethod
    def _model(self):
        """A fresh implicit model built from the constructor arguments."""

    def fit(self, data: InteractionData) -> Self:
        # implicit parallelises itself; a multithreaded BLAS underneath only slows it down.
        with threadpool_limits(1, "blas"):
            model = self._model()
            model.fit(weighted_interactions(data.train, self.weighting), show_progress=False)
        if self.use_gpu:
            model = model.to_cpu()
        self._user_factors = torch.from_numpy(np.ascontiguousarray(model.user_factors, dtype=np.float32))
        self._item_factors = torch.from_numpy(np.ascontiguousarray(model.item_factors, dtype=np.float32))
        self._unrankable = torch.from_numpy(~trained_songs(data.train))
        return self

    def score(self, user_indices: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        self._require_fitted("_user_factors")
        users = torch.as_tensor(np.asarray(user_indices, dtype=np.int64))
        scores = dot_scores(self._user_factors[users], self._item_factors, out)
        return scores.masked_fill_(self._unrankable, -torch.inf)


class ALSRecommender(_ImplicitRecommender):
    """Alternating least squares for implicit feedback (Hu, Koren & Volinsky, 2008).

    Args:
        factors: Latent dimensions.
        regularization: L2 weight on the factors.
        alpha: Confidence scaling: an interaction of weight w gets confidence alpha * w
            (implicit's convention, where the paper has 1 + alpha * w).
        iterations: ALS sweeps.
        weighting: How play counts become confidences: `binary`, `log` (1 + log w) or `raw`.
        use_gpu: Fit with implicit's CUDA build (fails clearly when it has none).
        num_threads: Fitting threads; 0 uses every core. Results do not depend on it.
        seed: Seed of the initial factors.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        weighting: Weighting = "log",
        use_gpu: bool = False,
        num_threads: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(use_gpu, num_threads, seed, weighting)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations

    def _model(self):
        return implicit.als.AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            use_gpu=self.use_gpu,
            num_threads=self.num_threads,
            random_state=self.seed,
        )


class BPRRecommender(_ImplicitRecommender):
    """Bayesian personalised ranking (Rendle et al., 2009) with SGD over (user, liked, sampled) triples.

    implicit draws each negative as the song of a random training interaction, i.e. in proportion
    to its listeners, and reads the matrix as binary (weights do not reach it). On HetRec that
    keeps it near Recall@10 0.11; `recommenders.TorchBPRRecommender` samples negatives uniformly,
    as RecBole does, and reaches RecBole's figure (README, HetRec).

    Args:
        factors: Latent dimensions (implicit adds one for the song bias).
        learning_rate: SGD step size.
        regularization: L2 weight on the factors.
        iterations: Epochs over the training interactions.
        verify_negative_samples: Resample negatives the user has actually heard.
        use_gpu: Fit with implicit's CUDA build (fails clearly when it has none).
        num_threads: Fitting threads; 0 uses every core. Only 1 thread is reproducible
            (the threads update shared factors without locks).
        seed: Seed of the initial factors and the sampling.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        verify_negative_samples: bool = True,
        use_gpu: bool = False,
        num_threads: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(use_gpu, num_threads, seed)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.verify_negative_samples = verify_negative_samples

    def _model(self):
        return implicit.bpr.BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            verify_negative_samples=self.verify_negative_samples,
            use_gpu=self.use_gpu,
            num_threads=self.num_threads,
            random_state=self.seed,
        )
