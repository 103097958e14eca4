"""``medlens doctor``: what is installed, which extras work, where caches live."""

from __future__ import annotations

import typer

from medlens.cli._common import console, emit_json


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Report the environment: Python, medlens, which extras import, data files and the cache folder.

    Example: medlens doctor --json
    """
    from medlens._doctor import doctor_report

    info = doctor_report()
    if as_json:
        emit_json(info)
        return
    c = console()
    c.print(f"medlens {info['medlens_version']} on Python {info['python']} ({info['platform']})", markup=False)
    c.print(f"cache: {info['cache']}", markup=False)
    for extra, st in info["extras"].items():
        c.print(f"  [{extra}] {'ok' if st['ok'] else 'missing ' + ', '.join(st['missing'])}", markup=False)
