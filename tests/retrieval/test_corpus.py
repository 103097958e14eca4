"""Corpus files: valid documents, and every kind of bad input named with its file, line and field."""

from __future__ import annotations

import json

import pytest

from medlens.retrieval import Corpus, CorpusError, Document, read_corpus, write_corpus


def _file(tmp_path, lines):
    p = tmp_path / "c.jsonl"
    p.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return p


def test_read_valid_corpus_keeps_fields_and_extra_meta(tmp_path):
    p = _file(
        tmp_path,
        [
            {"id": 7, "title": " T ", "text": "body", "source": "s", "url": None, "diagnosis": "D", "tags": ["x"]},
            "",
            {"id": "b", "title": "B", "text": "more"},
        ],
    )
    c = read_corpus(p)
    assert c.name == "c"
    assert c.ids == ["7", "b"]
    assert len(c) == 2
    d = c["7"]
    assert (d.title, d.source, d.url, d.diagnosis, d.meta) == ("T", "s", None, "D", {"tags": ["x"]})
    assert d.candidate == "D"
    assert c["b"].candidate == "B"
    assert c.provenance["sha256"]
    assert c.provenance["format"] == "jsonl"


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ("{not json", ["line 1", "not valid JSON"]),
        ('["a"]', ["line 1", "expected a JSON object"]),
        ({"id": "a", "text": "x"}, ["line 1", "missing required field(s) 'title'"]),
        ({"id": "a", "title": "T", "text": "   "}, ["line 1", "field 'text' is empty"]),
        ({"id": "a", "title": 3, "text": "x"}, ["line 1", "field 'title' must be a string", "int"]),
        ({"id": "a", "title": "T", "text": "x", "url": 5}, ["line 1", "optional field 'url'"]),
    ],
)
def test_bad_lines_are_named(tmp_path, line, fragments):
    with pytest.raises(CorpusError) as err:
        read_corpus(_file(tmp_path, [line]))
    for f in fragments:
        assert f in str(err.value)
    assert "c.jsonl" in str(err.value)


def test_duplicate_ids_name_both_lines(tmp_path):
    p = _file(
        tmp_path,
        [
            {"id": "a", "title": "A", "text": "x"},
            {"id": "b", "title": "B", "text": "y"},
            {"id": "a", "title": "A2", "text": "z"},
        ],
    )
    with pytest.raises(CorpusError, match=r"line 3: duplicate id 'a' \(first used on line 1\)"):
        read_corpus(p)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nope.jsonl")
    with pytest.raises(CorpusError, match="holds no documents"):
        read_corpus(_file(tmp_path, ["", "  "]))


def test_round_trip_and_content_hash(tmp_path, corpus):
    out = write_corpus(corpus, tmp_path / "copy.jsonl")
    again = read_corpus(out)
    assert [d.to_dict() for d in again] == [d.to_dict() for d in corpus]
    assert again.content_hash() == corpus.content_hash()
    changed = Corpus([*corpus.documents[:-1], Document("rhombo", "R", "other text")], name="x")
    assert changed.content_hash() != corpus.content_hash()


def test_corpus_object_checks():
    with pytest.raises(CorpusError, match="duplicate document id 'a'"):
        Corpus([Document("a", "A", "x"), Document("a", "B", "y")], name="t")
    with pytest.raises(CorpusError, match="holds no documents"):
        Corpus([], name="t")
    with pytest.raises(KeyError, match="no document 'z'"):
        Corpus([Document("a", "A", "x")], name="t")["z"]
