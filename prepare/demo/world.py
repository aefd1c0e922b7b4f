"""The embedded demo world: a seeded dataset folder with planted structure, built in a few minutes.

Songs are composed and rendered in one of the `STYLES`, and each song has a continuous latent
identity beyond its style (`identity.py`: energy, tempo feel, darkness, brightness, topic) that
drives, noisily, both its audio (tempo, mode, key, instruments, density, register, mix,
brightness, reverb) and its lyrics (topic words, imagery, line shape). Listeners' tastes are
points in that latent space that drift a little along each history; they play songs near their
taste, more so popular ones. Tags are partial and noisy. So audio and lyrics share more than the
style, and a model that knows only the style ranks a song's lyrics among ~20 of its style.

`difficulty` picks a preset of `DIFFICULTIES`: "hard" (the default, calibrated to HetRec last.fm-2k
and yes.com, see `calibration.py`) or "easy" (the first world: no identity, audio and lyrics share only
the style, 400 songs). No similarity table is written: a similarity must come from training co-listening.

Besides the dataset layout (see `dataset.py`), the folder holds `song_features.parquet` (song_id,
style, seed, tempo, key, mode and the latent values: hidden labels, for reference figures only; no
model, similarity, prompt or judge may read them), `difficulty.json` (reference figures on the
validation split, see `difficulty.py`) and `demo.json` (the parameters it was built with).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from prepare.demo.composer import compose_song, plan_song
from prepare.demo.difficulty import write_difficulty
from prepare.demo.identity import LATENT_DIMS, Identity, draw_identity
from prepare.demo.lyrics import write_artist_name, write_lyrics, write_title
from prepare.demo.production import produce
from prepare.demo.styles import STYLES
from prepare.demo.synth import render_midi
from prepare.report import PrepareReport
from songdata.atomic_files import write_json_atomic
from songdata.audio import SAMPLE_RATE
from songdata.dataset import SIMILARITY, write_parquet_atomic, write_tables
from songdata.shards import SHARDS_DIR, assign_shard_splits, write_shards
from songdata.splits import SplitConfig, write_splits

log = logging.getLogger(__name__)

SONG_FEATURES = "song_features.parquet"
PARAMS = "demo.json"
# Bump when styles, composer or synthesiser change what a seed produces: built worlds are then rebuilt.
WORLD_VERSION = 2
SONGS_PER_ARTIST = 5
SONGS_PER_SHARD = 32
PLAYS_PER_STEP = 10  # a listener's taste drifts once per this many plays


@dataclass(frozen=True)
class WorldConfig:
    """What a difficulty setting fixes.

    Attributes:
        songs, users: Catalog size and listeners at scale 1.
        song_seconds: Length of each song.
        spread: SD of a song's latent identity around its style's centre (0: songs are their style's type).
        own_share: Share of lyric lines in the style's own words (the rest follow the song's topic).
        noisy_tags: Tags partial (genre, mood sometimes missing) and noisy (mood from the identity, stray tags).
        popularity_exponent: Zipf exponent of song popularity over the whole catalog.
        history_median, history_sigma: Log-normal history lengths (distinct songs per user).
        taste_width: SD of how far from a listener's taste the songs they play lie, in latent units.
        drift: SD of a listener's taste step per play.
        explore: Added to every song's closeness to a taste (in [0, 1]): plays that ignore taste.
        play_sigma: Log-normal sigma of play counts per (user, song).
        play_popularity: How much more popular songs are replayed (exponent on relative popularity).
        gallery_fraction: Share of warm songs whose shards form the validation gallery.
    """

    songs: int
    users: int
    song_seconds: float
    spread: float
    own_share: float
    noisy_tags: bool
    popularity_exponent: float
    history_median: float
    history_sigma: float
    taste_width: float
    drift: float
    explore: float
    play_sigma: float
    play_popularity: float
    gallery_fraction: float


DIFFICULTIES: dict[str, WorldConfig] = {
    "easy": WorldConfig(
        songs=400, users=300, song_seconds=12.0, spread=0.0, own_share=1.0, noisy_tags=False,
        popularity_exponent=1.1, history_median=30, history_sigma=0.45, taste_width=0.15, drift=0.0,
        explore=0.05, play_sigma=0.5, play_popularity=0.0, gallery_fraction=0.1,
    ),
    "hard": WorldConfig(
        songs=700, users=500, song_seconds=6.0, spread=0.2, own_share=0.35, noisy_tags=True,
        popularity_exponent=0.9, history_median=60, history_sigma=0.7, taste_width=0.3, drift=0.015,
        explore=0.005, play_sigma=1.2, play_popularity=0.75, gallery_fraction=0.3,
    ),
}
Difficulty = Literal["easy", "hard"]


def render_song(style: str, seed: int, seconds: float, identity: Identity | None = None) -> np.ndarray:
    """Compose, render and produce one song, exactly `seconds` long at 16 kHz."""
    plan = plan_song(style, seed, identity)
    wave = render_midi(compose_song(style, seed, seconds, identity), SAMPLE_RATE, max_seconds=seconds)
    length = int(round(seconds * SAMPLE_RATE))
    return produce(np.pad(wave, (0, max(length - len(wave), 0)))[:length], plan, SAMPLE_RATE, seed)


@dataclass
class DemoAudioSource:
    """An `AudioSource` that re-composes a demo song from its style, seed and identity (picklable, for shard workers)."""

    songs: dict[str, tuple[str, int, Identity | None]]
    seconds: float

    def __call__(self, row: dict) -> np.ndarray:
        style, seed, identity = self.songs[row["song_id"]]
        return render_song(style, seed, self.seconds, identity)


def _artists(styles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An artist name per song: each artist has a home style, and 1 song in 8 comes from elsewhere."""
    pools, taken = [], set()
    for index, style in enumerate(STYLES):
        n_artists = max(1, round(int((styles == index).sum()) / SONGS_PER_ARTIST))
        pool = []
        while len(pool) < n_artists:
            name = next((n for n in (write_artist_name(style, rng) for _ in range(20)) if n not in taken), None)
            name = name or f"{write_artist_name(style, rng)} {len(taken) + 1}"  # only in very large worlds
            taken.add(name)
            pool.append(name)
        pools.append(pool)
    names = []
    for style in styles:
        home = style if rng.random() < 7 / 8 else rng.integers(len(STYLES))
        names.append(pools[home][rng.integers(len(pools[home]))])
    return np.array(names)


def _tags(style_index: int, identity: Identity, noisy: bool, rng: np.random.Generator) -> list[str]:
    """Genre, mood and sometimes an extra tag; noisy tags drop some, take the mood from the identity, add strays."""
    style = STYLES[style_index]
    if not noisy:
        tags = [style.genre, style.mood]
        return tags + ([str(style.extra_tags[rng.integers(len(style.extra_tags))])] if rng.random() < 0.4 else [])
    tags = [style.genre] if rng.random() < 0.7 else []
    if rng.random() < 0.6:  # the mood of the style whose (energy, darkness) lies nearest the song's
        where = np.array([identity.energy, identity.darkness]) + rng.normal(0, 0.1, 2)
        nearest = min(STYLES, key=lambda s: (s.energy - where[0]) ** 2 + (1 - s.valence - where[1]) ** 2)
        tags.append(nearest.mood)
    if rng.random() < 0.3:
        tags.append(str(style.extra_tags[rng.integers(len(style.extra_tags))]))
    if rng.random() < 0.15:
        stray = STYLES[rng.integers(len(STYLES))]
        tags.append(str(stray.extra_tags[rng.integers(len(stray.extra_tags))]))
    return list(dict.fromkeys(tags))


def make_songs(n_songs: int, seed: int, config: WorldConfig) -> pd.DataFrame:
    """Catalog columns plus `style`, `seed`, tempo/key/mode and the latent values of `n_songs` songs, evenly over the styles."""
    rng = np.random.default_rng([seed, 10])
    styles = rng.permutation(np.arange(n_songs) % len(STYLES))
    artists = _artists(styles, rng)
    rows = []
    for i, (style_index, artist) in enumerate(zip(styles, artists)):
        style = STYLES[style_index]
        song_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        song_rng = np.random.default_rng([song_seed, 2])
        identity = draw_identity(style, song_seed, config.spread)
        given = identity if config.spread > 0 else None
        plan = plan_song(style, song_seed, given)
        rows.append({
            "song_id": f"demo-{i + 1:04d}", "artist": artist, "title": write_title(style, song_rng),
            "lyrics": write_lyrics(style, song_rng, identity=given, own_share=config.own_share),
            "tags": _tags(style_index, identity, config.noisy_tags, song_rng),
            "duration_s": float(config.song_seconds), "style": style.name, "seed": song_seed,
            "tempo": plan.tempo, "key": plan.key, "mode": plan.mode, **asdict(identity),
        })
    return pd.DataFrame(rows)


def identities(songs: pd.DataFrame) -> list[Identity]:
    """Each song's `Identity`, read back from the latent columns of `make_songs`."""
    return [Identity(*values) for values in songs[list(LATENT_DIMS)].itertuples(index=False)]


def _history_lengths(n_users: int, n_songs: int, config: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    lengths = rng.lognormal(np.log(config.history_median), config.history_sigma, n_users)
    return np.clip(np.round(lengths), 5, max(5, n_songs // 3)).astype(int)


def _listen(
    latent: np.ndarray, popularity: np.ndarray, length: int, config: WorldConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One listener's history: song indices in order (no repeats) and each one's closeness to the taste then.

    The taste starts near a random song and drifts (a Gaussian random walk, one step per block of
    `PLAYS_PER_STEP` plays); each block is drawn without replacement among unheard songs with
    probability ∝ popularity × (closeness + explore), by Gumbel top-k.
    """
    n_steps = -(-length // PLAYS_PER_STEP)
    start = latent[rng.integers(len(latent))] + rng.normal(0, 0.05, latent.shape[1])
    tastes = start + rng.normal(0, config.drift * np.sqrt(PLAYS_PER_STEP), (n_steps, latent.shape[1])).cumsum(0)
    chosen, near = [], []
    seen = np.zeros(len(latent), dtype=bool)
    for step, taste in enumerate(tastes):
        closeness = np.exp(-((latent - taste) ** 2).sum(1) / (2 * config.taste_width**2))
        keys = np.log(popularity * (closeness + config.explore)) + rng.gumbel(size=len(latent))
        keys[seen] = -np.inf
        block = np.argsort(-keys)[: min(PLAYS_PER_STEP, length - step * PLAYS_PER_STEP)]
        seen[block] = True
        chosen.append(block)
        near.append(closeness[block])
    return np.concatenate(chosen), np.concatenate(near)


def make_interactions(songs: pd.DataFrame, n_users: int, seed: int, config: WorldConfig) -> pd.DataFrame:
    """Listening histories in order: each play near the listener's drifting taste, weighted by Zipf popularity.

    Play counts are log-normal, larger for songs nearer the taste and for popular songs (heavy-tailed, as real ones).
    """
    rng = np.random.default_rng([seed, 11])
    latent = np.stack([identity.vector() for identity in identities(songs)])
    popularity = 1.0 / (rng.permutation(len(songs)) + 1.0) ** config.popularity_exponent
    song_ids = songs["song_id"].to_numpy()
    frames = []
    for u, length in enumerate(_history_lengths(n_users, len(songs), config, rng)):
        chosen, closeness = _listen(latent, popularity, length, config, rng)
        mean = 2.0 * closeness + config.play_popularity * np.log(popularity[chosen] / popularity.mean())
        plays = np.ceil(rng.lognormal(mean, config.play_sigma))
        frames.append(pd.DataFrame({
            "user_id": f"user-{u + 1:04d}", "song_id": song_ids[chosen], "weight": plays, "position": np.arange(length),
        }))
    return pd.concat(frames, ignore_index=True)


def _reset_if_changed(out: Path, params: dict) -> None:
    """Finished shards are kept on a re-run, so a build with other parameters must not reuse them."""
    path = out / PARAMS
    built_with = json.loads(path.read_text()) if path.exists() else None
    if built_with != params and (out / SHARDS_DIR).exists():
        log.warning("%s: built with other parameters; rendering its shards again", out)
        shutil.rmtree(out / SHARDS_DIR)
    write_json_atomic(path, params, indent=2, sort_keys=True)


def build_demo_world(
    out: Path,
    difficulty: Difficulty = "hard",
    scale: float = 1.0,
    seed: int = 0,
    split: SplitConfig | None = None,
    workers: int = 2,
    song_seconds: float | None = None,
) -> PrepareReport:
    """Build the embedded demo world: 8 styles, songs and users as `difficulty` says, times `scale`.

    Re-running with the same arguments keeps the shards already rendered.

    Args:
        out: Dataset folder to write.
        difficulty: "hard" (700 songs with latent identities, 500 users, calibrated to real sets)
            or "easy" (the first world: 400 songs that share only their style across audio and lyrics).
        scale: Multiplies the number of songs and users (0.1 gives a world for tests).
        seed: Seed of every random choice; the same seed gives the same tables and audio.
        split: How interactions are split (default `SplitConfig()`).
        workers: Processes that render audio.
        song_seconds: Length of each song (default: the difficulty's).
    """
    started = time.perf_counter()
    out, split = Path(out), split or SplitConfig()
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"build_demo_world: difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    config = DIFFICULTIES[difficulty]
    if song_seconds is not None:
        config = dataclasses.replace(config, song_seconds=float(song_seconds))
    n_songs = max(2 * len(STYLES), round(config.songs * scale))
    n_users = max(4, round(config.users * scale))
    params = {"version": WORLD_VERSION, "difficulty": difficulty, "scale": scale, "seed": seed, "world": asdict(config), "split": asdict(split)}
    out.mkdir(parents=True, exist_ok=True)
    _reset_if_changed(out, params)
    songs = make_songs(n_songs, seed, config)
    interactions = make_interactions(songs, n_users, seed, config)
    hidden = ["style", "seed", "tempo", "key", "mode", *LATENT_DIMS]
    write_tables(out, songs.drop(columns=hidden), interactions)
    (out / SIMILARITY).unlink(missing_ok=True)  # an older build's, from latent labels
    write_parquet_atomic(songs[["song_id", *hidden]], out / SONG_FEATURES)
    meta = write_splits(out, interactions, split)
    catalog = songs.drop(columns=hidden)
    gallery = assign_shard_splits(catalog, meta["cold_song_ids"], val_fraction=config.gallery_fraction, seed=seed)
    given = identities(songs) if config.spread > 0 else [None] * len(songs)
    source = DemoAudioSource(dict(zip(songs["song_id"], zip(songs["style"], songs["seed"].astype(int), given))), config.song_seconds)
    report = write_shards(out, catalog, gallery, source, songs_per_shard=SONGS_PER_SHARD, workers=workers)
    write_difficulty(out, songs, interactions, gallery["val"])
    report.written.update({"songs": len(songs), "users": n_users, "interactions": len(interactions)})
    log.info("demo world (%s) at %s built in %.1f s", difficulty, out, time.perf_counter() - started)
    return report


def default_demo_root() -> Path:
    """`$SIMSONG_DATA/demo` when set, else `data/demo` under the repository root."""
    data = os.environ.get("SIMSONG_DATA")
    return Path(data) / "demo" if data else Path(__file__).resolve().parents[2] / "data" / "demo"


def _is_built(root: Path) -> bool:
    try:
        version = json.loads((root / PARAMS).read_text()).get("version")
    except (OSError, json.JSONDecodeError):
        return False
    return version == WORLD_VERSION and (root / SHARDS_DIR / "index.json").exists()


def ensure_demo_world(root: Path | None = None) -> Path:
    """The demo world's folder (`root`, or `default_demo_root()`), built first if missing, incomplete or outdated.

    A lock file keeps concurrent callers (several ranks, say) from building it twice.
    """
    root = Path(root) if root is not None else default_demo_root()
    if _is_built(root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_built(root):
            log.info("building the demo world at %s (first use, about a minute)", root)
            log.info("%s", build_demo_world(root).summary())
    return root
