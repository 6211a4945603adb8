"""A real OpenAI-compatible HTTP server on 127.0.0.1, scriptable per test.

It answers ``POST /v1/chat/completions`` in OpenAI's response shape and can be
told to fail a number of times, to fail for given prompts, to be slow, or to
demand a key. It records every request (body and Authorization header) so
tests can assert what the official client really sent over the wire.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from tests.helpers import free_port


@dataclass
class Script:
    """What the fake endpoint does next; tests change it, the handler obeys it."""

    fail_next: list[int] = field(default_factory=list)  # statuses to answer, in order
    fail_prompts: dict[str, int] = field(default_factory=dict)  # prompt -> status, always
    delay: float = 0.0  # seconds before answering
    expected_key: Optional[str] = None  # 401 unless "Bearer <key>"
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.fail_next.clear()
            self.fail_prompts.clear()
            self.delay = 0.0
            self.expected_key = None
            self.requests.clear()

    def bodies(self, prompt: Optional[str] = None) -> list[dict[str, Any]]:
        """Recorded request bodies, optionally only those whose last message is ``prompt``."""
        with self.lock:
            recorded = [r["body"] for r in self.requests]
        if prompt is None:
            return recorded
        return [b for b in recorded if b["messages"][-1]["content"] == prompt]


def _error(status: int, message: str) -> dict[str, Any]:
    kind = {401: "invalid_request_error", 500: "server_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


class FakeOpenAI:
    """The running server: its base URL (``.../v1``) and its script."""

    def __init__(self) -> None:
        self.script = Script()
        script = self.script

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                auth = self.headers.get("Authorization")
                with script.lock:
                    script.requests.append({"path": self.path, "body": body, "auth": auth})
                    status = script.fail_next.pop(0) if script.fail_next else None
                    delay = script.delay
                    expected = script.expected_key
                    prompt_status = script.fail_prompts.get(body["messages"][-1]["content"])
                if self.path != "/v1/chat/completions":
                    self._send(404, _error(404, f"no route {self.path}"))
                    return
                if delay:
                    time.sleep(delay)
                if expected is not None and auth != f"Bearer {expected}":
                    self._send(401, _error(401, "Incorrect API key provided"))
                    return
                status = status or prompt_status
                if status:
                    self._send(status, _error(status, f"scripted failure {status}"))
                    return
                last = body["messages"][-1]["content"]
                content = f"echo: {last}"
                max_tokens = body.get("max_tokens")
                finish = "stop"
                if max_tokens is not None and len(content.split()) > max_tokens:
                    content = " ".join(content.split()[:max_tokens])
                    finish = "length"
                prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
                completion_tokens = len(content.split())
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(script.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": finish,
                                "logprobs": None,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    },
                )

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Registered:
    """A chat model registered once for the session, and everything tests need about it."""

    store: Any
    project: Path
    name: str
    version: str
    key: str
    tags: dict[str, str]
    requests_during_save: int
