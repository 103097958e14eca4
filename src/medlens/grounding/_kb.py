"""Finding knowledge bases: versioned YAML files of findings with structured visual attributes.

A knowledge base (KB) file is a mapping ``{name, version, dataset, source, findings: [...]}``; each finding is
``{name, synonyms, ontology, split, statistics, equivalent, definition, attributes}`` where ``attributes`` maps
some of :data:`ATTRIBUTES` (shape, density, location, pattern, size) to short phrases. Two KBs ship with medlens
(``vindr-cxr``: the 22 local findings of VinDr-CXR; ``padchest-gr``: 24 PadChest-GR findings) and any file of the
same shape loads with :func:`load_knowledge`. :func:`validate_knowledge` returns every problem of a file (one
line each, naming the finding and field) instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from medlens._validation import InputError, did_you_mean, read_text_file

__all__ = [
    "ATTRIBUTES",
    "BUILTIN_KNOWLEDGE",
    "SPLITS",
    "STATISTICS_LABELS",
    "Finding",
    "KnowledgeBase",
    "load_knowledge",
    "validate_knowledge",
]

ATTRIBUTES: tuple[str, ...] = ("shape", "density", "location", "pattern", "size")
"""The structured visual attributes of a finding, in their canonical (rendering) order."""
SPLITS: tuple[str, ...] = ("seen", "unseen")
BUILTIN_KNOWLEDGE: dict[str, str] = {"vindr-cxr": "vindr_cxr.yaml", "padchest-gr": "padchest_gr.yaml"}
"""Shipped KBs by name (package data under ``medlens/grounding/data``)."""
_ALIASES = {"vindr": "vindr-cxr", "padchest": "padchest-gr"}
STATISTICS_LABELS: dict[str, tuple[str, ...]] = {
    "nih": ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltrate", "Mass", "Nodule", "Pneumonia", "Pneumothorax"),
    "vindr": (
        "Aortic enlargement",
        "Atelectasis",
        "Calcification",
        "Cardiomegaly",
        "Consolidation",
        "ILD",
        "Infiltration",
        "Lung Opacity",
        "Nodule/Mass",
        "Other lesion",
        "Pleural effusion",
        "Pleural thickening",
        "Pneumothorax",
        "Pulmonary fibrosis",
    ),
}
"""Class names of the box tables a finding may point to in ``statistics`` (NIH BBox_List_2017, VinDr train)."""
_TOP_KEYS = {"name", "version", "dataset", "source", "findings"}
_FINDING_KEYS = {"name", "synonyms", "ontology", "split", "statistics", "equivalent", "definition", "attributes"}
_REQUIRED = ("name", "split", "definition", "attributes")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def normalise_name(text: str) -> str:
    """Lower-case, single-spaced form used to look findings up (``"Pleural  Effusion"`` → ``"pleural effusion"``)."""
    return " ".join(str(text).lower().split())


@dataclass(frozen=True)
class Finding:
    """One finding: its name, synonyms, ontology ids, seen/unseen split, box-table labels and attributes."""

    name: str
    definition: str
    attributes: Mapping[str, str]
    split: str
    synonyms: tuple[str, ...] = ()
    ontology: Mapping[str, str] = field(default_factory=dict)
    statistics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    equivalent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "synonyms": list(self.synonyms),
            "ontology": dict(self.ontology),
            "split": self.split,
            "statistics": {k: list(v) for k, v in self.statistics.items()},
            "equivalent": self.equivalent,
            "definition": self.definition,
            "attributes": {a: self.attributes[a] for a in ATTRIBUTES if a in self.attributes},
        }


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated KB: findings in file order, looked up by name or synonym (case and spacing ignored)."""

    name: str
    version: str
    dataset: str
    source: str
    findings: tuple[Finding, ...]
    path: str

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.findings]

    @cached_property
    def _lookup(self) -> dict[str, Finding]:
        out: dict[str, Finding] = {}
        for f in self.findings:
            for key in (f.name, *f.synonyms):
                out.setdefault(normalise_name(key), f)
        return out

    def vocabulary(self) -> dict[str, str]:
        """Every name and synonym (normalised) → the finding's name."""
        return {k: f.name for k, f in self._lookup.items()}

    def get(self, name: str) -> Finding:
        """The finding called ``name`` (or with that synonym); an :class:`InputError` with a did-you-mean otherwise."""
        found = self._lookup.get(normalise_name(name))
        if found is None:
            raise InputError(
                f"unknown finding {name!r} in knowledge base {self.name!r}."
                f"{did_you_mean(normalise_name(name), self._lookup)} "
                f"See `medlens ground kb show {self.name}`."
            )
        return found

    def split_of(self, name: str) -> str:
        return self.get(name).split

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "dataset": self.dataset,
            "source": self.source,
            "findings": [f.to_dict() for f in self.findings],
        }


def _str_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return None


def _check_finding(raw: Any, where: str, problems: list[str]) -> Finding | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with keys {sorted(_FINDING_KEYS)}; got {type(raw).__name__}.")
        return None
    n0 = len(problems)
    label = f"{where} ({raw['name']!r})" if isinstance(raw.get("name"), str) else where
    for key in sorted(set(raw) - _FINDING_KEYS):
        problems.append(f"{label}: unknown field {key!r}.{did_you_mean(key, _FINDING_KEYS)}")
    for key in _REQUIRED:
        if key not in raw:
            problems.append(f"{label}: missing required field {key!r}.")
    for key in ("name", "definition"):
        if key in raw and not (isinstance(raw[key], str) and raw[key].strip()):
            problems.append(f"{label}: field {key!r} must be a non-empty string; got {raw[key]!r}.")
    if "split" in raw and raw["split"] not in SPLITS:
        problems.append(f"{label}: field 'split' must be one of {list(SPLITS)}; got {raw['split']!r}.")
    synonyms = _str_list(raw.get("synonyms", []))
    if synonyms is None and raw.get("synonyms") != []:
        problems.append(f"{label}: field 'synonyms' must be a list of non-empty strings.")
    attrs = raw.get("attributes")
    if "attributes" in raw:
        if not isinstance(attrs, dict) or not attrs:
            problems.append(f"{label}: field 'attributes' must be a non-empty mapping of {list(ATTRIBUTES)}.")
        else:
            for key, value in attrs.items():
                if key not in ATTRIBUTES:
                    problems.append(f"{label}: unknown attribute {key!r}.{did_you_mean(str(key), ATTRIBUTES)}")
                elif not (isinstance(value, str) and value.strip()):
                    problems.append(f"{label}: attribute {key!r} must be a non-empty string; got {value!r}.")
    ontology = raw.get("ontology", {})
    if not isinstance(ontology, dict) or not all(isinstance(v, str) for v in ontology.values()):
        problems.append(
            f"{label}: field 'ontology' must map an ontology name to an id string, e.g. {{umls: C0032227}}."
        )
    stats = raw.get("statistics", {})
    parsed_stats: dict[str, tuple[str, ...]] = {}
    if not isinstance(stats, dict):
        problems.append(f"{label}: field 'statistics' must map a box table ({list(STATISTICS_LABELS)}) to class names.")
    else:
        for table, labels in stats.items():
            if table not in STATISTICS_LABELS:
                problems.append(f"{label}: unknown box table {table!r}.{did_you_mean(str(table), STATISTICS_LABELS)}")
                continue
            names = _str_list(labels)
            bad = [x for x in names or [labels] if x not in STATISTICS_LABELS[table]]
            if names is None or bad:
                problems.append(
                    f"{label}: statistics.{table} has class {bad[0]!r}, which is not in that table; "
                    f"expected one of {list(STATISTICS_LABELS[table])}."
                )
            else:
                parsed_stats[table] = names
    equivalent = raw.get("equivalent")
    if equivalent is not None and not (isinstance(equivalent, str) and equivalent.strip()):
        problems.append(f"{label}: field 'equivalent' must be a finding name; got {equivalent!r}.")
    if len(problems) > n0:
        return None
    return Finding(
        name=normalise_name(raw["name"]),
        definition=raw["definition"].strip(),
        attributes={a: attrs[a].strip() for a in ATTRIBUTES if a in attrs},
        split=raw["split"],
        synonyms=tuple(normalise_name(s) for s in synonyms or ()),
        ontology=dict(ontology),
        statistics=parsed_stats,
        equivalent=normalise_name(equivalent) if equivalent else None,
    )


def _parse(data: Any, path: str) -> tuple[KnowledgeBase | None, list[str]]:
    problems: list[str] = []
    if not isinstance(data, dict):
        return None, [f"{path}: the file must hold a mapping with keys {sorted(_TOP_KEYS)}."]
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"{path}: unknown top-level field {key!r}.{did_you_mean(key, _TOP_KEYS)}")
    for key in ("name", "version", "dataset", "source"):
        if not (isinstance(data.get(key), str) and data[key].strip()):
            problems.append(f"{path}: top-level field {key!r} must be a non-empty string.")
    if isinstance(data.get("version"), str) and not _VERSION.match(data["version"]):
        problems.append(f"{path}: version must look like 1.0.0; got {data['version']!r}.")
    raw_findings = data.get("findings")
    if not isinstance(raw_findings, list) or not raw_findings:
        problems.append(f"{path}: 'findings' must be a non-empty list.")
        raw_findings = []
    findings = [_check_finding(r, f"{path}: finding {i + 1}", problems) for i, r in enumerate(raw_findings)]
    ok = [f for f in findings if f is not None]
    owner: dict[str, str] = {}
    for f in ok:
        for key in (f.name, *f.synonyms):
            if key in owner and owner[key] != f.name:
                problems.append(
                    f"{path}: {key!r} names both {owner[key]!r} and {f.name!r}; a name or synonym must be unique."
                )
            elif key in owner and key == f.name:
                problems.append(f"{path}: finding {f.name!r} appears twice.")
            owner.setdefault(key, f.name)
    if problems:
        return None, problems
    kb = KnowledgeBase(data["name"], data["version"], data["dataset"], data["source"], tuple(ok), path)
    return kb, _check_equivalents(kb)


def _check_equivalents(kb: KnowledgeBase) -> list[str]:
    """``equivalent`` names a VinDr-CXR finding, and the split follows from it (seen iff the equivalent is seen)."""
    have = [f for f in kb.findings if f.equivalent]
    if not have:
        return []
    problems = []
    reference = load_knowledge("vindr-cxr") if kb.name != "vindr-cxr" else kb
    vocab = reference.vocabulary()
    for f in have:
        target = vocab.get(f.equivalent)  # type: ignore[arg-type]
        if target is None:
            problems.append(
                f"{kb.path}: finding {f.name!r}: equivalent {f.equivalent!r} is not a VinDr-CXR finding."
                f"{did_you_mean(f.equivalent or '', vocab)}"
            )
            continue
        want = "seen" if reference.get(target).split == "seen" else "unseen"
        if f.split != want:
            problems.append(
                f"{kb.path}: finding {f.name!r}: split is {f.split!r} but its equivalent {target!r} is {want} "
                f"in VinDr-CXR; set split: {want}."
            )
    return problems


def _resolve(source: str | PathLike[str]) -> tuple[str, str]:
    """(text, label) of a built-in name or a file path."""
    key = str(source)
    key = _ALIASES.get(key, key)
    if key in BUILTIN_KNOWLEDGE:
        res = resources.files("medlens.grounding").joinpath("data", BUILTIN_KNOWLEDGE[key])
        return res.read_text(encoding="utf-8"), key
    path = Path(key)
    if path.suffix.lower() not in {".yaml", ".yml", ".json"} and not path.exists():
        names = [*BUILTIN_KNOWLEDGE, *_ALIASES]
        raise InputError(
            f"unknown knowledge base {key!r}.{did_you_mean(key, names)} "
            f"Give a built-in name ({', '.join(BUILTIN_KNOWLEDGE)}) or a YAML file path."
        )
    return read_text_file(path, what="knowledge base"), str(path)


def _load_yaml(text: str, label: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{label}: not valid YAML{where}; fix the syntax and retry.") from None


def validate_knowledge(source: str | PathLike[str]) -> list[str]:
    """Every problem of a KB (built-in name or YAML path), one line each; an empty list when it is valid."""
    text, label = _resolve(source)
    _, problems = _parse(_load_yaml(text, label), label)
    return problems


_CACHE: dict[str, KnowledgeBase] = {}


def load_knowledge(source: str | PathLike[str] = "vindr-cxr") -> KnowledgeBase:
    """Load and validate a KB: a built-in name (``vindr-cxr``/``vindr``, ``padchest-gr``/``padchest``) or a YAML file.

    Raises :class:`InputError` naming the file, finding and field of the first problem (and how many more there
    are; :func:`validate_knowledge` lists them all).

    >>> kb = load_knowledge("vindr")
    >>> len(kb.findings), kb.get("Effusion").name, kb.get("pneumothorax").split
    (22, 'pleural effusion', 'unseen')
    """
    key = _ALIASES.get(str(source), str(source))
    if key in _CACHE:
        return _CACHE[key]
    text, label = _resolve(key)
    kb, problems = _parse(_load_yaml(text, label), label)
    if problems or kb is None:
        more = f" ({len(problems) - 1} more problems: run `medlens ground kb validate`)" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)
    if key in BUILTIN_KNOWLEDGE:
        _CACHE[key] = kb
    return kb
