"""``medlens doctor``: what is installed, which extras work, what the cache holds, GPU and WordNet."""

from __future__ import annotations

from typing import Any

import typer

from medlens.cli._common import console, emit_json

# every key of the report -> how the text output shows it (a test checks that none is left out)
SHOWN = (
    "schema_version",
    "provenance",
    "medlens_version",
    "python",
    "platform",
    "cache",
    "llm_api_key_set",
    "extras",
    "data",
    "cache_contents",
    "gpu",
    "wordnet",
)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _age(days: float) -> str:
    if days < 1 / 24:
        return f"{days * 1440:.0f} min old"
    if days < 2:
        return f"{days * 24:.1f} h old"
    return f"{days:.0f} days old"


def doctor_lines(info: dict[str, Any]) -> list[str]:
    """The text of ``medlens doctor``: every field of the JSON document, one topic per block."""
    prov = info["provenance"]
    lines = [
        f"medlens {info['medlens_version']} on Python {info['python']} ({info['platform']})",
        f"report: schema {info['schema_version']}, config hash {prov['config_hash'][:12]}",
        f"LLM API key ($MEDLENS_LLM_API_KEY or $OPENAI_API_KEY): {'set' if info['llm_api_key_set'] else 'not set'}",
        "extras:",
    ]
    for extra, st in info["extras"].items():
        lines.append(f"  [{extra}] {'ok' if st['ok'] else 'missing ' + ', '.join(st['missing'])}")
    lines.append("data files: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["data"].items()))
    gpu = info["gpu"]
    if gpu["torch"] is None:
        lines.append(f"GPU: {gpu['note']}")
    else:
        seen = ", ".join(gpu["devices"]) if gpu["cuda_available"] else "none"
        cuda = f"CUDA {gpu['cuda_version']}" if gpu["cuda_version"] else "CPU-only build"
        lines.append(
            f"GPU: torch {gpu['torch']} ({cuda}); CUDA devices: {seen}; "
            f"MPS: {'yes' if gpu['mps_available'] else 'no'}" + (f" ({gpu['note']})" if gpu["note"] else "")
        )
    if "wordnet" in info:
        wn = info["wordnet"]
        if wn["path"]:
            lines.append(f"WordNet (METEOR): {wn['path']} (from {wn['origin']}; lexnames: {wn['lexnames']})")
        else:
            lines.append(f"WordNet (METEOR): not found. {wn['skip_reason']}")
    cc = info["cache_contents"]
    lines.append(f"cache: {info['cache']} ($MEDLENS_CACHE)" + ("" if cc["exists"] else " (not created yet)"))
    if cc["exists"]:
        lines[-1] += f", {_size(cc['bytes'])} in all"
    lines += [f"  unreadable: {u}" for u in cc.get("unreadable", [])]
    for g in cc["groups"]:
        lines.append(f"  {g['name']}/: {g['what']}; {len(g['items'])} item(s), {_size(g['bytes'])}")
        lines += [f"    {i['name']}  {_size(i['bytes'])}, {_age(i['age_days'])}" for i in g["items"]]
    return lines


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Report the environment: Python, medlens, which extras import, data files, GPU, WordNet, and what the cache
    holds (indexes, embeddings, converted checkpoints: size and age).

    Example: medlens doctor --json
    """
    from medlens._doctor import doctor_report
    from medlens.metrics import wordnet_status

    info = doctor_report(probes={"wordnet": wordnet_status})
    if as_json:
        emit_json(info)
        return
    c = console()
    for line in doctor_lines(info):
        c.print(line, markup=False, highlight=False)
