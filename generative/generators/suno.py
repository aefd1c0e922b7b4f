"""Suno through the self-hosted suno-api HTTP wrapper (github.com/gcui-art/suno-api).

Protocol: `POST /api/custom_generate` (`prompt` = lyrics, `tags` = style, `title`,
`make_instrumental`, `model`, `wait_audio`) or `POST /api/generate` (description mode) returns
the new clips (normally 2); `GET /api/get?ids=a,b` reports each clip's `status` (submitted,
queued, streaming, complete, error; anything else counts as pending) and, once complete, its
`audio_url`; `GET /api/get_limit` gives `credits_left`. Errors are JSON `{"error": msg}` with a
4xx/5xx status; 402 means out of credits. Connection errors, timeouts, 429 and 5xx are retried by
urllib3 (`taste.http_session`); a POST is sent again only when it never reached the server (the
connection could not be made) or was answered 429/5xx: a submission is never paid twice. A 2xx answer
that is not JSON of the expected shape (a proxy's error page, say) is asked again when the call is a GET.

The cookie and key travel as request headers to the suno-api server only (never to the audio
CDN) and are kept out of every repr, log line and exception message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import soundfile as sf
from urllib3.exceptions import MaxRetryError

from generative.generators.base import (
    AsyncGenerator,
    GeneratedSong,
    GenerationError,
    OutOfCredits,
    TransientError,
    safe_name,
)
from generative.prompts import Prompt
from songdata.atomic_files import replace_atomically
from taste.http_session import RETRY_STATUSES, attempts_made, describe_error, retrying_session

log = logging.getLogger(__name__)

TERMINAL = ("complete", "error")
MAYBE_SUBMITTED = "the request may still have been submitted (check the Suno library before retrying)"


class SunoError(GenerationError):
    """The suno-api server refused or failed a call."""


class SunoUnavailable(SunoError, TransientError):
    """The server kept failing (5xx, 429, connection errors) through every retry."""


class BadAnswer(SunoError):
    """A 2xx answer that is not what the protocol says: not JSON, or JSON of another shape."""


class PollTimeout(TransientError):
    """A request's clips were not finished in time; they stay submitted and a re-run polls them again."""


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error") or body.get("detail") or body)[:200] if isinstance(body, dict) else str(body)[:200]


def _retries_ran_out(error: requests.RequestException) -> bool:
    """Whether urllib3 gave up retrying (rather than refusing to resend a request that was sent)."""
    return bool(error.args) and isinstance(error.args[0], MaxRetryError)


def _http_failure(method: str, path: str, response: requests.Response) -> str:
    """What went wrong with an HTTP error answer that was retried in vain; raises for the others."""
    message = _error_message(response)
    if response.status_code == 402:
        raise OutOfCredits(f"{method} {path}: out of Suno credits (402: {message})")
    if response.status_code not in RETRY_STATUSES:
        raise SunoError(f"{method} {path}: HTTP {response.status_code}: {message}")
    return f"HTTP {response.status_code}: {message}"


def parse_duration(value) -> float | None:
    """Seconds from suno-api's `duration`: a number, "m:ss", or missing."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    seconds = 0.0
    try:
        for part in str(value).split(":"):
            seconds = 60 * seconds + float(part)
    except ValueError:
        return None
    return seconds


class SunoClient:
    """A small client of suno-api: bounded retries with exponential backoff on 5xx, 429 and connection errors.

    Args:
        base_url: The suno-api server, e.g. http://localhost:3000.
        cookie: Sent as the `Cookie` header (suno-api reads the Suno cookie from it).
        api_key: Sent as `Authorization: Bearer ...` (for servers behind a key).
        timeout_s: Timeout of each HTTP call.
        max_retries: Retries after the first attempt (transport failures, and bad answers to a GET).
        backoff_s: Backoff factor (urllib3's: the first retry is immediate, then doubling).
    """

    def __init__(
        self,
        base_url: str,
        cookie: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 2.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._sessions = {  # idempotent call? -> a session that may (or may not) resend a sent request
            idempotent: retrying_session(max_retries, backoff_s, resend_after_send=idempotent)
            for idempotent in (True, False)
        }
        for session in self._sessions.values():
            session.trust_env = False  # no .netrc credentials or proxies picked up behind our back
        self._auth: dict[str, str] = {}
        if cookie:
            self._auth["Cookie"] = cookie
        if api_key:
            self._auth["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        secrets = ", ".join(f"{name}=***" for name in self._auth)
        return f"SunoClient(base_url={self.base_url!r}{', ' + secrets if secrets else ''})"

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _send(self, method: str, url: str, idempotent: bool, **kwargs) -> requests.Response:
        """One call through urllib3's retries: a 2xx/3xx response; raises OutOfCredits on 402, SunoUnavailable
        when retries ran out, SunoError on anything else (and when a POST may have reached the server)."""
        headers = self._auth if self._same_origin(url) else {}
        path = urlsplit(url).path
        try:
            response = self._sessions[idempotent].request(method, url, headers=headers, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as error:
            failure = describe_error(error)
            if not idempotent and not _retries_ran_out(error):  # sent, then unanswered: urllib3 did not resend it
                lost = f"no answer in {self.timeout_s} s" if failure == "timed out" else "connection lost before an answer"
                raise SunoError(f"{method} {path}: {lost}; {MAYBE_SUBMITTED}") from None
            raise SunoUnavailable(f"{method} {path}: {failure} after {self.max_retries + 1} attempts") from None
        if response.status_code >= 400:
            failure = _http_failure(method, path, response)
            raise SunoUnavailable(f"{method} {path}: {failure} after {attempts_made(response)} attempts")
        return response

    def _request(
        self, method: str, url: str, idempotent: bool, read: Callable[[requests.Response], Any] | None = None, **kwargs
    ) -> Any:
        """`_send`, then what `read` makes of the answer: a `BadAnswer` from it is asked again (a GET) up to
        `max_retries` times, or fails at once (a POST: it may have been submitted)."""
        path = urlsplit(url).path
        for attempt in range(self.max_retries + 1):
            response = self._send(method, url, idempotent, **kwargs)
            if read is None:
                return response
            try:
                return read(response)
            except BadAnswer as error:
                if not idempotent:
                    raise SunoError(f"{method} {path}: {error}; {MAYBE_SUBMITTED}") from None
                failure = str(error)
            if attempt < self.max_retries:
                delay = self.backoff_s * 2**attempt
                log.warning("%s %s: %s; retry %d/%d in %.2f s", method, path, failure, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise SunoUnavailable(f"{method} {path}: {failure} after {self.max_retries + 1} attempts")

    def _json(self, method: str, path: str, idempotent: bool, shape: Callable[[Any], Any] = lambda b: b, **kwargs):
        """The answer's JSON, passed through `shape` (which raises `BadAnswer` when it is not as expected)."""

        def read(response: requests.Response):
            try:
                body = response.json()
            except ValueError:
                raise BadAnswer(f"answer is not JSON: {response.text[:200]!r}") from None
            return shape(body)

        return self._request(method, self.base_url + path, idempotent, read, **kwargs)

    @staticmethod
    def _clips(body) -> list[dict]:
        clips = body.get("clips", body.get("data")) if isinstance(body, dict) else body
        if not isinstance(clips, list) or not all(isinstance(c, dict) and c.get("id") for c in clips):
            raise BadAnswer(f"expected a list of clips with ids, got {str(body)[:200]!r}")
        return clips

    def custom_generate(self, lyrics: str, tags: str, title: str, make_instrumental: bool, model: str) -> list[dict]:
        """Custom mode: lyrics, style and title; returns the new clips (status submitted)."""
        body = {
            "prompt": lyrics, "tags": tags, "title": title, "make_instrumental": make_instrumental,
            "model": model, "wait_audio": False,
        }
        return self._json("POST", "/api/custom_generate", False, self._clips, json=body)

    def generate(self, description: str, make_instrumental: bool, model: str) -> list[dict]:
        """Description mode: Suno writes lyrics and style from one description."""
        body = {"prompt": description, "make_instrumental": make_instrumental, "model": model, "wait_audio": False}
        return self._json("POST", "/api/generate", False, self._clips, json=body)

    def get(self, ids: list[str]) -> list[dict]:
        """The clips' current state."""
        return self._json("GET", "/api/get", True, self._clips, params={"ids": ",".join(ids)})

    def credits_left(self) -> int | None:
        """Credits left on the account (None when the server does not say)."""
        body = self._json("GET", "/api/get_limit", True)
        body = body.get("limit", body) if isinstance(body, dict) else {}
        value = body.get("credits_left") if isinstance(body, dict) else None
        return int(value) if value is not None else None

    def download(self, url: str, path: Path) -> Path:
        """Stream a clip's audio to `path`, replaced whole (a killed download's `.part` is reused)."""
        response = self._request("GET", url, True, stream=True)
        with response:
            replace_atomically(path, lambda f: f.writelines(response.iter_content(1 << 16)), sole_writer=True)
        return path


class SunoGenerator(AsyncGenerator):
    """Songs from Suno: submit a request (clip ids recorded), poll until every clip ends, download the audio.

    Args:
        client: The suno-api client.
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.<ext>`.
        model: Suno model, e.g. chirp-v4-5.
        mode: `custom` (lyrics + style + title) or `description`.
        poll_interval_s: Seconds between polls.
        poll_timeout_s: Give up waiting after this long (the clips stay submitted).
    """

    backend = "suno"

    def __init__(
        self,
        client: SunoClient,
        audio_dir: Path,
        model: str,
        mode: str = "custom",
        poll_interval_s: float = 5.0,
        poll_timeout_s: float = 900.0,
    ):
        if mode not in ("custom", "description"):
            raise ValueError(f"generator.mode: expected custom or description, got {mode!r}")
        self.client, self.audio_dir, self.model, self.mode = client, Path(audio_dir), model, mode
        self.poll_interval_s, self.poll_timeout_s = poll_interval_s, poll_timeout_s

    def __repr__(self) -> str:
        return f"SunoGenerator({self.client!r}, model={self.model!r}, mode={self.mode!r})"

    def credits_left(self) -> int | None:
        return self.client.credits_left()

    def submit(self, prompt: Prompt, user_id: str) -> dict:
        if self.mode == "custom":
            clips = self.client.custom_generate(
                prompt.lyrics or "", prompt.style, prompt.title, prompt.make_instrumental, self.model
            )
        else:
            clips = self.client.generate(prompt.description, prompt.make_instrumental, self.model)
        ids = [str(clip["id"]) for clip in clips]
        log.info("user %s: Suno request submitted, clips %s", user_id, ", ".join(ids))
        return {"clip_ids": ids, "mode": self.mode, "model": self.model}

    def wait(self, ids: list[str]) -> dict[str, dict]:
        """Poll until every clip is complete or error; raises PollTimeout past `poll_timeout_s`."""
        deadline = time.monotonic() + self.poll_timeout_s
        last: dict[str, str] = {}
        while True:
            clips = {str(c["id"]): c for c in self.client.get(ids)}
            status = {i: str(clips.get(i, {}).get("status", "missing")) for i in ids}
            if status != last:
                log.info("clips %s", ", ".join(f"{i}: {s}" for i, s in status.items()))
                last = status
            if all(s in TERMINAL for s in status.values()):
                return clips
            if time.monotonic() >= deadline:
                raise PollTimeout(f"clips {ids} not finished after {self.poll_timeout_s:.0f} s (last: {status})")
            time.sleep(self.poll_interval_s)

    def collect(self, job: dict, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        clips = self.wait(list(job["clip_ids"]))
        return [self._song(clips[i], user_id) for i in job["clip_ids"]]

    def _song(self, clip: dict, user_id: str) -> GeneratedSong:
        clip_id = str(clip["id"])
        scalar = (str, int, float, bool, type(None))
        keep = {k: v for k, v in clip.items() if k not in ("lyric", "prompt") and isinstance(v, scalar)}
        song = GeneratedSong(
            clip_id=clip_id, audio_path=None, title=str(clip.get("title") or ""), lyrics=str(clip.get("lyric") or ""),
            tags=str(clip.get("tags") or ""), model=str(clip.get("model_name") or self.model), backend=self.backend,
            duration_s=parse_duration(clip.get("duration")), metadata=keep,
        )
        if clip.get("status") != "complete" or not clip.get("audio_url"):
            song.status = "failed"
            song.error = str(clip.get("error_message") or f"clip ended with status {clip.get('status')!r}")
            return song
        suffix = Path(urlsplit(clip["audio_url"]).path).suffix or ".mp3"
        path = self.audio_dir / safe_name(user_id) / f"{safe_name(clip_id)}{suffix}"
        song.audio_path = self.client.download(clip["audio_url"], path)
        if song.duration_s is None:
            try:
                song.duration_s = float(sf.info(str(song.audio_path)).duration)
            except (RuntimeError, sf.LibsndfileError):
                log.warning("%s: cannot read its duration", song.audio_path)
        return song
