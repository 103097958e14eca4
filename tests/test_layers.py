"""The package graph: layers that only point down, no cycles, and public names between packages.

Every import in ``src/medlens`` is read from the AST (function-level imports included, since a lazy import is
still a dependency). A package may import the shared core (``medlens._*`` modules) and packages of strictly
lower layers, always through their public names (``medlens.io``, never ``medlens.io._atomic``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "medlens"

# Lowest first. A package may import only from layers below its own; the core modules (``medlens._x.py``)
# sit below every package and import no package.
LAYERS: list[set[str]] = [
    {"io", "taxonomy", "text", "executors"},
    {"encoders", "llm", "report", "training", "slicing"},
    {"hierarchy", "retrieval", "metrics"},
    {"risk", "agents", "stitching", "diffusion", "grounding", "multiview", "fairness"},
    {"benchmarks"},
    {"cli"},
]
LEVEL = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
CORE = -1


def _unit(path: Path) -> str:
    """The package a file belongs to (``io``), or ``_name`` for a core module ``medlens/_name.py``."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """Absolute ``medlens.…`` module names imported by ``path`` (relative imports resolved), with line numbers."""
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, filename=str(path))
    pkg_parts = ["medlens", *path.relative_to(SRC).parts[:-1]]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            # ``from medlens import io`` / ``from medlens.io import _atomic`` import modules by name
            out += [
                (f"{mod}.{a.name}", node.lineno)
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__") and mod
            ]
    return [(m, line) for m, line in out if m == "medlens" or m.startswith("medlens.")]


def _edges() -> list[tuple[str, str, str, int, str]]:
    """(importer unit, imported unit, file, line, module) for every import of another unit."""
    edges = []
    for f in sorted(SRC.rglob("*.py")):
        src = _unit(f)
        for mod, line in _imports(f):
            parts = mod.split(".")
            if len(parts) < 2:
                continue
            dst = parts[1]
            if dst != src:
                edges.append((src, dst, str(f.relative_to(SRC.parent)), line, mod))
    return edges


def _level(unit: str) -> int:
    if unit.startswith("_"):
        return CORE
    return LEVEL[unit]


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LEVEL), "add the new package to LAYERS in tests/test_layers.py"


def test_layers_only_point_down():
    upward = []
    for src, dst, f, line, mod in _edges():
        if src == "__main__":
            continue
        if not (src.startswith("_") and dst.startswith("_")) and _level(dst) >= _level(src):
            upward.append(f"{f}:{line} {src} (layer {_level(src)}) imports {mod} (layer {_level(dst)})")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for src, dst, *_ in _edges():
        graph.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str) -> bool:
        seen, stack = set(), [a]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt == b:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    cyclic = sorted(u for u in graph if reaches(u, u))
    assert not cyclic, f"packages in an import cycle: {cyclic}"


def test_no_private_module_of_another_package():
    bad = []
    for _src, dst, f, line, mod in _edges():
        if dst.startswith("_"):
            continue  # the shared core modules are the core's public surface
        inner = mod.split(".")[2:]
        if any(part.startswith("_") for part in inner):
            bad.append(f"{f}:{line} imports {mod}")
    assert not bad, "cross-package imports of private modules (import the package's public name):\n" + "\n".join(bad)


def test_core_imports_no_package():
    bad = [
        f"{f}:{line} {mod}"
        for src, dst, f, line, mod in _edges()
        if src.startswith("_") and src != "__main__" and not dst.startswith("_")
    ]
    assert not bad, "core modules must not import packages:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(LEVEL))
def test_each_package_says_what_it_offers(package):
    init = SRC / package / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"medlens/{package}/__init__.py has no docstring"
    if package in {"cli"}:
        return
    names = [
        t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    ]
    assert "__all__" in names, f"medlens/{package}/__init__.py has no __all__"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("llm", {"hierarchy", "taxonomy", "encoders", "risk", "retrieval"}),
        ("io", {"hierarchy", "taxonomy", "encoders", "risk", "llm"}),
        ("taxonomy", {"hierarchy", "io", "risk"}),
        ("metrics", {"hierarchy", "risk", "benchmarks"}),
        ("training", {"hierarchy", "taxonomy", "encoders", "risk", "llm", "retrieval", "metrics", "benchmarks"}),
    ],
)
def test_importing_a_package_loads_only_what_is_below(package, forbidden):
    code = (
        f"import sys, medlens.{package}\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('medlens.')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(ast.literal_eval(out.strip()))
    assert not loaded & forbidden, f"import medlens.{package} loaded {sorted(loaded & forbidden)}"


def test_the_checker_resolves_relative_and_lazy_imports():
    probe = SRC / "io" / "_probe.py"  # never written: the text is parsed as if it lived there
    text = "from ..hierarchy import _tables\nfrom . import _atomic\n\ndef f():\n    import medlens.risk\n"
    mods = {m for m, _ in _imports(probe, text)}
    assert {"medlens.hierarchy", "medlens.hierarchy._tables", "medlens.io._atomic", "medlens.risk"} <= mods
