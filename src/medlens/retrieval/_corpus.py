"""Corpora: documents ``{id, title, text, source?, url?, diagnosis?}``, JSONL reading with named errors.

A corpus file is JSON Lines, one document per line::

    {"id": "rp-123", "title": "Rhombencephalosynapsis", "text": "...", "source": "my notes", "url": "https://...",
     "diagnosis": "Rhombencephalosynapsis"}

``id``, ``title`` and ``text`` are required non-empty strings, ``id`` is unique; ``source``, ``url`` and
``diagnosis`` are optional strings (or null). Any other field is kept, unchanged, in ``Document.meta``.
Every problem raises :class:`CorpusError` naming the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens._validation import InputError
from medlens.io import iter_jsonl

__all__ = ["Corpus", "CorpusError", "Document", "read_corpus", "read_trusted_documents", "write_corpus"]

REQUIRED_FIELDS = ("id", "title", "text")
OPTIONAL_FIELDS = ("source", "url", "diagnosis")


class CorpusError(InputError):
    """A corpus file or document is invalid; the message names the file, line and field."""


@dataclass(frozen=True)
class Document:
    """One retrievable unit: a whole document, or a chunk of one (then ``parent`` is the document's id).

    ``diagnosis`` is the condition the document describes, when it describes one; the retrieval-only ranker
    proposes it as a candidate (falling back to ``title``).
    """

    id: str
    title: str
    text: str
    source: str | None = None
    url: str | None = None
    diagnosis: str | None = None
    parent: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def parent_id(self) -> str:
        """The id of the document this unit comes from (its own id when it is not a chunk)."""
        return self.parent or self.id

    @property
    def full_text(self) -> str:
        """``"<title>. <text>"`` (just ``text`` when it already starts with the title): what BM25 and
        document-mode embeddings read, so a title is searchable even when the text does not repeat it."""
        if self.text.lstrip().lower().startswith(self.title.lower()):
            return self.text
        sep = " " if self.title.rstrip().endswith((".", "!", "?", ":")) else ". "
        return f"{self.title.rstrip()}{sep}{self.text}"

    @property
    def candidate(self) -> str:
        """The diagnosis this document is evidence for: ``diagnosis``, else ``title``."""
        return self.diagnosis or self.title

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "text": self.text}
        for key in (*OPTIONAL_FIELDS, "parent"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.meta)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, where: str = "document") -> Document:
        """Validate one JSON object; ``where`` (e.g. ``"corpus.jsonl line 3"``) prefixes every error."""
        if not isinstance(obj, dict):
            raise CorpusError(f"{where}: expected a JSON object with id, title and text; got {type(obj).__name__}.")
        missing = [k for k in REQUIRED_FIELDS if k not in obj]
        if missing:
            raise CorpusError(
                f"{where}: missing required field(s) {', '.join(repr(m) for m in missing)}; every document needs "
                f"id, title and text (got fields {sorted(obj)})."
            )
        values: dict[str, Any] = {}
        for key in REQUIRED_FIELDS:
            value = obj[key]
            if isinstance(value, int | float) and not isinstance(value, bool) and key == "id":
                value = str(value)  # numeric ids are common in exported tables; they are kept as text
            if not isinstance(value, str):
                raise CorpusError(f"{where}: field {key!r} must be a string; got {type(value).__name__} {value!r}.")
            if not value.strip():
                raise CorpusError(f"{where}: field {key!r} is empty; give a non-empty {key}.")
            values[key] = value if key == "text" else value.strip()
        for key in (*OPTIONAL_FIELDS, "parent"):
            value = obj.get(key)
            if value is not None and not isinstance(value, str):
                raise CorpusError(
                    f"{where}: optional field {key!r} must be a string or null; got {type(value).__name__} {value!r}."
                )
            values[key] = value.strip() or None if isinstance(value, str) else None
        meta = {k: v for k, v in obj.items() if k not in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS, "parent")}
        return cls(**values, meta=meta)


_KNOWN = frozenset((*REQUIRED_FIELDS, *OPTIONAL_FIELDS, "parent"))


def _trusted_document(obj: dict[str, Any]) -> Document:
    """A document from a file medlens wrote itself (an index or a corpus cache): no validation, fast."""
    meta = {k: v for k, v in obj.items() if k not in _KNOWN} if len(obj) > 3 else {}
    return Document(
        obj["id"],
        obj["title"],
        obj["text"],
        obj.get("source"),
        obj.get("url"),
        obj.get("diagnosis"),
        obj.get("parent"),
        meta,
    )


def read_trusted_documents(path: str | os.PathLike) -> list[Document]:
    """Documents of a JSONL file written by :func:`write_corpus` (index folders, caches), without validation."""
    with open(path, encoding="utf-8") as fh:
        return [_trusted_document(json.loads(line)) for line in fh if line.strip()]


class Corpus:
    """An ordered collection of :class:`Document` with unique ids, a name, provenance and licence notices.

    Parameters
    ----------
    documents : iterable of Document
    name : str
        ``"hpo"`` for the built-in corpus, the file stem for a user file.
    provenance : dict, optional
        Where the documents come from (files, versions, hashes); stored in index manifests.
    notices : sequence of str, optional
        Licence and attribution notices that must travel with the documents (written to ``NOTICE.txt``).

    Examples
    --------
    >>> c = Corpus([Document("a", "Alpha", "first text"), Document("b", "Beta", "second text")], name="toy")
    >>> len(c), c["b"].title, c.ids
    (2, 'Beta', ['a', 'b'])
    """

    def __init__(
        self,
        documents: Iterable[Document],
        *,
        name: str,
        provenance: dict[str, Any] | None = None,
        notices: Sequence[str] = (),
    ) -> None:
        self.documents: list[Document] = list(documents)
        self.name = name
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.notices: list[str] = list(notices)
        self._pos: dict[str, int] = {}
        for i, doc in enumerate(self.documents):
            if not isinstance(doc, Document):
                raise TypeError(f"corpus {name!r}: item {i} must be a Document; got {type(doc).__name__}.")
            if doc.id in self._pos:
                raise CorpusError(
                    f"corpus {name!r}: duplicate document id {doc.id!r} (items {self._pos[doc.id]} and {i}); "
                    "ids must be unique."
                )
            self._pos[doc.id] = i
        if not self.documents:
            raise CorpusError(f"corpus {name!r} holds no documents.")
        self._hash: str | None = None

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __getitem__(self, key: int | str) -> Document:
        if isinstance(key, str):
            try:
                return self.documents[self._pos[key]]
            except KeyError:
                raise KeyError(f"corpus {self.name!r} has no document {key!r}.") from None
        return self.documents[key]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._pos

    def __repr__(self) -> str:
        return f"Corpus(name={self.name!r}, n={len(self)})"

    def position(self, doc_id: str) -> int:
        """Row of ``doc_id`` in the corpus (the row of its vectors in an index)."""
        return self._pos[doc_id]

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.documents]

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.documents]

    def content_hash(self) -> str:
        """SHA-256 over every document's canonical JSON (order matters; name and provenance do not)."""
        if self._hash is None:
            h = hashlib.sha256()
            for doc in self.documents:
                h.update(json.dumps(doc.to_dict(), sort_keys=True, ensure_ascii=False).encode())
                h.update(b"\n")
            self._hash = h.hexdigest()
        return self._hash

    def summary(self) -> dict[str, Any]:
        n_words = [len(d.text.split()) for d in self.documents]
        n_words.sort()
        return {
            "name": self.name,
            "n_documents": len(self),
            "n_parents": len({d.parent_id for d in self.documents}),
            "sha256": self.content_hash(),
            "words_median": n_words[len(n_words) // 2],
            "words_max": n_words[-1],
        }


def read_corpus(path: str | os.PathLike, *, name: str | None = None) -> Corpus:
    """Read a JSONL corpus file, validating every line.

    Raises
    ------
    CorpusError
        The file is missing or empty, a line is not a JSON object, a required field is missing, empty or not a
        string, an optional field is not a string, or an id repeats (both line numbers are named).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(
            f"corpus file {path} does not exist; give a JSONL file with one {{id, title, text}} object per line, "
            "or 'hpo' for the built-in corpus."
        )
    docs: list[Document] = []
    first_line: dict[str, int] = {}
    for lineno, obj in _corpus_lines(path):
        where = f"{path} line {lineno}"
        doc = Document.from_dict(obj, where=where)
        if doc.id in first_line:
            raise CorpusError(
                f"{where}: duplicate id {doc.id!r} (first used on line {first_line[doc.id]}); ids must be unique."
            )
        first_line[doc.id] = lineno
        docs.append(doc)
    if not docs:
        raise CorpusError(f"corpus file {path} holds no documents; expected one JSON object per line.")
    from medlens.io import file_sha256

    prov = {"source": str(path), "sha256": file_sha256(path), "format": "jsonl"}
    return Corpus(docs, name=name or path.stem, provenance=prov)


def _corpus_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """The JSONL lines of a corpus file; a file or line that cannot be read is a :class:`CorpusError`."""
    try:
        yield from iter_jsonl(path, what="corpus file")
    except InputError as exc:
        raise CorpusError(str(exc)) from None


def write_corpus(corpus: Corpus | Iterable[Document], path: str | os.PathLike) -> Path:
    """Write documents as JSONL, atomically."""
    from medlens.io import atomic_write

    with atomic_write(path, "w") as fh:
        for doc in corpus:
            fh.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
    return Path(path)
