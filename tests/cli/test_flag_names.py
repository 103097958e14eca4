"""One name per concept on the CLI (ARCHITECTURE.md's table): walk every command and fail on a second spelling.

- ``--top-k`` is the only spelling of a number of hits and ``--branch-depth``/``-k`` the only spelling of the CAE
  branch depth, each bound to the parameter name the library uses (``top_k``, ``branch_depth``);
  ``--batch-size`` the only spelling of a batch size.
- The LLM options: ``--model-path`` local weights, ``--model`` only as the model name of an ``--llm-url`` server,
  ``--device`` for where a local model runs, and ``--allow-remote`` on every command that can call an endpoint.
- Every long flag is lower-case and hyphenated.
"""

from __future__ import annotations

import re
from typing import Any

import typer

from medlens.cli import app

# a spelling that must not appear -> the one name to use instead
SECOND_SPELLINGS = {
    "--k": "--top-k (hits) or --branch-depth/-k (CAE branch depth)",
    "--topk": "--top-k",
    "--top": "--top-k",
    "--n-hits": "--top-k",
    "--hits": "--top-k",
    "--depth": "--branch-depth",
    "--branch": "--branch-depth",
    "--branch-k": "--branch-depth",
    "--cae-depth": "--branch-depth",
    "--batch": "--batch-size",
    "--bs": "--batch-size",
    "--llm-path": "--model-path",
    "--llm-device": "--device",
    "--model-dir": "--model-path",
    "--n-bootstrap": "--bootstrap",
    "--output": "--out",
    "-o": "--out",
    "--n-views": "--views",
    "--num-views": "--views",
    "--fov": "--fov-mm",
    "--slice-spacing": "--spacing-mm",
    "--image-size": "--size",
    "--num-workers": "--workers",
    "--concurrency": "--workers",
    "--ray-workers": "--workers",
    "--bertscore-model": "--encoder",
    "--address": "--ray-address",
    "--ray-url": "--ray-address",
    "--backend-executor": "--executor",
    # the text encoder and the cosine cutoff of embedding matching
    "--embedder": "--encoder",
    "--text-encoder": "--encoder",
    "--embedding-model": "--encoder",
    "--min-similarity": "--embedding-threshold",
    "--similarity-threshold": "--embedding-threshold",
    "--cosine-threshold": "--embedding-threshold",
    "--guidance-scale": "--scale",
    "--gradient-scale": "--scale",
    "--classifier-scale": "--scale",
    "--guidance-weight": "--weight",
    "--cfg-weight": "--weight",
    "--guidance": "--scale (classifier guidance) or --weight (classifier-free guidance)",
    "--unet-config": "--unet",
    "--arch": "--unet",
    "--feature-extractor": "--perceptual",
    "--extractor": "--perceptual",
    # the epoch-selection criterion of a training command (``ground train``)
    "--select-on": "--select",
    "--selection": "--select",
    "--monitor": "--select",
    "--criterion": "--select",
}
# the one-name flags of this table and the library parameter each is bound to
CANONICAL = {
    "--top-k": "top_k",
    "--branch-depth": "branch_depth",
    "--batch-size": "batch_size",
    # volume slicing (``medlens slice``; the multiview commands reuse them)
    "--views": "views",
    "--size": "size",
    "--fov-mm": "fov_mm",
    "--offset": "offset",
    "--stack": "stack",
    "--spacing-mm": "spacing_mm",
    "--backend": "backend",
    "--mask": "mask",
    # executors (``medlens.executors``) on the bulk commands
    "--executor": "executor",
    "--ray-address": "ray_address",
    "--workers": "workers",
    # diffusion anomaly localisation (``medlens anomaly``)
    "--scale": "scale",
    "--weight": "weight",
    "--unet": "unet",
    "--perceptual": "perceptual",
    "--select": "select",
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


def _options():
    for path, cmd in _commands().items():
        for p in cmd.params:
            if getattr(p, "param_type_name", None) == "option":
                yield path, p


def _flags(cmd: Any) -> set[str]:
    return {opt for p in cmd.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}


def test_the_walk_sees_every_command_group():
    paths = set(_commands())
    assert {"hier evaluate", "hier calibrate", "rag search", "nova evaluate", "demo", "bench run"} <= paths
    assert {"nova run", "rag diagnose", "rag benchmark nova", "hier score"} <= paths
    assert len(paths) >= 15


def test_no_second_spelling():
    bad = [
        f"{path}: {flag} (use {SECOND_SPELLINGS[flag]})"
        for path, opt in _options()
        for flag in [*opt.opts, *opt.secondary_opts]
        if flag in SECOND_SPELLINGS
    ]
    assert not bad, bad


def test_one_name_flags_bind_the_library_parameter_name():
    seen = set()
    for path, opt in _options():
        for flag, param in CANONICAL.items():
            if flag in opt.opts:
                seen.add(flag)
                assert opt.name == param, (path, flag, opt.name)
        if "-k" in opt.opts:
            assert "--branch-depth" in opt.opts, (path, opt.opts)  # -k is only ever the branch depth
        if "--branch-depth" in opt.opts:
            assert "-k" in opt.opts, (path, opt.opts)
    assert seen == set(CANONICAL)


def test_long_flags_are_lower_case_and_hyphenated():
    bad = [
        (path, flag)
        for path, opt in _options()
        for flag in [*opt.opts, *opt.secondary_opts]
        if flag.startswith("--") and not re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", flag)
    ]
    assert not bad, bad


def test_model_names_a_server_model_only():
    """``--model NAME`` goes with ``--llm-url``; local weights are ``--model-path`` (e.g. ``hier score``)."""
    commands = _commands()
    bad = [name for name, cmd in commands.items() if "--model" in _flags(cmd) and "--llm-url" not in _flags(cmd)]
    assert not bad, bad
    assert "--model-path" in _flags(commands["hier score"])


def test_every_endpoint_command_has_allow_remote():
    bad = [
        name for name, cmd in _commands().items() if "--llm-url" in _flags(cmd) and "--allow-remote" not in _flags(cmd)
    ]
    assert not bad, bad


def test_retriever_accepts_the_same_set_everywhere():
    """``--retriever`` is one option wherever it appears: the same help (the accepted set) and default."""
    seen = {(opt.help, opt.default) for _path, opt in _options() if "--retriever" in opt.opts}
    assert len(seen) == 1, seen
    assert sum("--retriever" in opt.opts for _path, opt in _options()) >= 4
