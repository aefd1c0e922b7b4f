"""The generator seam: `generate(prompt, user_id) -> list[GeneratedSong]`, plus the errors the run loop acts on.

A backend whose songs take a while (Suno) is an `AsyncGenerator`: `submit` returns a JSON job
(the clip ids) that the run loop stores in the manifest *before* `collect` waits for it, so a
restart collects the same job instead of paying for a new one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from generative.prompts import Prompt
from songdata.atomic_files import replace_atomically
from songdata.audio import SAMPLE_RATE


class GenerationError(RuntimeError):
    """One request failed (recorded in the manifest; the batch goes on)."""


class TransientError(GenerationError):
    """Worth trying again later without paying again: a server down, clips not finished in time."""


class OutOfCredits(GenerationError):
    """The service has no credits left: the batch stops cleanly, finished songs are kept."""


class GeneratorUnavailable(RuntimeError):
    """The backend cannot run at all (no weights, no server configured): the run stops before any request."""


@dataclass
class GeneratedSong:
    """One generated clip.

    Attributes:
        clip_id: The backend's id of the clip (unique within a request).
        audio_path: Where its audio was saved (None when the clip failed).
        status: "complete" or "failed".
        metadata: Whatever else the backend returned (JSON-friendly).
    """

    clip_id: str
    audio_path: Path | None
    title: str
    lyrics: str
    tags: str
    model: str
    backend: str
    duration_s: float | None = None
    status: str = "complete"
    error: str | None = None
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["audio_path"] = str(self.audio_path) if self.audio_path is not None else None
        return record


class Generator(ABC):
    """Makes songs for one prompt. Subclasses set `backend` and `model` and implement `generate`."""

    backend: str = ""
    model: str = ""

    @abstractmethod
    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        """The songs made for this prompt (a Suno call gives two)."""

    def prepare(self, user_ids: list[str]) -> None:
        """Get ready for requests of these users at once (e.g. read their history audio in one pass)."""

    def fixed_users(self) -> list[str] | None:
        """Users this backend has songs for regardless of the run's choice (imports); None = any user."""
        return None


class AsyncGenerator(Generator):
    """A generator whose requests are submitted, then collected (possibly after a restart)."""

    @abstractmethod
    def submit(self, prompt: Prompt, user_id: str) -> dict:
        """Start a request; returns a JSON-friendly job that `collect` can finish from alone."""

    @abstractmethod
    def collect(self, job: dict, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        """Wait for a submitted job and fetch its songs."""

    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        return self.collect(self.submit(prompt, user_id), prompt, user_id)


def safe_name(text: str) -> str:
    """A file-name-safe form of an id (user ids may hold slashes or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


def write_wav_atomic(wave: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """16-bit wav at `path`, replaced whole (`replace_atomically`), so a crash never leaves half a file."""
    clipped = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    replace_atomically(path, lambda f: sf.write(f, clipped, sample_rate, format="WAV", subtype="PCM_16"))
    return path
