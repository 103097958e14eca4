"""The ``cxr-reports`` benchmark: Indiana University chest X-ray reports labelled with ``cxr_anatomic_v1`` nodes.

The data
--------
3,955 de-identified radiology reports of chest X-ray examinations from the Indiana University hospital network,
distributed by the U.S. National Library of Medicine through Open-i (https://openi.nlm.nih.gov/) as one XML file
per report. Each report has COMPARISON, INDICATION, FINDINGS and IMPRESSION sections and MeSH "major" headings
assigned by human indexers, hierarchical strings such as ``Cardiomegaly/mild``, ``Pulmonary Atelectasis/base/left``
or ``normal``. De-identification replaced words with ``XXXX``; we keep them as they are.

Licence and citation
--------------------
Every report carries ``licenseType`` open-access with the licence Creative Commons Attribution-NonCommercial-
NoDerivatives 4.0 (https://creativecommons.org/licenses/by-nc-nd/4.0/), publisher Indiana University. Cite:
Demner-Fushman D, Kohli MD, Rosenman MB, Shooshan SE, Rodriguez L, Antani S, Thoma GR, McDonald CJ. *Preparing a
collection of radiology examinations for distribution and retrieval.* J Am Med Inform Assoc. 2016;23(2):304-310.
doi:10.1093/jamia/ocv080. medlens does not redistribute the reports: it reads ``torchxrayvision/data/
NLMCXR_reports.tgz`` from an installed ``torchxrayvision`` wheel (the ``data`` extra) through package metadata,
without importing ``torchxrayvision`` (so without importing torch).

Labels
------
The MeSH headings are mapped to ``cxr_anatomic_v1`` node ids by the table ``data/cxr_reports_mesh_map.tsv`` (its
header comments give the matching rule). Per report we keep the most specific mapped nodes (a node is dropped when
one of its descendants is also present), drop ``No Finding`` when the report also has a finding (findings win), and
drop reports without text or without any mapped heading. The split into train / calibration / test (50 / 25 / 25 %)
is fixed by the seed (default 0) and is shared by every later use of this benchmark: fit on ``train``, calibrate
thresholds on ``calibration``, report on ``test``.

Examples
--------
>>> bench = load_cxr_reports()  # doctest: +SKIP
>>> bench.stats["n_used"], bench.subset("test").shape  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from medlens._validation import InputError

__all__ = [
    "ARCHIVE_NAME",
    "IGNORE",
    "SPLITS",
    "TAXONOMY",
    "CxrReports",
    "load_cxr_reports",
    "load_mesh_map",
    "locate_archive",
    "map_headings",
    "read_reports",
]

TAXONOMY = "cxr_anatomic_v1"
"""Taxonomy whose node ids label the reports."""
IGNORE = "IGNORE"
"""Mapping-table value for headings that carry no finding of the taxonomy."""
SPLITS = ("train", "calibration", "test")
"""Split names, in the order they are cut from the seeded permutation (50 %, 25 %, the rest)."""
ARCHIVE_NAME = "NLMCXR_reports.tgz"
"""File name of the report archive inside the torchxrayvision wheel."""

_DISTRIBUTION = "torchxrayvision"
_ARCHIVE_IN_WHEEL = f"torchxrayvision/data/{ARCHIVE_NAME}"
_MISSING = (
    "the cxr-reports benchmark requires 'torchxrayvision' data files, which are not installed. "
    'Install it with: pip install "medlens[data]"'
)
_NO_FINDING = "No Finding"
_MESH_MAP_FILE = "cxr_reports_mesh_map.tsv"
_MESH_MAP_HEADER = ("mesh_head", "node", "note")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")

# head -> [(qualifier set, node)], most specific first (most qualifiers, then table order)
_Index = dict[str, list[tuple[frozenset[str], str]]]


# ---------------------------------------------------------------------------------------------- the archive
def locate_archive() -> Path:
    """Path of ``NLMCXR_reports.tgz`` inside the installed ``torchxrayvision`` distribution.

    The file is found through package metadata; ``torchxrayvision`` is never imported.

    Returns
    -------
    pathlib.Path
        The archive (a gzipped tar of 3,955 XML reports).

    Raises
    ------
    ImportError
        When ``torchxrayvision`` is not installed or its wheel lacks the archive; the message names the
        ``pip install "medlens[data]"`` line.
    """
    try:
        dist = metadata.distribution(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ImportError(_MISSING) from None
    path = Path(str(dist.locate_file(_ARCHIVE_IN_WHEEL)))
    if path.is_file():
        return path
    for entry in dist.files or ():
        if PurePosixPath(str(entry)).name == ARCHIVE_NAME:
            candidate = Path(str(dist.locate_file(entry)))
            if candidate.is_file():
                return candidate
    raise ImportError(_MISSING)


def _clean(text: str | None) -> str:
    """Section text with ``<BR>`` tags turned into spaces and runs of whitespace collapsed ("" when absent)."""
    if not text:
        return ""
    return _SPACE.sub(" ", _BR.sub(" ", text)).strip()


def _report_row(name: str, payload: bytes) -> dict[str, Any]:
    stem = PurePosixPath(name).stem
    root = ET.fromstring(payload)
    uid = root.find("uId")
    report_id = uid.get("id") if uid is not None and uid.get("id") else f"CXR{stem}"
    sections = {el.get("Label", "").upper(): el.text for el in root.iter("AbstractText")}
    findings = _clean(sections.get("FINDINGS"))
    impression = _clean(sections.get("IMPRESSION"))
    headings = [el.text.strip() for el in root.findall("MeSH/major") if el.text and el.text.strip()]
    return {
        "id": str(report_id),
        "findings": findings,
        "impression": impression,
        "text": f"{findings} {impression}".strip(),
        "mesh_major": headings,
        "_order": int(stem) if stem.isdigit() else 0,
        "_stem": stem,
    }


def _parse_archive(fileobj: io.BufferedIOBase | io.BytesIO, source: str) -> pd.DataFrame:
    rows = []
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            for member in tar:
                if not (member.isfile() and member.name.lower().endswith(".xml")):
                    continue
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - regular files always have a handle
                    continue
                try:
                    rows.append(_report_row(member.name, handle.read()))
                except ET.ParseError as exc:
                    raise InputError(f"{source}: report {member.name} is not valid XML ({exc}).") from None
    except tarfile.TarError as exc:
        raise InputError(f"{source} is not a readable tar archive ({exc}); expected {ARCHIVE_NAME}.") from None
    if not rows:
        raise InputError(f"{source} holds no XML reports; expected the Open-i archive {ARCHIVE_NAME}.")
    frame = pd.DataFrame(rows).sort_values(["_order", "_stem"], kind="stable").reset_index(drop=True)
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise InputError(f"{source}: report id {dup!r} occurs more than once.")
    return frame.drop(columns=["_order", "_stem"])


def read_reports(path: str | PathLike[str] | None = None) -> pd.DataFrame:
    """Read every report of the Open-i archive into a table (stdlib ``tarfile`` + ``xml.etree``; ~1 s).

    Parameters
    ----------
    path : str or path-like, optional
        The ``.tgz`` archive; default :func:`locate_archive`.

    Returns
    -------
    pandas.DataFrame
        One row per report, ordered by the number of its XML file, with columns ``id`` (the Open-i uid such as
        ``"CXR1"``; the file ``1.xml`` gives ``"CXR1"``), ``findings`` and ``impression`` (``""`` when absent;
        ``<BR>`` tags and runs of whitespace collapsed to one space), ``text`` (findings + " " + impression,
        stripped) and ``mesh_major`` (list of the MeSH major headings, stripped of outer whitespace).

    Raises
    ------
    ImportError
        When ``path`` is omitted and ``torchxrayvision`` is not installed.
    InputError
        When the file is missing, not a tar archive, holds no XML reports, or repeats a report id.
    """
    archive = locate_archive() if path is None else Path(path)
    if not archive.is_file():
        raise InputError(f"report archive {archive} does not exist; expected the Open-i {ARCHIVE_NAME}.")
    with archive.open("rb") as fh:
        return _parse_archive(fh, str(archive))


# ------------------------------------------------------------------------------------- taxonomy and mapping
@lru_cache(maxsize=1)
def _taxonomy_parents() -> dict[str, str]:
    """``{node: parent}`` of ``cxr_anatomic_v1`` read from its JSON file (the root maps to ``""``)."""
    text = resources.files("medlens.taxonomy").joinpath("data", f"{TAXONOMY}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    parents = {str(data.get("root", "root")): ""}
    for parent, kids in data["children"].items():
        for kid in kids:
            parents[str(kid)] = str(parent)
    return parents


def _ancestors(node: str, parents: Mapping[str, str]) -> set[str]:
    """Proper ancestors of ``node`` (excluding itself)."""
    out = set()
    while parents.get(node):
        node = parents[node]
        out.add(node)
    return out


def _most_specific(nodes: Iterable[str], parents: Mapping[str, str]) -> list[str]:
    """Drop every node that is an ancestor of another node of the set; sorted."""
    chosen = set(nodes)
    covered = set().union(*(_ancestors(n, parents) for n in chosen)) if chosen else set()
    return sorted(chosen - covered)


def _norm_part(part: str) -> str:
    return _SPACE.sub(" ", part).strip().lower()


def _split_heading(heading: str) -> tuple[str, frozenset[str]]:
    """``"Head/q1/q2"`` -> (normalised head, set of normalised qualifiers)."""
    parts = [_norm_part(p) for p in str(heading).split("/")]
    return parts[0], frozenset(p for p in parts[1:] if p)


def _norm_key(key: str) -> str:
    head, *quals = (_norm_part(p) for p in str(key).split("/"))
    return "/".join([head, *(q for q in quals if q)])


def _default_mesh_map_path() -> Path:
    return Path(str(resources.files("medlens.benchmarks.cxr_reports").joinpath("data", _MESH_MAP_FILE)))


def load_mesh_map(path: str | PathLike[str] | None = None) -> dict[str, str]:
    """Read the MeSH-heading -> taxonomy-node table.

    Parameters
    ----------
    path : str or path-like, optional
        A TSV with ``#`` comment lines, the header ``mesh_head<TAB>node<TAB>note`` and one row per key; default the
        table shipped with medlens (``medlens/benchmarks/cxr_reports/data/cxr_reports_mesh_map.tsv``).

    Returns
    -------
    dict of str to str
        Normalised key (parts stripped, lower-cased, inner whitespace collapsed, joined by ``/``) -> node id of
        ``cxr_anatomic_v1`` or ``"IGNORE"``, in table order (the order breaks ties, see :func:`map_headings`).

    Raises
    ------
    InputError
        When the file is missing, lacks the header, has a row without a node, repeats a key, or names a node that is
        not in ``cxr_anatomic_v1``.
    """
    table = _default_mesh_map_path() if path is None else Path(path)
    if not table.is_file():
        raise InputError(f"MeSH map {table} does not exist; expected a TSV with columns {list(_MESH_MAP_HEADER)}.")
    nodes = set(_taxonomy_parents())
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for lineno, raw in enumerate(table.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in raw.split("\t")]
        if not header_seen:
            if tuple(c.lower() for c in cells[:3]) != _MESH_MAP_HEADER:
                raise InputError(
                    f"{table}, line {lineno}: expected the header {'<TAB>'.join(_MESH_MAP_HEADER)}; got {raw!r}."
                )
            header_seen = True
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise InputError(f"{table}, line {lineno}: expected 'mesh_head<TAB>node[<TAB>note]'; got {raw!r}.")
        key, node = _norm_key(cells[0]), cells[1]
        if key in out:
            raise InputError(
                f"{table}, line {lineno}: key {cells[0]!r} repeats line {first_line[key]}; keep one row per key."
            )
        if node != IGNORE and node not in nodes:
            raise InputError(
                f"{table}, line {lineno}: {node!r} is not a node of {TAXONOMY} (nor {IGNORE!r}). "
                f"Use a node id of the taxonomy (medlens taxonomy show {TAXONOMY})."
            )
        out[key] = node
        first_line[key] = lineno
    if not header_seen:
        raise InputError(f"MeSH map {table} is empty; expected the header {'<TAB>'.join(_MESH_MAP_HEADER)}.")
    return out


def _build_index(mesh_map: Mapping[str, str]) -> _Index:
    staged: dict[str, list[tuple[int, int, frozenset[str], str]]] = {}
    for order, (key, node) in enumerate(mesh_map.items()):
        head, quals = _split_heading(key)
        staged.setdefault(head, []).append((-len(quals), order, quals, str(node)))
    return {head: [(q, n) for _, _, q, n in sorted(rows, key=lambda r: r[:2])] for head, rows in staged.items()}


def _lookup(heading: str, index: _Index) -> str | None:
    head, quals = _split_heading(heading)
    for needed, node in index.get(head, ()):
        if needed <= quals:
            return node
    return None


def _map_indexed(headings: Iterable[str], index: _Index) -> tuple[list[str], list[str], list[str]]:
    nodes: set[str] = set()
    unmapped: list[str] = []
    ignored: list[str] = []
    for heading in headings:
        node = _lookup(heading, index)
        if node is None:
            unmapped.append(heading)
        elif node == IGNORE:
            ignored.append(heading)
        else:
            nodes.add(node)
    return sorted(nodes), unmapped, ignored


def map_headings(headings: Iterable[str], mesh_map: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Map a report's MeSH major headings to taxonomy nodes.

    A heading ``Head/q1/q2/...`` is matched case-insensitively: a key ``Head`` matches every heading with that head,
    a key ``Head/qa/qb`` matches when the heading's qualifiers include ``qa`` and ``qb`` (any order, any position).
    Of the matching keys the one with the most qualifiers wins; ties go to the key listed first in ``mesh_map``.

    Parameters
    ----------
    headings : iterable of str
        Raw headings, e.g. ``["Cardiomegaly/mild", "Lung/hypoinflation"]``.
    mesh_map : mapping of str to str
        Key -> node id or ``"IGNORE"``, as returned by :func:`load_mesh_map`.

    Returns
    -------
    nodes : list of str
        Distinct mapped node ids, sorted (not yet reduced to the most specific ones).
    unmapped : list of str
        Headings no key matches, as given.
    ignored : list of str
        Headings whose key maps to ``"IGNORE"``, as given.

    Examples
    --------
    >>> table = {"lung": "IGNORE", "lung/hypoinflation": "Hypoinflation", "cardiomegaly": "Cardiomegaly"}
    >>> map_headings(["Cardiomegaly/mild", "Lung/bilateral/hypoinflation", "Lung/azygos lobe", "Foo"], table)
    (['Cardiomegaly', 'Hypoinflation'], ['Foo'], ['Lung/azygos lobe'])
    """
    if isinstance(headings, str):
        raise TypeError(f"headings must be a list of heading strings, not one string ({headings!r}).")
    return _map_indexed(headings, _build_index(mesh_map))


# ------------------------------------------------------------------------------------------- the benchmark
@dataclass(frozen=True, eq=False)
class CxrReports:
    """The loaded ``cxr-reports`` benchmark.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per usable report, sorted by ``id``: ``id``, ``text``, ``labels`` (sorted list of the most specific
        ``cxr_anatomic_v1`` node ids) and ``split`` (``"train"``, ``"calibration"`` or ``"test"``).
    stats : dict
        Counts and provenance: ``n_reports_total``, ``n_without_text``, ``n_without_mapped_label``,
        ``n_normal_conflicts``, ``n_used``, ``n_multilabel``, ``share_multilabel``, ``unmapped_heading_counts``,
        ``ignored_heading_counts``, ``label_counts``, ``split_sizes``, ``seed``, ``split_sha256``, ``taxonomy``,
        ``mesh_map_sha256``, ``archive_sha256``.
    taxonomy : str
        Name of the taxonomy the labels belong to.
    """

    frame: pd.DataFrame
    stats: dict[str, Any]
    taxonomy: str = TAXONOMY

    def subset(self, split: str) -> pd.DataFrame:
        """Rows of one split (``"train"``, ``"calibration"`` or ``"test"``), index reset."""
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}; expected one of {list(SPLITS)}.")
        return self.frame[self.frame["split"] == split].reset_index(drop=True)


def _split_assignment(ids: list[str], seed: int) -> dict[str, str]:
    """Seeded 50/25/25 split: sort the ids, permute with ``default_rng(seed)``, cut train | calibration | test."""
    ordered = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    n_train, n_cal = len(ordered) // 2, len(ordered) // 4
    out = {}
    for rank, pos in enumerate(perm):
        out[ordered[int(pos)]] = SPLITS[0] if rank < n_train else SPLITS[1] if rank < n_train + n_cal else SPLITS[2]
    return out


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))}


def load_cxr_reports(seed: int = 0) -> CxrReports:
    """Load the ``cxr-reports`` benchmark: report texts, ``cxr_anatomic_v1`` labels and the fixed split.

    Per report: the MeSH major headings are mapped with the shipped table (:func:`map_headings`); when the report
    has ``normal`` and a finding, ``No Finding`` is dropped (counted in ``n_normal_conflicts``); the nodes are
    reduced to the most specific ones. Reports without findings and impression text, then reports whose headings
    are all ignored or unmapped, are dropped. Heading counts in ``stats`` are numbers of headings over all reports
    of the archive, keyed by the heading's head.

    Parameters
    ----------
    seed : int, default 0
        Seed of the split. The default split is shared by every later use of this benchmark: the usable ids are
        sorted, permuted with ``numpy.random.default_rng(seed)``, and the first 50 % go to ``train``, the next
        25 % to ``calibration``, the rest to ``test``, identically across runs and machines (``stats["split_sha256"]``
        fingerprints it).

    Returns
    -------
    CxrReports
        ``frame`` (``id``, ``text``, ``labels``, ``split``) and ``stats``.

    Raises
    ------
    ImportError
        When ``torchxrayvision`` (the ``data`` extra) is not installed.
    TypeError, InputError
        When ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int; got {type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise InputError(f"seed must be a non-negative int; got {seed}.")
    seed = int(seed)

    archive = locate_archive()
    payload = archive.read_bytes()
    reports = _parse_archive(io.BytesIO(payload), str(archive))
    map_path = _default_mesh_map_path()
    mesh_map = load_mesh_map(map_path)
    index = _build_index(mesh_map)
    parents = _taxonomy_parents()

    unmapped_counts: Counter[str] = Counter()
    ignored_counts: Counter[str] = Counter()
    display: dict[str, str] = {}
    n_without_text = n_without_label = n_conflicts = 0
    kept: list[tuple[str, str, list[str]]] = []
    for rid, text, headings in zip(reports["id"], reports["text"], reports["mesh_major"], strict=True):
        nodes, unmapped, ignored = _map_indexed(headings, index)
        for counter, group in ((unmapped_counts, unmapped), (ignored_counts, ignored)):
            for heading in group:
                head = _SPACE.sub(" ", heading.split("/")[0]).strip()
                counter[display.setdefault(head.lower(), head)] += 1
        if not text:
            n_without_text += 1
            continue
        if _NO_FINDING in nodes and len(nodes) > 1:
            nodes.remove(_NO_FINDING)
            n_conflicts += 1
        labels = _most_specific(nodes, parents)
        if not labels:
            n_without_label += 1
            continue
        kept.append((rid, text, labels))

    kept.sort(key=lambda row: row[0])
    split_of = _split_assignment([rid for rid, _, _ in kept], seed)
    frame = pd.DataFrame(
        {
            "id": [rid for rid, _, _ in kept],
            "text": [text for _, text, _ in kept],
            "labels": [labels for _, _, labels in kept],
            "split": [split_of[rid] for rid, _, _ in kept],
        }
    )
    n_used = len(frame)
    n_multi = int(sum(len(labels) > 1 for labels in frame["labels"]))
    split_sizes = {name: int((frame["split"] == name).sum()) for name in SPLITS}
    fingerprint = "".join(f"{rid}\t{split}\n" for rid, split in zip(frame["id"], frame["split"], strict=True))
    stats: dict[str, Any] = {
        "n_reports_total": len(reports),
        "n_without_text": n_without_text,
        "n_without_mapped_label": n_without_label,
        "n_normal_conflicts": n_conflicts,
        "n_used": n_used,
        "n_multilabel": n_multi,
        "share_multilabel": n_multi / n_used if n_used else 0.0,
        "unmapped_heading_counts": _sorted_counts(unmapped_counts),
        "ignored_heading_counts": _sorted_counts(ignored_counts),
        "label_counts": _sorted_counts(Counter(n for labels in frame["labels"] for n in labels)),
        "split_sizes": split_sizes,
        "seed": seed,
        "split_sha256": hashlib.sha256(fingerprint.encode("utf-8")).hexdigest(),
        "taxonomy": TAXONOMY,
        "mesh_map_sha256": hashlib.sha256(map_path.read_bytes()).hexdigest(),
        "archive_sha256": hashlib.sha256(payload).hexdigest(),
    }
    return CxrReports(frame=frame, stats=stats)
