"""A local stand-in for the self-hosted suno-api HTTP wrapper (gcui-art/suno-api), for tests.

`with FakeSuno() as suno:` serves on 127.0.0.1 (an ephemeral port) in a thread:
`POST /api/custom_generate` and `POST /api/generate` make 2 clips each (costing `cost` credits,
402 when too few are left), `GET /api/get?ids=` moves every asked-for clip one step along
`statuses` per poll (an unknown status, "preparing", is among them), `GET /api/get_limit` gives
`credits_left`, `GET /audio/<id>.wav` serves a short 16 kHz wav. Knobs: `error_clips` (which
clips, by creation number from 1, end as "error"), `fail` (status codes the next calls of an
endpoint answer with), `garble` (bodies, answered with 200, that replace the next answers of an
endpoint after the call took effect: a submission is accepted and paid for), `slow` (seconds the
next calls of an endpoint wait, after taking effect, before answering), `hang_up` (how many of the
next calls of an endpoint close the connection unanswered, after taking effect), `down` (every call answers 500),
`stall` (clips never finish), and `down_after_submits` / `stall_after_submits` (the server goes down /
stalls after that many accepted submissions).
`counts` holds the calls per endpoint, `accepted` the body of every accepted submission,
`audio_with_credentials` the audio downloads that carried a cookie or key.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soundfile as sf

STATUSES = ("queued", "preparing", "streaming", "complete")


def small_wav(seconds: float = 0.5, sample_rate: int = 16_000) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class FakeSuno:
    """The fake server and its state (see the module docstring)."""

    def __init__(
        self,
        cookie: str | None = None,
        api_key: str | None = None,
        credits: int = 1000,
        cost: int = 10,
        statuses: tuple[str, ...] = STATUSES,
        error_clips: set[int] | None = None,
        max_requests: int = 2000,
    ):
        self.cookie, self.api_key = cookie, api_key
        self.credits, self.cost, self.statuses = credits, cost, statuses
        self.error_clips = set(error_clips or ())
        self.max_requests = max_requests
        self.fail: dict[str, list[int]] = defaultdict(list)
        self.garble: dict[str, list[object]] = defaultdict(list)
        self.slow: dict[str, list[float]] = defaultdict(list)
        self.hang_up: Counter = Counter()
        self.down = self.stall = False
        self.down_after_submits: int | None = None
        self.stall_after_submits: int | None = None
        self.counts: Counter = Counter()
        self.audio_with_credentials = 0  # audio downloads that carried a Cookie or Authorization header
        self.accepted: list[dict] = []
        self.clips: dict[str, dict] = {}
        self.polls: Counter = Counter()
        self.wav = small_wav()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeSuno:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # ---- behaviour ----------------------------------------------------------------------------
    def authorised(self, headers) -> bool:
        if self.cookie is not None and headers.get("Cookie") != self.cookie:
            return False
        return self.api_key is None or headers.get("Authorization") == f"Bearer {self.api_key}"

    def submit(self, endpoint: str, body: dict) -> tuple[int, object]:
        if self.credits < self.cost:
            return 402, {"error": "Insufficient credits."}
        self.credits -= self.cost
        self.accepted.append({"endpoint": endpoint, **body})
        if self.down_after_submits is not None and len(self.accepted) >= self.down_after_submits:
            self.down = True
        if self.stall_after_submits is not None and len(self.accepted) >= self.stall_after_submits:
            self.stall = True
        clips = []
        for _ in range(2):
            number = len(self.clips) + 1
            clip = {
                "id": f"clip-{number:04d}", "title": body.get("title", "Suno title"), "image_url": "",
                "lyric": body.get("prompt", "") if endpoint == "custom_generate" else "written by suno",
                "audio_url": "", "video_url": "", "created_at": "2025-01-01T00:00:00Z",
                "model_name": body.get("model") or "chirp-v3-5", "status": "submitted",
                "gpt_description_prompt": body.get("prompt", "") if endpoint == "generate" else "",
                "prompt": body.get("prompt", ""), "type": "gen", "tags": body.get("tags", "pop"), "duration": None,
                "_number": number,
            }
            self.clips[clip["id"]] = clip
            clips.append(self.public(clip))
        return 200, clips

    def public(self, clip: dict) -> dict:
        return {k: v for k, v in clip.items() if not k.startswith("_")}

    def poll(self, ids: list[str]) -> list[dict]:
        answer = []
        for clip_id in ids:
            clip = self.clips.get(clip_id)
            if clip is None:
                continue
            if not self.stall and clip["status"] not in ("complete", "error"):
                self.polls[clip_id] += 1
                status = self.statuses[min(self.polls[clip_id], len(self.statuses)) - 1]
                if status == "complete" and clip["_number"] in self.error_clips:
                    clip.update(status="error", error_message="Unable to generate this song.")
                else:
                    clip["status"] = status
                if clip["status"] == "streaming":
                    clip["audio_url"] = f"{self.url}/stream/{clip_id}"
                if clip["status"] == "complete":
                    clip.update(audio_url=f"{self.url}/audio/{clip_id}.wav", duration=0.5)
            answer.append(self.public(clip))
        return answer

    def handle(self, method: str, path: str, query: dict, headers, body: dict) -> tuple[int, object]:
        endpoint = endpoint_of(path)
        status, payload = self._answer(method, endpoint, path, query, headers, body)
        with self.lock:
            if status == 200 and self.garble[endpoint]:
                return 200, self.garble[endpoint].pop(0)
        return status, payload

    def delay(self, endpoint: str) -> float:
        with self.lock:
            return self.slow[endpoint].pop(0) if self.slow[endpoint] else 0.0

    def hangs_up(self, endpoint: str) -> bool:
        with self.lock:
            if self.hang_up[endpoint] <= 0:
                return False
            self.hang_up[endpoint] -= 1
            return True

    def _answer(self, method: str, endpoint: str, path: str, query: dict, headers, body: dict) -> tuple[int, object]:
        with self.lock:
            self.counts[endpoint] += 1
            if sum(self.counts.values()) > self.max_requests:
                return 503, {"error": "test server: too many requests"}
            if self.down:
                return 500, {"error": "Internal server error"}
            if self.fail[endpoint]:
                return self.fail[endpoint].pop(0), {"error": "scripted failure"}
            if endpoint == "audio":
                self.audio_with_credentials += bool(headers.get("Cookie") or headers.get("Authorization"))
                return 200, self.wav
            if not self.authorised(headers):
                return 401, {"error": "Unauthorized"}
            if method == "POST" and endpoint in ("custom_generate", "generate"):
                return self.submit(endpoint, body)
            if method == "GET" and endpoint == "get":
                return 200, self.poll([i for i in query.get("ids", [""])[0].split(",") if i])
            if method == "GET" and endpoint == "get_limit":
                return 200, {"credits_left": self.credits, "period": "day", "monthly_limit": 50, "monthly_usage": 0}
        return 404, {"error": f"no route {method} {path}"}


def endpoint_of(path: str) -> str:
    return path.rsplit("/", 1)[-1] if path.startswith("/api/") else path.split("/")[1]


def _handler(fake: FakeSuno) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = {}
            status, payload = fake.handle(method, url.path, parse_qs(url.query), self.headers, body)
            endpoint = endpoint_of(url.path)
            delay = fake.delay(endpoint)
            if delay:  # not time.sleep: tests patch it to interrupt the client's polling
                threading.Event().wait(delay)
            if fake.hangs_up(endpoint):
                self.close_connection = True
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            kind = "audio/wav" if endpoint == "audio" else "text/html"
            kind = kind if isinstance(payload, bytes) else "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args) -> None:
            pass

    return Handler
