"""A scripted OpenAI Chat Completions server for tests, on 127.0.0.1 and an ephemeral port.

    with ChatServer([Reply(429, headers={"Retry-After": "1"}), Reply(content='{"overall": 7, ...}')]) as server:
        backend = OpenAIChatBackend("test-model", base_url=server.base_url)

Replies are served in order (the last one repeats); every request is recorded with its headers
and JSON body. `reject_formats` answers 400, as vLLM or an older server would, to any request
whose response_format type is listed, before consuming a reply.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """One scripted answer: an assistant message (`content`) or a raw `body`, after `delay_s`."""

    status: int = 200
    content: str | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def payload(self, model: str) -> bytes:
        if self.body is not None:
            return self.body.encode()
        if self.status != 200:
            return json.dumps({"error": {"message": f"scripted error {self.status}", "type": "server_error"}}).encode()
        message = {"role": "assistant", "content": self.content}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        completion = {"id": "chatcmpl-test", "object": "chat.completion", "model": model, "choices": [choice]}
        return json.dumps(completion).encode()


class ChatServer:
    def __init__(self, replies: list[Reply], reject_formats: tuple[str, ...] = ()) -> None:
        if not replies:
            raise ValueError("ChatServer needs at least one reply")
        self.replies = list(replies)
        self.reject_formats = set(reject_formats)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, payload: dict) -> Reply:
        with self._lock:
            self.requests.append(payload)
            kind = (payload["json"].get("response_format") or {}).get("type")
            if kind in self.reject_formats:
                message = f"response_format type '{kind}' is not supported by this server"
                error = {"message": message, "type": "invalid_request_error", "param": "response_format"}
                body = json.dumps({"error": error})
                return Reply(400, body=body)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                reply = server._next({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                time.sleep(reply.delay_s)
                data = reply.payload(server._model(body))
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        return Handler

    @staticmethod
    def _model(body: bytes) -> str:
        return str(json.loads(body).get("model", "test-model"))
