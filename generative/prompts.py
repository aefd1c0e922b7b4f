"""What to ask a generator for one user: a taste profile from the training history, turned into prompt fields.

The profile weights every song of the user's training history by its plays: the dominant tags
(split into style keywords and moods), tempo and key where the catalog's metadata has them
(`tempo`, `key`, `mode` columns), reference songs (most played, then most recent) and the words
of the history's lyrics; prompt lyrics come from a word n-gram model of the history's lyrics.
Nothing here knows the demo world: matching prompts to demo styles is the oracle generator's
business (`generative/generators/oracle.py`). The
templates in `configs/generate.yaml` turn it into the fields a generator takes (style, title,
description, lyrics); fields longer than the target model allows are cut at a word boundary
and the cut is recorded in the prompt, so what was sent is always what the manifest shows.
"""

from __future__ import annotations

import logging
import re
import string
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from generative.lyric_ngram import LyricNgram
from taste.novelty import words

log = logging.getLogger(__name__)

PROMPT_FIELDS = ("style", "title", "description", "lyrics")

# Tags read as moods rather than styles; the rest of a user's top tags are style keywords.
MOOD_WORDS = frozenset(
    "calm energetic dark happy sad upbeat chill aggressive "
    "melancholic melancholy mellow romantic relaxing relaxed angry uplifting dreamy peaceful emotional "
    "nostalgic hopeful moody atmospheric groovy sexy epic fun funny beautiful love sensual soothing "
    "cheerful gloomy intense playful sentimental tender bittersweet euphoric haunting".split()
)
STOPWORDS = frozenset(
    "the a an and or but of to in on at for with from by is are was were be been am i you he she it we they "
    "me my your our their his her its us them this that these those so as if then than when where while all "
    "every no not can will just now oh yeah la na da too up down out over into back again".split()
)


@dataclass(frozen=True)
class FieldLimits:
    """Most characters a model takes per prompt field (None = no limit)."""

    style: int | None = None
    title: int | None = None
    description: int | None = None
    lyrics: int | None = None


# Suno custom mode: style and lyrics limits as the suno.com web app enforces them. The description
# limits (description mode's `gpt_description_prompt`) are the web app's "song description" box.
SUNO_V4_LIMITS = FieldLimits(style=200, title=80, description=200, lyrics=3000)
SUNO_V45_LIMITS = FieldLimits(style=1000, title=100, description=500, lyrics=5000)
# Suno's internal code names of v4.5 and later models.
SUNO_V45_CODENAMES = ("chirp-auk", "chirp-bluejay", "chirp-crow")


def model_limits(backend: str, model: str) -> FieldLimits:
    """Field limits of a backend's model: Suno's by version (v4 and older vs v4.5+); none for other backends."""
    if backend != "suno":
        return FieldLimits()
    name = model.lower()
    if name.startswith(SUNO_V45_CODENAMES):
        return SUNO_V45_LIMITS
    match = re.match(r"chirp-v(\d+)(?:[-.](\d+))?", name)
    if match is None:
        log.warning("unknown Suno model %r: using the stricter v4 prompt limits", model)
        return SUNO_V4_LIMITS
    version = (int(match.group(1)), int(match.group(2) or 0))
    return SUNO_V45_LIMITS if version >= (4, 5) else SUNO_V4_LIMITS


def cut_at_word(text: str, limit: int, prefer_lines: bool = False) -> str:
    """`text` cut to at most `limit` characters at a word (or, for lyrics, line) boundary."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    if prefer_lines and "\n" in head[:limit]:
        return head[: head[:limit].rindex("\n")].rstrip()
    boundary = max(head.rfind(" "), head.rfind("\n"))
    cut = head[:boundary] if boundary > 0 else text[:limit]
    return cut.rstrip(" ,;:-–\n")


@dataclass
class PromptConfig:
    """How a user's history becomes a prompt.

    Templates are Python format strings, or lists of them joined by ", ": a list item whose
    placeholders are all empty (no tempo known, say) is left out. Placeholders: `{user_id}`,
    `{tags}` (style keywords and moods by weight), `{genres}`, `{moods}`, `{top_genre}`,
    `{top_mood}`, `{bpm}`, `{key}` ("A minor"), `{references}` ("artist – title; ..."),
    `{theme}` (top lyric words), `{title_words}` (an adjective and a noun of them); lyrics also
    `{hook}`, `{verse}` and `{lyrics}` (written from the user's lyric vocabulary).

    Args:
        style: Style prompt (Suno's `tags`, MusicGen's text).
        title: Song title.
        description: Description-mode prompt (Suno's `/api/generate`).
        lyrics: Lyrics sent in custom mode (one format string; newlines kept).
        write_lyrics: Write lyrics from the user's vocabulary; false leaves lyrics to the model.
        make_instrumental: Ask for songs without vocals.
        n_genres: Style keywords taken from the top tags.
        n_moods: Moods taken from the top tags.
        n_references: Reference songs: most played first, then most recent.
        n_theme_words: Lyric words in `{theme}` (nouns, then adjectives, of the history's lyrics).
        min_share: Tags weighing less than this share of the top tag are left out of genres and moods.
    """

    style: str | list[str]
    title: str | list[str]
    description: str | list[str]
    lyrics: str
    write_lyrics: bool = True
    make_instrumental: bool = False
    n_genres: int = 3
    n_moods: int = 2
    n_references: int = 3
    n_theme_words: int = 6
    min_share: float = 0.25


@dataclass
class TasteProfile:
    """A user's training history, summarised (every value JSON-friendly, stored in the manifest)."""

    user_id: str
    n_songs: int
    tag_weights: dict[str, float]
    genres: list[str]
    moods: list[str]
    references: list[str]
    theme: list[str]
    vocabulary: dict[str, list[str]]
    tempo: float | None = None
    key: str | None = None
    lyrics: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


@dataclass
class Prompt:
    """Everything a generator is asked, as sent.

    Attributes:
        seed: Seed of this request (set per user, request and attempt by the run loop).
        truncated: Per cut field, its length before the cut and the limit (empty when nothing was cut).
    """

    user_id: str
    style: str
    title: str
    description: str
    lyrics: str | None
    make_instrumental: bool
    profile: TasteProfile
    seed: int = 0
    limits: dict[str, int | None] = field(default_factory=dict)
    truncated: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> Prompt:
        return cls(**{**record, "profile": TasteProfile(**record["profile"])})


def user_seed(seed: int, user_id: str, *more: int) -> np.random.SeedSequence:
    """A seed that depends on the config's seed and the user (stable across runs and processes)."""
    return np.random.SeedSequence([seed, zlib.crc32(user_id.encode()), *more])


# ---- taste profile ------------------------------------------------------------------------------
def _tags(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(tag).strip().lower() for tag in value if str(tag).strip()]


def _weighted_mode(values: list[str], weights: list[float]) -> str | None:
    totals: Counter = Counter()
    for value, weight in zip(values, weights):
        totals[value] += weight
    return totals.most_common(1)[0][0] if totals else None


def _references(catalog: pd.DataFrame, songs: np.ndarray, weights: np.ndarray, n: int) -> list[str]:
    """Most played songs (ties: the more recent), then the most recent ones, as "artist – title"."""
    order = np.lexsort((-np.arange(len(songs)), -weights))  # by weight, then later position first
    n_played = (n + 1) // 2
    chosen = [int(songs[i]) for i in order[:n_played]]
    for song in songs[::-1]:
        if len(chosen) >= n:
            break
        if int(song) not in chosen:
            chosen.append(int(song))
    rows = catalog.iloc[chosen]
    return [f"{artist} – {title}" for artist, title in zip(rows["artist"], rows["title"])]


def theme_words(lyrics: list[str], weights: np.ndarray, size: int = 8) -> list[str]:
    """The history's most play-weighted lyric words (3+ letters, stopwords left out; ties alphabetical)."""
    counts: Counter = Counter()
    for text, weight in zip(lyrics, weights):
        for word in set(words(text)) - STOPWORDS:
            if len(word) > 2 and not word.isdigit():
                counts[word] += float(weight)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def _tempo_and_key(rows: pd.DataFrame, weights: np.ndarray) -> tuple[float | None, str | None]:
    """Play-weighted mean tempo and most played key ("A minor") from catalog metadata, else None."""
    tempo = key = None
    if "tempo" in rows and rows["tempo"].notna().any():
        known = rows["tempo"].notna().to_numpy()
        tempo = round(float(np.average(rows["tempo"][known].astype(float), weights=weights[known])))
    if "key" in rows and rows["key"].notna().any():
        modes = rows["mode"].fillna("") if "mode" in rows else pd.Series([""] * len(rows), index=rows.index)
        known = rows["key"].notna().to_numpy()
        names = [f"{k} {m}".strip() for k, m in zip(rows["key"][known], modes[known])]
        key = _weighted_mode(names, weights[known].tolist())
    return tempo, key


def taste_profile(data, user_index: int, config: PromptConfig) -> TasteProfile:
    """Summarise user `user_index` of an `InteractionData` from its training history, weighted by plays."""
    user_id = data.user_ids[user_index]
    songs = np.asarray(data.histories[user_index], dtype=np.int64)
    if len(songs) == 0:
        raise ValueError(f"user {user_id!r} has no training history to build a prompt from")
    row = data.train[user_index]
    play_of = dict(zip(row.indices.tolist(), row.data.tolist()))
    weights = np.array([play_of.get(int(s), 1.0) for s in songs], dtype=np.float64)
    catalog = data.catalog
    tag_weights: Counter = Counter()
    for song, weight in zip(songs, weights):
        for tag in _tags(catalog["tags"].iat[int(song)]):
            tag_weights[tag] += weight
    ranked = [tag for tag, _ in sorted(tag_weights.items(), key=lambda kv: (-kv[1], kv[0]))]
    strong = [t for t in ranked if tag_weights[t] >= config.min_share * tag_weights[ranked[0]]] if ranked else []
    moods = [t for t in strong if t in MOOD_WORDS][: config.n_moods]
    genres = [t for t in strong if t not in MOOD_WORDS][: config.n_genres]
    lyrics = catalog["lyrics"].iloc[songs].fillna("").astype(str).tolist()
    vocabulary = theme_words(lyrics, weights)
    tempo, key = _tempo_and_key(catalog.iloc[songs], weights)
    return TasteProfile(
        user_id=user_id, n_songs=len(songs), tag_weights={t: float(tag_weights[t]) for t in ranked},
        genres=genres, moods=moods, references=_references(catalog, songs, weights, config.n_references),
        theme=vocabulary[: config.n_theme_words], vocabulary={"words": vocabulary}, tempo=tempo, key=key,
        lyrics=lyrics, weights=weights.tolist(),
    )


# ---- prompt -------------------------------------------------------------------------------------
def _title_words(profile: TasteProfile) -> str:
    """The user's two top lyric words ("Harbour Rain")."""
    return " ".join(w.title() for w in profile.theme[:2])


def _placeholders(profile: TasteProfile) -> dict[str, str]:
    tags = [t for t in profile.tag_weights if t in set(profile.genres) | set(profile.moods)]
    return {
        "user_id": profile.user_id,
        "tags": ", ".join(tags),
        "genres": ", ".join(profile.genres),
        "moods": ", ".join(profile.moods),
        "top_genre": profile.genres[0] if profile.genres else "",
        "top_mood": profile.moods[0] if profile.moods else "",
        "bpm": str(round(profile.tempo)) if profile.tempo is not None else "",
        "key": profile.key or "",
        "references": "; ".join(profile.references),
        "theme": ", ".join(profile.theme),
        "title_words": _title_words(profile),
    }


def render_template(template: str | list[str], values: dict[str, str]) -> str:
    """Fill a template; of a list, keep the parts with at least one non-empty placeholder, joined by ", "."""
    parts = [template] if isinstance(template, str) else list(template)
    kept = []
    for part in parts:
        names = [name for _, name, _, _ in string.Formatter().parse(part) if name]
        unknown = [n for n in names if n not in values]
        if unknown:
            raise KeyError(f"prompt template {part!r}: unknown placeholder(s) {unknown}; known: {sorted(values)}")
        if names and not any(values[n] for n in names):
            continue
        kept.append(part.format(**values).strip())
    return re.sub(r"[ \t]+", " ", ", ".join(p for p in kept if p)).strip()


def write_user_lyrics(profile: TasteProfile, template: str, seed: int, verse_lines: int = 4) -> str | None:
    """Lyrics written by a word n-gram model of the user's history lyrics (a hook line, then a verse).

    None when the history has no lyrics (the generator then writes its own, or none).
    """
    model = LyricNgram().fit(profile.lyrics, profile.weights)
    lines = model.lines(verse_lines + 1, np.random.default_rng(user_seed(seed, profile.user_id, 1)))
    if not lines:
        return None
    values = {**_placeholders(profile), "hook": lines[0], "verse": "\n".join(lines[1:]), "lyrics": "\n".join(lines)}
    return template.format(**values).strip()


def build_prompt(profile: TasteProfile, config: PromptConfig, limits: FieldLimits, seed: int = 0) -> Prompt:
    """Prompt fields from a profile, each cut to `limits` at a word boundary; cuts are recorded and logged."""
    values = _placeholders(profile)
    fields = {
        "style": render_template(config.style, values),
        "title": render_template(config.title, values) or "Untitled",
        "description": render_template(config.description, values),
        "lyrics": None,
    }
    if config.write_lyrics and not config.make_instrumental:
        fields["lyrics"] = write_user_lyrics(profile, config.lyrics, seed)
    truncated = {}
    for name in PROMPT_FIELDS:
        limit = getattr(limits, name)
        text = fields[name]
        if text is None or limit is None or len(text) <= limit:
            continue
        fields[name] = cut_at_word(text, limit, prefer_lines=name == "lyrics")
        truncated[name] = {"chars": len(text), "limit": limit, "kept": len(fields[name])}
        log.warning(
            "user %s: prompt %s cut from %d to %d characters (limit %d)",
            profile.user_id, name, len(text), len(fields[name]), limit,
        )
    return Prompt(
        user_id=profile.user_id, **fields, make_instrumental=config.make_instrumental, profile=profile,
        limits=asdict(limits), truncated=truncated,
    )
