"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 and small helpers for the LLM tests."""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(text: str, *, model: str = "tiny-chat", finish_reason: str = "stop", usage: dict | None = None) -> dict:
    """An OpenAI chat-completion body."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def reply(text: str, **kw: Any) -> dict:
    """A scripted action: HTTP 200 with a completion whose content is ``text``."""
    return {"status": 200, "json": completion(text, **kw)}


def error(status: int, message: str, headers: dict | None = None) -> dict:
    """A scripted action: an OpenAI-style error body."""
    return {"status": status, "json": {"error": {"message": message, "type": "test_error"}}, "headers": headers or {}}


def _last_user_text(body: Any) -> str:
    try:
        msg = [m for m in body["messages"] if m["role"] == "user"][-1]
    except (KeyError, IndexError, TypeError):
        return ""
    content = msg["content"]
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return content


class ScriptedServer:
    """Answers POSTs with scripted actions (then, when the script is empty, echoes the last user message).

    An action is a dict with ``status`` plus ``json`` (a body to serialise) or ``body`` (raw bytes), optional
    ``headers``, ``content_type`` and ``delay`` (seconds before answering), or ``{"drop": True}`` to close
    the connection without any answer.
    """

    def __init__(self) -> None:
        self.script: collections.deque = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    action = server.script.popleft() if server.script else None
                if action is None:
                    action = reply(f"echo: {_last_user_text(body)}")
                time.sleep(action.get("delay", 0))
                if action.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if "json" in action:
                    payload, ctype = json.dumps(action["json"]).encode(), "application/json"
                else:
                    payload, ctype = action.get("body", b""), action.get("content_type", "text/plain")
                try:
                    self.send_response(action.get("status", 200))
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in action.get("headers", {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *actions: dict) -> None:
        with self.lock:
            self.script.extend(actions)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_png(color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (2, 2)) -> bytes:
    """A real PNG file's bytes (PIL)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()
