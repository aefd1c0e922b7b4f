"""Generate songs for users: prompts from their histories, one generator, a resumable manifest.

The manifest and resume logic wrap every backend the same way: a request that finished is never
made again, a submitted one (its job stored before waiting) is collected instead of submitted
again, a failed one is retried only with `retry_failed`, and an out-of-credits answer stops the
batch cleanly with everything finished kept.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jsonargparse.typing import SecretStr
from tqdm.auto import tqdm

from generative.generators import (
    AsyncGenerator,
    GenerationError,
    Generator,
    GeneratorConfig,
    OutOfCredits,
    TransientError,
    build_generator,
)
from generative.manifest import Manifest, request_states, song_records
from generative.prompts import (
    Prompt,
    PromptConfig,
    build_prompt,
    model_limits,
    taste_profile,
    user_seed,
)
from songdata import SongDataset

log = logging.getLogger(__name__)

AUDIO_DIR = "audio"
# Request states after which nothing was made, so the next run submits again without being asked.
NOTHING_MADE = ("not_submitted", "out_of_credits")
# Request outcomes that stop the batch (what is finished is kept).
STOP_REASONS = {"out_of_credits": "out of credits", "not_submitted": "the generation service is unavailable"}


@dataclass
class GenerateConfig:
    """What to generate and how.

    Args:
        prompts: How a user's history becomes a prompt (templates in configs/generate.yaml).
        generator: Which backend makes the songs.
        seed: Seed of the choice of users and of every request.
        songs_per_user: Requests per user (a Suno request gives 2 songs; an oracle one `clips_per_request`).
        retry_failed: Make failed requests of earlier runs again (a new attempt).
    """

    prompts: PromptConfig
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    seed: int = 0
    songs_per_user: int = 1
    retry_failed: bool = False


@dataclass
class GenerationRun:
    """What a run left: every finished song of its users (earlier runs' included) and how its requests went.

    Attributes:
        songs: Song records of the manifest (`audio_path` absolute).
        counts: Requests by outcome in this run (`complete`, `failed`, `pending`, `skipped_complete`, ...).
        stopped: Why the batch stopped early (out of credits, server unavailable), or None.
    """

    out: Path
    songs: list[dict]
    counts: dict[str, int]
    stopped: str | None = None


def masked(value):
    """A JSON-friendly copy of a config with every secret replaced by a mask."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: masked(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return re.sub(r"(://[^/:@]+):[^/@]+@", r"\1:***@", value)  # a password inside a URL
    return value


def choose_users(data, num_users: int | None, seed: int, split: str = "test") -> np.ndarray:
    """Seeded users with a training history (and, for split "test", test interactions).

    The order is a seeded permutation, so a larger `num_users` keeps the users of a smaller one.
    """
    has_history = np.array([len(h) > 0 for h in data.histories])
    if split == "test":
        candidates = np.flatnonzero(has_history & (np.diff(data.test.indptr) > 0))
    elif split == "all":
        candidates = np.flatnonzero(has_history)
    else:
        raise ValueError(f"user_split: expected test or all, got {split!r}")
    order = np.random.default_rng(seed).permutation(candidates)
    return order[:num_users] if num_users is not None else order


def _action(state: dict | None, retry_failed: bool) -> tuple[str, int, dict | None]:
    """(what to do, attempt, job to collect) for a request given its latest record."""
    if state is None:
        return "submit", 0, None
    status, attempt, job = state["status"], int(state.get("attempt", 0)), state.get("job")
    if status == "complete":
        return "skip", attempt, None
    if status in ("submitted", "pending") and job:
        return "collect", attempt, job
    if status in NOTHING_MADE:
        return "submit", attempt, None
    if retry_failed:
        if state.get("retry") == "collect" and job:
            return "collect", attempt, job
        return "submit", attempt + 1, None
    return "skip", attempt, None


def _song_record(song, request: dict, prompt: Prompt, out: Path) -> dict:
    record = song.to_dict()
    if song.audio_path is not None:
        record["audio_path"] = Path(song.audio_path).resolve().relative_to(out.resolve()).as_posix()
    return {
        "kind": "song", "song_id": f"{request['request_id']}/{song.clip_id}", "request_id": request["request_id"],
        "user_id": request["user_id"], "attempt": request["attempt"], **record, "prompt": prompt.to_dict(),
    }


def run_request(generator: Generator, manifest: Manifest, request: dict, prompt: Prompt, job: dict | None) -> str:
    """Make (or collect) one request and record it; returns its new status."""
    user_id = request["user_id"]
    try:
        if isinstance(generator, AsyncGenerator):
            if job is None:
                job = generator.submit(prompt, user_id)
                manifest.append({**request, "status": "submitted", "job": job})
            songs = generator.collect(job, prompt, user_id)
        else:
            songs = generator.generate(prompt, user_id)
    except OutOfCredits as error:
        log.warning("user %s: %s", user_id, error)
        status = "out_of_credits" if job is None else "pending"
        manifest.append({**request, "status": status, "job": job, "error": str(error)})
        return "out_of_credits"
    except TransientError as error:
        status = "not_submitted" if job is None else "pending"
        log.warning("user %s: %s (%s; the next run tries again)", user_id, error, status)
        manifest.append({**request, "status": status, "job": job, "error": str(error)})
        return status
    except Exception as error:  # a refused request, an unexpected answer or a bug: recorded, the batch goes on
        expected = isinstance(error, GenerationError)
        log.error("user %s: request %s failed: %s", user_id, request["request_id"], error, exc_info=not expected)
        # A refusal (GenerationError) needs a new submission; anything else may leave the job collectable.
        retry = "collect" if job is not None and not expected else "submit"
        error_text = f"{type(error).__name__}: {error}"
        manifest.append({**request, "status": "failed", "job": job, "retry": retry, "error": error_text})
        return "failed"
    for song in songs:
        manifest.append(_song_record(song, request, prompt, manifest.out))
    done = [s for s in songs if s.status == "complete"]
    status = "complete" if done else "failed"
    errors = "; ".join(s.error or "" for s in songs if s.status != "complete")
    manifest.append(
        {**request, "status": status, "job": job, "songs": len(done), "error": errors or None, "retry": "submit"}
    )
    return status


def _check_credits(generator: Generator, config: GeneratorConfig, n_submissions: int) -> str | None:
    """Why the batch cannot start (no credits), or None; warns when the credits cover only part of it."""
    if not (config.check_credits and n_submissions and hasattr(generator, "credits_left")):
        return None
    try:
        credits = generator.credits_left()
    except GenerationError as error:
        log.warning("could not read the credits left (%s); going on", error)
        return None
    if credits is None:
        return None
    affordable = credits // max(config.credits_per_request, 1)
    log.info("%d credits left: enough for %d of %d requests", credits, min(affordable, n_submissions), n_submissions)
    if affordable == 0:
        return f"out of credits: {credits} left, a request costs {config.credits_per_request}"
    if affordable < n_submissions:
        log.warning("credits cover only %d of %d requests; then the batch stops", affordable, n_submissions)
    return None


@dataclass
class PlannedRequest:
    """One request of a run and what to do with it (`submit`, `collect` its stored job, or `skip`)."""

    index: int
    user_id: str
    slot: int
    action: str
    attempt: int
    job: dict | None

    @property
    def request_id(self) -> str:
        return f"{self.user_id}/{self.slot}"


def plan_requests(
    users: list[tuple[int, str]], states: dict[str, dict], config: GenerateConfig, slots: int
) -> list[PlannedRequest]:
    plan = []
    for index, user_id in users:
        for slot in range(slots):
            action = _action(states.get(f"{user_id}/{slot}"), config.retry_failed)
            plan.append(PlannedRequest(index, user_id, slot, *action))
    return plan


class PromptSource:
    """Each user's prompt, built once from the history; a request's copy carries its own seed."""

    def __init__(self, dataset: SongDataset, config: GenerateConfig):
        self.data, self.config = dataset.interactions, config
        self.limits = model_limits(config.generator.backend, config.generator.model_name())
        self.cache: dict[int, Prompt] = {}

    def __call__(self, request: PlannedRequest, state: dict | None) -> Prompt:
        if request.action == "collect":
            return Prompt.from_dict(state["prompt"])  # exactly what was submitted
        if request.index not in self.cache:
            profile = taste_profile(self.data, request.index, self.config.prompts)
            self.cache[request.index] = build_prompt(profile, self.config.prompts, self.limits, self.config.seed)
        seed = user_seed(self.config.seed, request.user_id, request.slot, request.attempt).generate_state(1)[0]
        return dataclasses.replace(self.cache[request.index], seed=int(seed))


def _usable_users(data, user_indices, fixed: list[str] | None) -> list[tuple[int, str]]:
    """(index, id) of the users to generate for: those with a history (and, for imports, songs in the file)."""
    users = [(int(i), data.user_ids[int(i)]) for i in user_indices]
    empty = [u for i, u in users if len(data.histories[i]) == 0]
    if empty:
        log.warning("%d user(s) without a training history are skipped: %s", len(empty), empty[:10])
    users = [(i, u) for i, u in users if len(data.histories[i]) > 0]
    if fixed is None:
        return users
    unknown = sorted(set(fixed) - set(data.user_ids))
    if unknown:
        log.warning("%d user(s) of the import are not in the dataset and are skipped: %s", len(unknown), unknown[:10])
    fixed = set(fixed)
    return [(i, u) for i, u in users if u in fixed]


def generate_for_users(dataset: SongDataset, user_indices, config: GenerateConfig, out: str | Path) -> GenerationRun:
    """Generate `config.songs_per_user` requests for each user (indices of `dataset.interactions`), resuming the
    run in `out`.

    Writes `out/manifest.jsonl` and `out/audio/`; returns every finished song of these users.
    """
    out = Path(out)
    with Manifest(out) as manifest:
        generator = build_generator(config.generator, out / AUDIO_DIR, seed=config.seed, dataset=dataset)
        fixed = generator.fixed_users()
        users = _usable_users(dataset.interactions, user_indices, fixed)
        manifest.append({
            "kind": "run", "backend": config.generator.backend, "model": config.generator.model_name(),
            "config": masked(config), "data_root": str(dataset.root),
            "users": [u for _, u in users],
        })
        states = request_states(manifest.records)
        # An import hands over all of a user's songs at once: one request per user.
        plan = plan_requests(users, states, config, slots=1 if fixed is not None else config.songs_per_user)
        stopped = _check_credits(generator, config.generator, sum(r.action == "submit" for r in plan))
        if not stopped:
            generator.prepare(sorted({r.user_id for r in plan if r.action == "submit"}))
        prompt_for = PromptSource(dataset, config)
        counts: Counter = Counter()
        for planned in tqdm(plan, desc="generate", unit="request"):
            if stopped:
                break
            state = states.get(planned.request_id)
            if planned.action == "skip":
                counts[f"skipped_{state['status']}"] += 1
                continue
            prompt = prompt_for(planned, state)
            request = {
                "kind": "request", "request_id": planned.request_id, "user_id": planned.user_id,
                "slot": planned.slot, "attempt": planned.attempt, "backend": generator.backend,
                "model": generator.model, "prompt": prompt.to_dict(),
            }
            status = run_request(generator, manifest, request, prompt, planned.job)
            counts[status] += 1
            stopped = STOP_REASONS.get(status)
        if stopped:
            log.warning("batch stopped: %s; finished songs are kept in %s, re-run to continue", stopped, manifest.path)
        songs = song_records(manifest.records, out, [u for _, u in users])
    log.info("%s: %d songs for %d users; this run: %s", out, len(songs), len(users), dict(counts))
    return GenerationRun(out=out, songs=songs, counts=dict(counts), stopped=stopped)
