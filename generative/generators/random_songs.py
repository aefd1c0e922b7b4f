"""The `random` generator: the floor. Random notes and random common words, nothing of the user.

Pitches, bass notes and rhythm are drawn uniformly (from the same ranges and rhythm grid the
`history` generator uses) and rendered by the same generic synthesiser; lyrics are lines of
random common English words. Any taste score worth its name should put it below every real row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generative.generators import RANDOM_MODEL
from generative.generators.base import GeneratedSong, Generator, safe_name, write_wav_atomic
from generative.melody_markov import IOI_BINS, render_notes
from generative.prompts import Prompt
from songdata.audio import SAMPLE_RATE

WORDS = tuple(
    """time day night love heart light world life eyes hand road home rain fire water sky sun moon star dream
    song voice word way door window street city river sea stone tree wind snow summer winter morning evening
    run walk fall rise turn hold break burn shine sing dance cry laugh wait stay leave find lose keep call
    cold warm dark bright slow fast wild quiet lonely golden silver broken empty open young old new blue red
    green black white deep high long little last first only again never always away together alone""".split()
)


class RandomGenerator(Generator):
    """Songs of random notes and random words (seeded per request).

    Args:
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.wav`.
        seconds: Length of each song.
        clips_per_request: Songs per request.
        seed: Mixed into each request's seed.
    """

    backend = "random"
    model = RANDOM_MODEL

    def __init__(self, audio_dir: Path, seconds: float = 12.0, clips_per_request: int = 2, seed: int = 0) -> None:
        self.audio_dir, self.seconds, self.seed = Path(audio_dir), seconds, seed
        self.clips_per_request = clips_per_request

    def _events(self, rng: np.random.Generator) -> list[tuple[float, tuple[int, int, float]]]:
        events, clock = [], 0.0
        while clock < self.seconds:
            top = int(rng.integers(55, 84))
            event = (top, top - int(rng.integers(5, 20)), float(rng.choice(IOI_BINS)))
            events.append((clock, event))
            clock += event[2]
        return events

    def _lyrics(self, rng: np.random.Generator, lines: int = 6) -> str:
        return "\n".join(" ".join(rng.choice(WORDS, int(rng.integers(4, 9)))).capitalize() for _ in range(lines))

    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        out = []
        for k in range(self.clips_per_request):
            seed = int(np.random.SeedSequence([self.seed, prompt.seed, k]).generate_state(1)[0])
            rng = np.random.default_rng(seed)
            clip_id = f"random-{seed:08x}"
            path = self.audio_dir / safe_name(user_id) / f"{clip_id}.wav"
            write_wav_atomic(render_notes(self._events(rng), self.seconds, SAMPLE_RATE), path)
            out.append(
                GeneratedSong(
                    clip_id=clip_id,
                    audio_path=path,
                    title="Untitled",
                    lyrics="" if prompt.make_instrumental else self._lyrics(rng),
                    tags="random",
                    model=self.model,
                    backend=self.backend,
                    duration_s=float(self.seconds),
                    metadata={"seed": seed},
                )
            )
        return out
