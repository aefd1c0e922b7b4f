"""Recommenders behind one interface: `fit(data)` on training data, then `score(user_indices)`."""

from recommenders.base import Recommender, training_only
from recommenders.clustering import DBSCANRecommender, KMeansRecommender
from recommenders.embedding import EmbeddingRecommender
from recommenders.hybrid import HybridRecommender
from recommenders.linear import EASERecommender
from recommenders.matrix_factorization import ALSRecommender, BPRRecommender
from recommenders.neighbourhood import ItemKNNRecommender, RP3betaRecommender
from recommenders.popularity import PopularityRecommender, RandomRecommender
from recommenders.word2vec import Word2VecRecommender

__all__ = [
    "ALSRecommender",
    "BPRRecommender",
    "DBSCANRecommender",
    "EASERecommender",
    "EmbeddingRecommender",
    "HybridRecommender",
    "ItemKNNRecommender",
    "KMeansRecommender",
    "PopularityRecommender",
    "RandomRecommender",
    "RP3betaRecommender",
    "Recommender",
    "Word2VecRecommender",
    "training_only",
]
