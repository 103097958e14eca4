"""What a newcomer reads: help texts that Rich markup does not eat, and lists that wrap rather than cut."""

from __future__ import annotations

import re

import typer
from tests.cli.test_flag_names import _commands

from medlens.cli import app


def _help_texts():
    """(where, text) for every group's and command's help and every option's help."""

    def walk(cmd, name):
        yield name or "medlens", cmd.help or ""
        for p in cmd.params:
            if getattr(p, "help", None):
                yield f"{name} {'/'.join(p.opts)}", p.help
        for sub_name, sub in (getattr(cmd, "commands", None) or {}).items():
            yield from walk(sub, f"{name} {sub_name}".strip())

    yield from walk(typer.main.get_command(app), "")


def test_rich_markup_eats_nothing_in_help():
    """Typer renders help as Rich markup: ``{node: [prompts]}`` printed as ``{node: }``. Square brackets that
    Rich would read as a tag are escaped (``\\[``) and every help text renders to its own words."""
    from rich.text import Text

    bad = []
    for where, text in _help_texts():
        plain = Text.from_markup(text).plain
        if plain != text.replace("\\[", "["):
            bad.append((where, text[:80]))
    assert not bad, bad
    assert len(list(_help_texts())) > 300


def test_bracketed_help_reaches_the_terminal(cli):
    res = cli("hier", "zeroshot", "--help")
    assert res.rc == 0
    assert "{node: [prompts]}" in " ".join(res.out.replace("│", " ").split())
    res = cli("ground", "kb", "show", "--help")
    assert "medlens[data]" in res.out


def test_every_command_help_has_an_example():
    missing = [name for name, cmd in _commands().items() if not re.search(r"Examples?:", cmd.help or "")]
    assert not missing, missing


def test_encoders_list_prints_hub_ids_whole(cli, monkeypatch, tmp_path):
    """The hub id is what users copy: it is printed whole on a line of its own, whatever the terminal width."""
    from medlens.cli._encoders import encoders_lines
    from medlens.encoders import encoders_list_document

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("COLUMNS", "80")
    doc = encoders_list_document()
    lines = encoders_lines(doc)
    assert all(len(line) <= 80 for line in lines[1:3])  # the header fits 80 columns
    for r in doc["encoders"]:
        assert f"    {r['source']}" in lines
        assert lines[lines.index(f"    {r['source']}") - 1].split()[0] == r["name"]
    res = cli("encoders", "list")
    assert res.rc == 0, res.err
    out = res.out.splitlines()
    for r in doc["encoders"]:
        assert f"    {r['source']}" in out, r["source"]
    assert "…" not in res.out
