"""One name per concept on the CLI (ARCHITECTURE.md): walk every command and fail on a second spelling.

The table's hits and branch depth are checked in full: ``--top-k`` is the only spelling of a number of hits
and ``--branch-depth``/``-k`` the only spelling of the CAE branch depth, each bound to the parameter name the
library uses (``top_k``, ``branch_depth``). Every long flag is lower-case and hyphenated.
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
}
# the one-name flags of this table and the library parameter each is bound to
CANONICAL = {"--top-k": "top_k", "--branch-depth": "branch_depth"}


def _commands(cmd: Any, path: tuple[str, ...] = ()):
    # typer may ship its own copy of click: recognise groups and options by their attributes
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


def _options():
    root = typer.main.get_command(app)
    for path, cmd in _commands(root):
        for p in cmd.params:
            if getattr(p, "param_type_name", None) == "option":
                yield path, p


def test_the_walk_sees_every_command_group():
    paths = {path for path, _ in _commands(typer.main.get_command(app))}
    assert {"hier evaluate", "hier calibrate", "rag search", "nova evaluate", "demo"} <= paths
    assert len(paths) >= 15


def test_no_second_spelling_of_hits_or_branch_depth():
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
