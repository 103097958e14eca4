"""One name per concept on the CLI (ARCHITECTURE.md's table): walk every command and refuse a second spelling.

The LLM options: ``--model-path`` local weights, ``--model`` only as the model name of an ``--llm-url`` server,
``--device`` for where a local model runs, and ``--allow-remote`` on every command that can call an endpoint.
"""

from __future__ import annotations

from typing import Any

import typer

from medlens.cli import app

SECOND_SPELLINGS = {
    "--llm-path": "--model-path",
    "--llm-device": "--device",
    "--model-dir": "--model-path",
}


def _commands() -> dict[str, Any]:
    """Every leaf command by its full name (``rag benchmark nova``); typer may vendor its own click, so the walk
    goes by attributes rather than click's classes."""
    out: dict[str, Any] = {}

    def walk(cmd: Any, name: str) -> None:
        if getattr(cmd, "commands", None) is not None:
            for sub_name, sub in cmd.commands.items():
                walk(sub, f"{name} {sub_name}".strip())
        else:
            out[name] = cmd

    walk(typer.main.get_command(app), "")
    return out


def _flags(cmd: Any) -> set[str]:
    return {opt for p in cmd.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}


def test_the_walk_sees_the_llm_commands():
    names = set(_commands())
    assert {"nova run", "nova evaluate", "rag diagnose", "rag benchmark nova", "hier score"} <= names


def test_no_second_spelling():
    bad = {
        f"{name} {flag} (use {SECOND_SPELLINGS[flag]})"
        for name, cmd in _commands().items()
        for flag in _flags(cmd) & set(SECOND_SPELLINGS)
    }
    assert not bad, sorted(bad)


def test_model_names_a_server_model_only():
    """``--model NAME`` goes with ``--llm-url``; local weights are ``--model-path`` (e.g. ``hier score``)."""
    bad = [name for name, cmd in _commands().items() if "--model" in _flags(cmd) and "--llm-url" not in _flags(cmd)]
    assert not bad, bad
    assert "--model-path" in _flags(_commands()["hier score"])


def test_every_endpoint_command_has_allow_remote():
    bad = [
        name for name, cmd in _commands().items() if "--llm-url" in _flags(cmd) and "--allow-remote" not in _flags(cmd)
    ]
    assert not bad, bad
