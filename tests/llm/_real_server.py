"""A real OpenAI-compatible server on 127.0.0.1: ``transformers serve`` (transformers' own server) in a subprocess.

It serves a transformers folder (the SmolLM2 GGUF converted once by :func:`medlens.llm.gguf_folder`, the same
weights the in-process client runs), offline (``HF_HUB_OFFLINE=1``, no update check). ``transformers serve``
needs fastapi, uvicorn, pydantic and openai (medlens' ``dev`` extra); without them, or when the server does not
answer in time, :func:`start_transformers_serve` raises :class:`ServerUnavailable` with the reason, which the
fixtures turn into a skip that names it. Used by ``tests/llm/test_smollm2.py`` and ``perf/llm_robustness.py``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVE_DEPS = ("fastapi", "uvicorn", "pydantic", "openai")


class ServerUnavailable(RuntimeError):
    """Why ``transformers serve`` could not be started here."""


class TransformersServe:
    """A running ``transformers serve`` process: ``base_url``, ``model`` (the name requests use), ``close()``."""

    def __init__(self, proc: subprocess.Popen, base_url: str, model: str, log: Path) -> None:
        self.proc, self.base_url, self.model, self.log = proc, base_url, model, log

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 600) -> str:
    try:
        return " ".join(path.read_text(encoding="utf-8", errors="replace")[-n:].split())
    except OSError:
        return ""


def start_transformers_serve(folder: str | os.PathLike, log: Path, *, timeout: float = 300.0) -> TransformersServe:
    """Start ``transformers serve FOLDER`` on a free loopback port and wait until a chat completion answers."""
    missing = [m for m in SERVE_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        raise ServerUnavailable(
            f"transformers serve needs {', '.join(missing)} (pip install 'medlens[dev]'), which are not installed"
        )
    if importlib.util.find_spec("transformers.cli.serve") is None:
        raise ServerUnavailable("this transformers version has no `transformers serve` (transformers.cli.serve)")
    import httpx

    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    model = str(Path(folder).resolve())
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", model]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    cmd += ["--log-level", "warning"]
    fh = open(log, "wb")  # noqa: SIM115 - the process writes to it until it is closed
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    fh.close()
    base = f"http://127.0.0.1:{port}/v1"
    probe = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=60) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerUnavailable(f"transformers serve exited with code {proc.returncode}: {_tail(log)}")
            try:
                if http.post(f"{base}/chat/completions", json=probe).status_code == 200:
                    return TransformersServe(proc, base, model, log)
            except httpx.TransportError:
                pass
            time.sleep(1.0)
    TransformersServe(proc, base, model, log).close()
    raise ServerUnavailable(f"transformers serve did not answer within {timeout:.0f} s: {_tail(log)}")
