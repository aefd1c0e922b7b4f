"""Prompts from histories: the user's tags, metadata tempo/key, songs and lyric words; templates; model limits."""

import json
import logging
from collections import Counter
from dataclasses import replace

import pandas as pd
import pytest

from generative import load_config
from generative.prompts import (
    SUNO_V4_LIMITS,
    SUNO_V45_LIMITS,
    FieldLimits,
    PromptConfig,
    build_prompt,
    cut_at_word,
    model_limits,
    render_template,
    taste_profile,
)
from prepare.demo import build_demo_world, get_style
from songdata import InteractionData, SongDataset
from taste.novelty import words

PROMPTS = load_config().prompts  # the templates of configs/generate.yaml


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[InteractionData, pd.DataFrame]:
    root = tmp_path_factory.mktemp("prompts") / "world"
    build_demo_world(root, difficulty="easy", scale=0.1, song_seconds=1.0, workers=1)  # tags = the style
    return SongDataset(root).interactions, pd.read_parquet(root / "song_features.parquet").set_index("song_id")


def plays(data: InteractionData, user: int) -> dict[int, float]:
    row = data.train[user]
    return dict(zip(row.indices.tolist(), row.data.tolist()))


def dominant_style(data: InteractionData, features: pd.DataFrame, user: int) -> str:
    styles: Counter = Counter()
    for song, weight in plays(data, user).items():
        styles[features.loc[data.catalog["song_id"].iat[song], "style"]] += weight
    return styles.most_common(1)[0][0]


def test_profile_follows_the_users_most_played_style(world):
    data, features = world
    for user in range(8):
        profile = taste_profile(data, user, PROMPTS)
        style = get_style(dominant_style(data, features, user))
        assert profile.genres[0] == style.genre and profile.moods[0] == style.mood
        assert profile.tempo is None and profile.key is None  # the demo catalog has no tempo/key metadata


def test_tempo_and_key_come_from_catalog_metadata_not_latents(world):
    data, features = world
    catalog = data.catalog.copy()
    catalog["tempo"] = 100.0
    catalog["key"], catalog["mode"] = "A", "minor"
    with_metadata = replace(data, catalog=catalog)
    profile = taste_profile(with_metadata, 0, PROMPTS)
    assert (profile.tempo, profile.key) == (100, "A minor")


def test_references_are_the_most_played_then_the_latest_songs(world):
    data, features = world
    user = 0
    profile = taste_profile(data, user, replace(PROMPTS, n_references=3))
    weight = plays(data, user)
    history = data.histories[user]
    name = lambda s: f"{data.catalog['artist'].iat[s]} – {data.catalog['title'].iat[s]}"  # noqa: E731
    top = max(weight.values())
    assert profile.references[0] in {name(s) for s, w in weight.items() if w == top}
    assert name(history[-1]) in profile.references and len(profile.references) == 3


def test_templates_fill_the_prompt_fields(world):
    data, features = world
    config = PROMPTS
    profile = taste_profile(data, 1, config)
    prompt = build_prompt(profile, config, FieldLimits(), seed=0)
    assert profile.genres[0] in prompt.style.split(", ") and "BPM" not in prompt.style  # no tempo known
    assert prompt.description.startswith(", ".join(profile.moods))
    assert prompt.title == f"{profile.theme[0]} {profile.theme[1]}".title()
    assert prompt.lyrics.startswith("[Verse]\n") and "[Chorus]" in prompt.lyrics
    history_words = set(words(" ".join(data.catalog["lyrics"].iloc[data.histories[1]])))
    sung = [w for line in prompt.lyrics.splitlines() if not line.startswith("[") for w in words(line)]
    assert sung and all(w in history_words for w in sung)  # the n-gram model only knows the history's words
    assert all(w in history_words for w in profile.vocabulary["words"])
    assert prompt.truncated == {}
    assert build_prompt(profile, config, FieldLimits(), seed=0) == prompt  # seeded


def test_empty_template_parts_are_left_out():
    values = {"tags": "folk", "bpm": "", "key": "G major"}
    assert render_template(["{tags}", "{bpm} BPM", "{key}"], values) == "folk, G major"
    with pytest.raises(KeyError, match="nope"):
        render_template("{nope}", values)


def test_model_limits_by_suno_version():
    assert model_limits("suno", "chirp-v3-5") == SUNO_V4_LIMITS == model_limits("suno", "chirp-v4")
    for model in ("chirp-v4-5", "chirp-v4-5-plus", "chirp-v5", "chirp-auk"):
        assert model_limits("suno", model) == SUNO_V45_LIMITS
    assert (SUNO_V4_LIMITS.style, SUNO_V4_LIMITS.lyrics, SUNO_V4_LIMITS.title) == (200, 3000, 80)
    assert (SUNO_V45_LIMITS.style, SUNO_V45_LIMITS.lyrics, SUNO_V45_LIMITS.title) == (1000, 5000, 100)
    assert model_limits("oracle", "simsong-demo-oracle") == FieldLimits()


def test_v4_cuts_long_fields_at_word_boundaries_and_v45_keeps_them(world, caplog):
    data, features = world
    config = PromptConfig(
        style="{tags}, " + "warm analog tape hiss, " * 15,  # ~350 characters
        title=" ".join(["home"] * 18),  # 89 characters
        description="{theme}",
        lyrics="[Verse]\n{verse}\n" + "la la la la la la la la\n" * 150,  # ~3600
    )
    profile = taste_profile(data, 2, config)
    full = build_prompt(profile, config, FieldLimits())
    with caplog.at_level(logging.WARNING, logger="generative.prompts"):
        v4 = build_prompt(profile, config, model_limits("suno", "chirp-v4"))
    v45 = build_prompt(profile, config, model_limits("suno", "chirp-v4-5"))
    assert set(v4.truncated) == {"style", "title", "lyrics"} and v45.truncated == {}
    assert (v45.style, v45.title, v45.lyrics) == (full.style, full.title, full.lyrics)
    for name, limit in (("style", 200), ("title", 80), ("lyrics", 3000)):
        cut, original = getattr(v4, name), getattr(full, name)
        assert len(cut) <= limit and original.startswith(cut)
        assert original[len(cut)] in " ,\n" and not cut.endswith((" ", ","))  # ends at a whole word
        assert v4.truncated[name] == {"chars": len(original), "limit": limit, "kept": len(cut)}
        assert f"prompt {name} cut from {len(original)}" in caplog.text
    assert v4.lyrics.endswith("la")  # lyrics end at a line


def test_cut_at_word_edge_cases():
    assert cut_at_word("short", 10) == "short"
    assert cut_at_word("one two three", 8) == "one two"
    assert cut_at_word("x" * 20, 5) == "xxxxx"  # no boundary: hard cut
    assert cut_at_word("line one\nline two", 12, prefer_lines=True) == "line one"


def test_prompt_round_trips_through_json(world):
    data, features = world
    config = PROMPTS
    prompt = build_prompt(taste_profile(data, 3, config), config, SUNO_V4_LIMITS)
    assert type(prompt).from_dict(json.loads(json.dumps(prompt.to_dict()))) == prompt
