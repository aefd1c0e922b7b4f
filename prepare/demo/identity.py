"""A demo song's latent identity: where it sits beyond its style, the hidden cause shared by its audio and lyrics.

Each song draws its identity around its style's centre; `spread` sets how far songs stray (0 gives
every song of a style the same identity: the easy world, where audio and lyrics share only the style).
The composer reads it for tempo, mode, register, density, instruments and production; the lyric
writer for topic words, imagery and line shape; listeners' tastes live in the same space.
Models never see it: it is kept in `song_features.parquet` for reference figures only.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from prepare.demo.styles import Style, get_style

LATENT_DIMS: tuple[str, ...] = ("energy", "tempo_feel", "darkness", "brightness", "topic")


@dataclass(frozen=True)
class Identity:
    """A song's latent values, each in [0, 1]; `topic` is cyclic (0 and 1 are the same topic)."""

    energy: float
    tempo_feel: float
    darkness: float
    brightness: float
    topic: float

    def vector(self) -> np.ndarray:
        """Euclidean coordinates for tastes: the four linear values, then the topic on a circle of diameter 1."""
        angle = 2 * np.pi * self.topic
        return np.array([*astuple(self)[:4], 0.5 * np.cos(angle), 0.5 * np.sin(angle)])


def style_centre(style: Style | str) -> Identity:
    """The identity of a song that is exactly its style's type."""
    style = get_style(style)
    return Identity(style.energy, 0.5, 1.0 - style.valence, style.brightness, style.topic)


def draw_identity(style: Style | str, seed: int, spread: float) -> Identity:
    """Song `seed`'s identity: its style's centre plus Gaussian noise of sd `spread` (topic with less)."""
    centre = style_centre(style)
    if spread <= 0:
        return centre
    noise = np.random.default_rng([seed, 3]).normal(0.0, spread, len(LATENT_DIMS))
    linear = np.clip(np.array(astuple(centre)[:4]) + noise[:4], 0.0, 1.0)
    topic = (centre.topic + 0.6 * noise[4]) % 1.0
    return Identity(*(round(float(v), 4) for v in (*linear, topic)))
