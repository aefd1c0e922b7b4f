"""The offline generator: a new song composed and rendered by the project's own demo composer and synthesiser.

Not a neural model: it picks the demo style that best matches the prompt (the user's dominant
tags), composes a new song in it from a seed of (user, request) and renders a 16 kHz wav, with
lyrics in the words of the user's history. Every record says `simsong-local-composer` / `local`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from prepare.demo import STYLES, Vocabulary, render_song, write_lyrics
from generative.generators import LOCAL_MODEL
from generative.generators.base import GeneratedSong, Generator, safe_name, write_wav_atomic
from generative.prompts import Prompt, match_demo_style

log = logging.getLogger(__name__)


def prompt_style(prompt: Prompt):
    """The demo style a prompt asks for: the user's weighted tags, else the words of the style prompt."""
    weights = dict(prompt.profile.tag_weights) if prompt.profile is not None else {}
    if not weights:
        words = re.findall(r"[a-z]+", prompt.style.lower())
        weights = {w: 1.0 / (1 + i) for i, w in enumerate(words)}
    style, score = match_demo_style(weights)
    if score == 0:
        style = STYLES[int(np.random.default_rng(prompt.seed).integers(len(STYLES)))]
        log.warning("user %s: no demo style matches %r; composing in %s", prompt.user_id, prompt.style, style.name)
    return style


class LocalGenerator(Generator):
    """Songs from the demo composer (offline, a fraction of a second each).

    Args:
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.wav`.
        seconds: Length of each song.
        clips_per_request: Songs per request.
        seed: Mixed into each request's seed.
    """

    backend = "local"
    model = LOCAL_MODEL

    def __init__(self, audio_dir: Path, seconds: float = 12.0, clips_per_request: int = 2, seed: int = 0):
        self.audio_dir, self.seconds, self.seed = Path(audio_dir), seconds, seed
        self.clips_per_request = clips_per_request

    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        style = prompt_style(prompt)
        songs = []
        for k in range(self.clips_per_request):
            seed = int(np.random.SeedSequence([self.seed, prompt.seed, k]).generate_state(1)[0])
            lyrics = prompt.lyrics
            if lyrics is None and not prompt.make_instrumental:
                vocabulary = Vocabulary(**{p: tuple(w) for p, w in prompt.profile.vocabulary.items()})
                lyrics = write_lyrics(style, np.random.default_rng([seed, 1]), vocabulary)
            clip_id = f"local-{seed:08x}"
            path = self.audio_dir / safe_name(user_id) / f"{clip_id}.wav"
            write_wav_atomic(render_song(style.name, seed, self.seconds), path)
            songs.append(
                GeneratedSong(
                    clip_id=clip_id, audio_path=path, title=prompt.title, lyrics=lyrics or "",
                    tags=f"{style.genre}, {style.mood}", model=self.model, backend=self.backend,
                    duration_s=float(self.seconds),
                    metadata={"local": True, "style": style.name, "seed": seed, "composer": "prepare.demo"},
                )
            )
        return songs
