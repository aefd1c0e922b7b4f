"""Recommenders behind one interface: `fit(data)` on training data, then `score(user_indices)`."""

from recommenders.base import Recommender, training_only
from recommenders.bpr import TorchBPRRecommender
from recommenders.clustering import DBSCANRecommender, KMeansRecommender
from recommenders.embedding import EmbeddingRecommender
from recommenders.hybrid import HybridRecommender
from recommenders.linear import EASERecommender
from recommenders.matrix_factorization import ALSRecommender, BPRRecommender
from recommenders.neighbourhood import ItemKNNRecommender, RP3betaRecommender
from recommenders.popularity import PopularityRecommender, RandomRecommender
from recommenders.trivial_content import AudioRecommender, LyricsRecommender, TagsRecommender
from recommenders.warp import WARPRecommender
from recommenders.word2vec import Word2VecRecommender

__all__ = [
    "ALSRecommender",
    "AudioRecommender",
    "BPRRecommender",
    "DBSCANRecommender",
    "EASERecommender",
    "EmbeddingRecommender",
    "HybridRecommender",
    "ItemKNNRecommender",
    "KMeansRecommender",
    "LyricsRecommender",
    "PopularityRecommender",
    "RandomRecommender",
    "RP3betaRecommender",
    "Recommender",
    "TagsRecommender",
    "TorchBPRRecommender",
    "WARPRecommender",
    "Word2VecRecommender",
    "training_only",
]
