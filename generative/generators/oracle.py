"""The `oracle` generator: a demo-world simulator that knows the world's styles (an upper bound, demo only).

It matches the user's tags to the demo style they were generated from (demo tags are exactly a
style's genre and mood), then composes, renders and writes lyrics with the very composer,
synthesiser and lyric writer that made the demo world's songs. Its scores measure that
knowledge, not a generator: every record and row says `oracle`. The only module of `generative/`
that imports the demo world.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generative.generators import ORACLE_MODEL
from generative.generators.base import GeneratedSong, Generator, safe_name, write_wav_atomic
from generative.prompts import Prompt

if TYPE_CHECKING:
    from prepare.demo import Style

log = logging.getLogger(__name__)

ORACLE_LABEL = "demo-world simulator: knows the world's styles; an upper bound, demo only"


def match_demo_style(tag_weights: dict[str, float]) -> tuple[Style, float]:
    """The demo style whose genre and mood best match weighted tags (a tag's words count; extra tags half).

    Returns the style and its score (0 when no tag matched: then the first style).
    """
    from prepare.demo import STYLES  # the demo world and its synthesiser load only when a song is composed

    scores = np.zeros(len(STYLES))
    for tag, weight in tag_weights.items():
        words = set(re.findall(r"[a-z]+", tag.lower()))
        for i, style in enumerate(STYLES):
            extra = 0.5 * bool(words & set(style.extra_tags))
            scores[i] += weight * ((style.genre in words) + (style.mood in words) + extra)
    best = int(np.argmax(scores))
    return STYLES[best], float(scores[best])


def prompt_style(prompt: Prompt) -> Style:
    """The demo style a prompt asks for: the user's weighted tags, else the words of the style prompt."""
    weights = dict(prompt.profile.tag_weights) if prompt.profile is not None else {}
    if not weights:
        words = re.findall(r"[a-z]+", prompt.style.lower())
        weights = {w: 1.0 / (1 + i) for i, w in enumerate(words)}
    style, score = match_demo_style(weights)
    if score == 0:
        from prepare.demo import STYLES

        style = STYLES[int(np.random.default_rng(prompt.seed).integers(len(STYLES)))]
        log.warning("user %s: no demo style matches %r; composing in %s", prompt.user_id, prompt.style, style.name)
    return style


class OracleGenerator(Generator):
    """Songs from the demo world's own composer and lyric writer, in the user's matched style.

    Args:
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.wav`.
        seconds: Length of each song.
        clips_per_request: Songs per request.
        seed: Mixed into each request's seed.
    """

    backend = "oracle"
    model = ORACLE_MODEL

    def __init__(self, audio_dir: Path, seconds: float = 12.0, clips_per_request: int = 2, seed: int = 0):
        self.audio_dir, self.seconds, self.seed = Path(audio_dir), seconds, seed
        self.clips_per_request = clips_per_request

    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        from prepare.demo import render_song, write_lyrics

        style = prompt_style(prompt)
        songs = []
        for k in range(self.clips_per_request):
            seed = int(np.random.SeedSequence([self.seed, prompt.seed, k]).generate_state(1)[0])
            lyrics = "" if prompt.make_instrumental else write_lyrics(style, np.random.default_rng([seed, 1]))
            clip_id = f"oracle-{seed:08x}"
            path = self.audio_dir / safe_name(user_id) / f"{clip_id}.wav"
            write_wav_atomic(render_song(style.name, seed, self.seconds), path)
            songs.append(
                GeneratedSong(
                    clip_id=clip_id, audio_path=path, title=prompt.title, lyrics=lyrics,
                    tags=f"{style.genre}, {style.mood}", model=self.model, backend=self.backend,
                    duration_s=float(self.seconds),
                    metadata={"oracle": ORACLE_LABEL, "style": style.name, "seed": seed, "composer": "prepare.demo"},
                )
            )
        return songs
