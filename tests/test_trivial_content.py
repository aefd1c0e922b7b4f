"""Trivial content baselines: no training, warm and cold songs ranked alike from tags, lyrics or audio."""

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.leaderboard import evaluate_models
from recommenders import AudioRecommender, LyricsRecommender, TagsRecommender, training_only
from songdata import InteractionData, SongDataset


@pytest.fixture
def data(tiny_dataset: Path) -> InteractionData:
    return SongDataset(tiny_dataset).interactions


def cold_indices(data: InteractionData) -> np.ndarray:
    return np.flatnonzero(np.diff(data.train.tocsc().indptr) == 0)


def test_tags_rank_songs_with_the_users_tags_first(data):
    recommender = TagsRecommender().fit(training_only(data))
    scores = recommender.score(np.arange(data.n_users)).numpy()
    rock = data.catalog["tags"].map(lambda tags: "rock" in tags).to_numpy()
    history_rock = np.array([rock[h].mean() for h in data.histories])
    leans_rock = history_rock > 0.5
    # Songs with equal tags get equal scores; a user who mostly heard rock scores rock songs higher.
    assert np.allclose(scores[:, rock].std(axis=1), 0, atol=1e-5) and np.allclose(scores[:, ~rock].std(axis=1), 0, atol=1e-5)
    assert (scores[leans_rock][:, rock].mean(1) > scores[leans_rock][:, ~rock].mean(1)).all()
    assert np.isfinite(scores[:, cold_indices(data)]).all()


def test_audio_embeddings_follow_the_sound(data):
    recommender = AudioRecommender().fit(training_only(data))
    songs = recommender._songs.numpy()
    similarity = songs @ songs.T
    # The tiny set's song i is a tone at 200 + 10 i Hz: songs close in pitch are close in the embedding.
    gap = np.abs(np.arange(len(songs))[:, None] - np.arange(len(songs))[None])
    assert similarity[(gap > 0) & (gap <= 2)].mean() > similarity[gap >= 10].mean() + 0.3
    assert torch.isfinite(recommender.score(np.arange(data.n_users))[:, cold_indices(data)]).all()


def test_lyrics_and_every_trivial_baseline_reach_the_cold_slice(data):
    lyrics = LyricsRecommender().fit(training_only(data))
    assert lyrics._songs.shape == (data.n_songs, 384)
    for recommender in (TagsRecommender(), lyrics, AudioRecommender()):
        recommender = recommender if recommender is lyrics else recommender.fit(training_only(data))
        rows, _ = evaluate_models({recommender.name: recommender}, data, ks=(10,), n_bootstrap=10, seed=0,
                                  show_progress=False)
        cold = [row for row in rows if row["slice"] == "cold"]
        assert len(cold) == 1 and cold[0]["n_users"] > 0 and "note" not in cold[0], recommender.name
