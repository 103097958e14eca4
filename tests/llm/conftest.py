"""Fixtures for the LLM layer: an isolated cache, no API keys from the developer's shell, and a scripted
OpenAI-compatible HTTP server on 127.0.0.1 (see ``_server.py``)."""

from __future__ import annotations

import pytest
from tests.llm._server import ScriptedServer


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Cache under the test's tmp folder; no API key leaks in from the developer's environment."""
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "medlens-cache"))
    for var in ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def llm_server():
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()
