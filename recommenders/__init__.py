"""Recommenders behind one interface: `fit(data)` on training data, then `score(user_indices)`."""

from recommenders.base import Recommender, training_only
from recommenders.clustering import DBSCANRecommender, KMeansRecommender
from recommenders.embedding import EmbeddingRecommender
from recommenders.hybrid import HybridRecommender
from recommenders.matrix_factorization import ALSRecommender, BPRRecommender
from recommenders.popularity import PopularityRecommender, RandomRecommender
from recommenders.word2vec import Word2VecRecommender

__all__ = [
    "ALSRecommender",
    "BPRRecommender",
    "DBSCANRecommender",
    "EmbeddingRecommender",
    "HybridRecommender",
    "KMeansRecommender",
    "PopularityRecommender",
    "RandomRecommender",
    "Recommender",
    "Word2VecRecommender",
    "training_only",
]
