"""The embedded demo world: a seeded dataset folder with planted structure, built in about a minute.

Songs are composed and rendered in one of the `STYLES`; artists mostly keep to one style; users
like a mixture of 1-3 (mostly neighbouring) styles and play popular songs of them more (Zipf);
last.fm-style similarity scores follow the styles' positions on the mood plane, with noise. So
audio, lyrics, listening histories and similarity all carry the same latent style, and every
model has something real to find.

Besides the dataset layout (see `dataset.py`), the folder holds `song_features.parquet`
(song_id, style, tempo, key, mode, seed) and `demo.json` (the parameters it was built with).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from songdata.audio import SAMPLE_RATE
from songdata.dataset import write_json_atomic, write_parquet_atomic, write_tables
from prepare.demo.composer import compose_song, plan_song
from prepare.demo.lyrics import write_artist_name, write_lyrics, write_title
from prepare.demo.styles import STYLES
from prepare.demo.synth import render_midi
from prepare.report import PrepareReport
from songdata.shards import SHARDS_DIR, assign_shard_splits, write_shards
from songdata.splits import SplitConfig, write_splits

log = logging.getLogger(__name__)

SONG_FEATURES = "song_features.parquet"
PARAMS = "demo.json"
# Bump when styles, composer or synthesiser change what a seed produces: built worlds are then rebuilt.
WORLD_VERSION = 1
SONGS_AT_SCALE_1 = 400
USERS_AT_SCALE_1 = 300
SONGS_PER_ARTIST = 5
SONGS_PER_SHARD = 32
SIMILAR_PER_SONG = 20


def render_song(style: str, seed: int, seconds: float) -> np.ndarray:
    """Compose and render one song, exactly `seconds` long at 16 kHz."""
    wave = render_midi(compose_song(style, seed, seconds), SAMPLE_RATE, max_seconds=seconds)
    length = int(round(seconds * SAMPLE_RATE))
    return np.pad(wave, (0, max(length - len(wave), 0)))[:length]


@dataclass
class DemoAudioSource:
    """An `AudioSource` that re-composes a demo song from its style and seed (picklable, for shard workers)."""

    songs: dict[str, tuple[str, int]]
    seconds: float

    def __call__(self, row: dict) -> np.ndarray:
        style, seed = self.songs[row["song_id"]]
        return render_song(style, seed, self.seconds)


def _mood_affinity() -> np.ndarray:
    """Style × style closeness in [0, 1] on the energy/valence plane (1 on the diagonal)."""
    position = np.array([(s.energy, s.valence) for s in STYLES])
    distance2 = ((position[:, None] - position[None]) ** 2).sum(-1)
    return np.exp(-distance2 / (2 * 0.25**2))


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


def make_songs(n_songs: int, seed: int, seconds: float) -> pd.DataFrame:
    """Catalog columns plus `style`, `seed`, `tempo`, `key` and `mode` of `n_songs` songs, evenly over the styles."""
    rng = np.random.default_rng([seed, 10])
    styles = rng.permutation(np.arange(n_songs) % len(STYLES))
    artists = _artists(styles, rng)
    rows = []
    for i, (style_index, artist) in enumerate(zip(styles, artists)):
        style = STYLES[style_index]
        song_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        song_rng = np.random.default_rng([song_seed, 2])
        tags = [style.genre, style.mood]
        if song_rng.random() < 0.4:
            tags.append(str(style.extra_tags[song_rng.integers(len(style.extra_tags))]))
        plan = plan_song(style, song_seed)
        rows.append({
            "song_id": f"demo-{i + 1:04d}", "artist": artist, "title": write_title(style, song_rng),
            "lyrics": write_lyrics(style, song_rng), "tags": tags, "duration_s": float(seconds),
            "style": style.name, "seed": song_seed, "tempo": plan.tempo, "key": plan.key, "mode": plan.mode,
        })
    return pd.DataFrame(rows)


def _user_tastes(rng: np.random.Generator, affinity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-3 styles, the later ones drawn near the first on the mood plane, with Dirichlet weights."""
    n_styles = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
    first = int(rng.integers(len(STYLES)))
    near = affinity[first] + 0.05
    near[first] = 0.0
    tastes = np.array([first, *rng.choice(len(STYLES), n_styles - 1, replace=False, p=near / near.sum())])
    return tastes, rng.dirichlet(np.full(len(tastes), 2.0))


def make_interactions(songs: pd.DataFrame, n_users: int, seed: int) -> pd.DataFrame:
    """Listening histories in order: sessions that stay in one liked style, Zipf popularity within a style."""
    rng = np.random.default_rng([seed, 11])
    style_names = [s.name for s in STYLES]
    style_of = songs["style"].map(style_names.index).to_numpy()
    popularity = np.zeros(len(songs))
    for index in range(len(STYLES)):
        members = np.flatnonzero(style_of == index)
        ranks = rng.permutation(len(members))
        popularity[members] = 1.0 / (ranks + 1.0) ** 1.1
    affinity = _mood_affinity()
    style_sizes = np.bincount(style_of, minlength=len(STYLES))
    rows = []
    for u in range(n_users):
        tastes, weights = _user_tastes(rng, affinity)
        liking = np.zeros(len(STYLES))
        liking[tastes] = weights
        seen = np.zeros(len(songs), dtype=bool)
        style = rng.choice(tastes, p=weights)
        # Histories of 10-60 songs, but not much longer than what the liked styles hold.
        length = min(int(rng.integers(10, 61)), max(5, int(0.8 * style_sizes[tastes].sum())))
        for position in range(length):
            if rng.random() < 0.25:
                style = rng.choice(tastes, p=weights)
            explore = rng.random() < 0.05
            p = np.where(seen, 0.0, 1.0 if explore else popularity * (style_of == style))
            if p.sum() == 0:
                p = (~seen).astype(float)
            song = int(rng.choice(len(songs), p=p / p.sum()))
            seen[song] = True
            plays = 1 + rng.poisson(0.5 + 6.0 * liking[style_of[song]])
            rows.append((f"user-{u + 1:04d}", songs["song_id"].iat[song], float(plays), position))
    return pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])


def make_similarity(songs: pd.DataFrame, seed: int, top_k: int = SIMILAR_PER_SONG) -> pd.DataFrame:
    """Each song's `top_k` most similar songs, scored in [0, 1] from style, mood plane and artist, plus noise."""
    rng = np.random.default_rng([seed, 12])
    style_names = [s.name for s in STYLES]
    style_of = songs["style"].map(style_names.index).to_numpy()
    artist = songs["artist"].to_numpy()
    noise = rng.normal(0.0, 0.08, (len(songs), len(songs)))
    score = (
        0.45 * _mood_affinity()[style_of][:, style_of]
        + 0.25 * (style_of[:, None] == style_of[None])
        + 0.2 * (artist[:, None] == artist[None])
        + (noise + noise.T) / np.sqrt(2)
    )
    score = np.clip(score, 0.0, 1.0)
    np.fill_diagonal(score, -1.0)
    k = min(top_k, len(songs) - 1)
    best = np.argsort(-score, axis=1, kind="stable")[:, :k]
    a = np.repeat(np.arange(len(songs)), k)
    b = best.ravel()
    pairs = pd.DataFrame({"song_a": songs["song_id"].to_numpy()[a], "song_b": songs["song_id"].to_numpy()[b]})
    pairs["score"] = np.round(score[a, b], 4)
    return pairs[pairs["score"] > 0].reset_index(drop=True)


def _reset_if_changed(out: Path, params: dict) -> None:
    """Finished shards are kept on a re-run, so a build with other parameters must not reuse them."""
    path = out / PARAMS
    built_with = json.loads(path.read_text()) if path.exists() else None
    if built_with != params and (out / SHARDS_DIR).exists():
        log.warning("%s: built with other parameters; rendering its shards again", out)
        shutil.rmtree(out / SHARDS_DIR)
    write_json_atomic(params, path)


def build_demo_world(
    out: Path,
    scale: float = 1.0,
    seed: int = 0,
    split: SplitConfig | None = None,
    workers: int = 2,
    song_seconds: float = 12.0,
) -> PrepareReport:
    """Build the embedded demo world: about 400 × scale songs in 8 styles and 300 × scale users.

    Re-running with the same arguments keeps the shards already rendered.

    Args:
        out: Dataset folder to write.
        scale: Multiplies the number of songs and users (0.1 gives a world for tests).
        seed: Seed of every random choice; the same seed gives the same tables and audio.
        split: How interactions are split (default `SplitConfig()`).
        workers: Processes that render audio.
        song_seconds: Length of each song.
    """
    started = time.perf_counter()
    out, split = Path(out), split or SplitConfig()
    n_songs = max(2 * len(STYLES), round(SONGS_AT_SCALE_1 * scale))
    n_users = max(4, round(USERS_AT_SCALE_1 * scale))
    params = {"version": WORLD_VERSION, "scale": scale, "seed": seed, "song_seconds": song_seconds, "split": asdict(split)}
    out.mkdir(parents=True, exist_ok=True)
    _reset_if_changed(out, params)
    songs = make_songs(n_songs, seed, song_seconds)
    interactions = make_interactions(songs, n_users, seed)
    similarity = make_similarity(songs, seed)
    write_tables(out, songs, interactions, similarity)
    write_parquet_atomic(songs[["song_id", "style", "tempo", "key", "mode", "seed"]], out / SONG_FEATURES)
    meta = write_splits(out, interactions, split)
    catalog = songs.drop(columns=["style", "seed", "tempo", "key", "mode"])
    assignment = assign_shard_splits(catalog, meta["cold_song_ids"], val_fraction=split.val_fraction, seed=seed)
    source = DemoAudioSource(dict(zip(songs["song_id"], zip(songs["style"], songs["seed"].astype(int)))), song_seconds)
    report = write_shards(out, catalog, assignment, source, songs_per_shard=SONGS_PER_SHARD, workers=workers)
    report.written.update(
        {"songs": len(songs), "users": n_users, "interactions": len(interactions), "similarity_pairs": len(similarity)}
    )
    log.info("demo world at %s built in %.1f s", out, time.perf_counter() - started)
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
