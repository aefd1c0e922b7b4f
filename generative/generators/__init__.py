"""Generator backends, chosen by `--generator.backend`: history | random | oracle | suno | import | musicgen."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jsonargparse.typing import SecretStr

from generative.generators.base import (
    AsyncGenerator,
    GeneratedSong,
    GenerationError,
    Generator,
    GeneratorUnavailable,
    OutOfCredits,
    TransientError,
)

ORACLE_MODEL = "simsong-demo-oracle"
HISTORY_MODEL = "simsong-history-markov"
RANDOM_MODEL = "simsong-random"
DEFAULT_SUNO_MODEL = "chirp-v4-5"


@dataclass
class GeneratorConfig:
    """Which generator makes the songs, and its settings (each backend reads its own).

    Args:
        backend: `history` (offline: Markov/n-gram models of the user's history songs, any dataset with
            audio), `random` (random notes and words: the floor),
            `oracle` (demo-world simulator: knows the world's styles; an upper bound, demo
            only), `suno` (a self-hosted
            gcui-art/suno-api server), `import` (songs made by hand, listed in a file), `musicgen`
            (transformers' MusicGen).
        model: Suno model (`chirp-v4`, `chirp-v4-5`, `chirp-v5`, ...; it sets the prompt limits);
            empty = chirp-v4-5 for suno, the backend's own name otherwise.
        mode: Suno mode: `custom` (style + title + lyrics) or `description` (one description).
        base_url: suno-api server, e.g. http://localhost:3000; empty = $SUNO_API_URL.
        cookie: Suno cookie, sent as the Cookie header; empty = $SUNO_COOKIE. Never saved or logged.
        api_key: Bearer key of a server that wants one; empty = $SUNO_API_KEY. Never saved or logged.
        poll_interval_s: Seconds between polls of /api/get.
        poll_timeout_s: Give up waiting for a request's clips after this long (a re-run polls them again).
        request_timeout_s: Timeout of each HTTP call.
        max_retries: Retries of a call that failed with a 5xx or a connection error (exponential backoff).
        backoff_s: First retry delay; doubled each retry.
        check_credits: Ask /api/get_limit for the credits left before the batch.
        credits_per_request: Credits one Suno request costs (for the pre-batch check).
        import_path: `import`: a CSV or JSONL file, or a folder holding songs.csv / songs.jsonl.
        seconds: `history`, `random`, `oracle` and `musicgen`: length of each song.
        clips_per_request: `history`, `random`, `oracle`: songs per request (Suno makes 2).
        cache_dir: `history`: transcription cache of history songs; empty = `<run folder>/cache`.
        model_name_or_path: `musicgen`: a local folder or hub id of MusicGen weights.
        device: `musicgen`: torch device; empty = cuda when available, else cpu.
        guidance_scale: `musicgen`: classifier-free guidance.
    """

    backend: Literal["oracle", "history", "random", "suno", "import", "musicgen"] = "oracle"
    model: str | None = None
    mode: Literal["custom", "description"] = "custom"
    base_url: str | None = None
    cookie: SecretStr | None = None
    api_key: SecretStr | None = None
    poll_interval_s: float = 5.0
    poll_timeout_s: float = 900.0
    request_timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 2.0
    check_credits: bool = True
    credits_per_request: int = 10
    import_path: str | None = None
    seconds: float = 12.0
    clips_per_request: int = 2
    model_name_or_path: str = "facebook/musicgen-small"
    device: str | None = None
    guidance_scale: float = 3.0
    cache_dir: str | None = None

    def model_name(self) -> str:
        """The model a prompt is built for (it sets the prompt limits)."""
        if self.model:
            return self.model
        defaults = {
            "suno": DEFAULT_SUNO_MODEL, "oracle": ORACLE_MODEL, "history": HISTORY_MODEL,
            "random": RANDOM_MODEL, "musicgen": self.model_name_or_path,
        }
        return defaults.get(self.backend, self.backend)


def _secret(value: SecretStr | str | None, env: str) -> str | None:
    if value is None:
        return os.environ.get(env) or None
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def build_generator(config: GeneratorConfig, audio_dir: Path, seed: int = 0, dataset=None) -> Generator:
    """The configured backend, writing its audio under `audio_dir` (`history` reads `dataset`'s histories and shards)."""
    if config.backend == "history":
        from generative.generators.history import HistoryGenerator

        cache = Path(config.cache_dir) if config.cache_dir else Path(audio_dir).parent / "cache"
        return HistoryGenerator(audio_dir, dataset, cache, config.seconds, config.clips_per_request, seed)
    if config.backend == "random":
        from generative.generators.random_songs import RandomGenerator

        return RandomGenerator(audio_dir, seconds=config.seconds, clips_per_request=config.clips_per_request, seed=seed)
    if config.backend == "oracle":
        from generative.generators.oracle import OracleGenerator

        return OracleGenerator(audio_dir, seconds=config.seconds, clips_per_request=config.clips_per_request, seed=seed)
    if config.backend == "suno":
        from generative.generators.suno import SunoClient, SunoGenerator

        base_url = config.base_url or os.environ.get("SUNO_API_URL")
        if not base_url:
            raise GeneratorUnavailable("suno backend: no server; set --generator.base_url or $SUNO_API_URL")
        client = SunoClient(
            base_url, cookie=_secret(config.cookie, "SUNO_COOKIE"), api_key=_secret(config.api_key, "SUNO_API_KEY"),
            timeout_s=config.request_timeout_s, max_retries=config.max_retries, backoff_s=config.backoff_s,
        )
        return SunoGenerator(
            client, audio_dir, model=config.model_name(), mode=config.mode,
            poll_interval_s=config.poll_interval_s, poll_timeout_s=config.poll_timeout_s,
        )
    if config.backend == "import":
        from generative.generators.import_folder import ImportGenerator

        if not config.import_path:
            raise GeneratorUnavailable("import backend: set --generator.import_path to songs.csv/.jsonl or its folder")
        return ImportGenerator(config.import_path, audio_dir)
    if config.backend == "musicgen":
        from generative.generators.musicgen import MusicgenGenerator

        return MusicgenGenerator(
            audio_dir, config.model_name_or_path, seconds=config.seconds, device=config.device,
            guidance_scale=config.guidance_scale, seed=seed,
        )
    raise ValueError(
        f"generator.backend: unknown backend {config.backend!r}; expected history, random, oracle, suno, import or musicgen"
    )


__all__ = [
    "AsyncGenerator",
    "GeneratedSong",
    "GenerationError",
    "Generator",
    "GeneratorConfig",
    "GeneratorUnavailable",
    "OutOfCredits",
    "TransientError",
    "build_generator",
]
