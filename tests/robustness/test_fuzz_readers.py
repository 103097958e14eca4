"""Hypothesis-generated garbage for every file reader: each either reads the file or raises one InputError
naming the file; never another exception (which the CLI would report as an internal error)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.taxonomy import load_taxonomy

TAX = load_taxonomy("chexpert_pham")
NODES = list(TAX.nodes)

# bytes that look like the format about half of the time: real tokens, separators and noise
_tokens = st.sampled_from(
    [
        *NODES[:6],
        "id",
        "label",
        "text",
        "root",
        ",",
        ";",
        "\n",
        '"',
        "{",
        "}",
        "[",
        "]",
        ":",
        "0",
        "1",
        "0.5",
        "nan",
        "-1",
        "1e308",
        "[Term]",
        "id: T:1",
        "is_a:",
        "is_a: T:2",
        "name: x",
        "children:",
        "  - a",
        "\t",
        "\x00",
        "é",
    ]
)
_texty = st.lists(_tokens, max_size=40).map(lambda xs: "".join(xs).encode("utf-8"))
_garbage = st.one_of(
    _texty, st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _readers():
    from medlens.agents import read_cases
    from medlens.hierarchy import read_label_table, read_prompt_file, read_score_table
    from medlens.io import read_jsonl, read_texts
    from medlens.retrieval import read_corpus
    from medlens.risk import RiskConstrainedThresholder
    from medlens.taxonomy import read_taxonomy_file

    return {
        "taxonomy.json": read_taxonomy_file,
        "taxonomy.yaml": read_taxonomy_file,
        "taxonomy.obo": read_taxonomy_file,
        "truth.csv": lambda p: read_label_table(p, TAX),
        "scores.csv": lambda p: read_score_table(p, TAX),
        "leaf_scores.csv": lambda p: read_score_table(p, TAX, from_leaves="max"),
        "rows.jsonl": lambda p: list(read_jsonl(p)),
        "texts.txt": read_texts,
        "texts.csv": read_texts,
        "texts.jsonl": read_texts,
        "corpus.jsonl": read_corpus,
        "cases.jsonl": read_cases,
        "prompts.json": read_prompt_file,
        "thresholds.json": RiskConstrainedThresholder.load,
    }


@pytest.mark.parametrize("filename", sorted(_readers()))
@FUZZ
@given(data=_garbage)
def test_reader_reads_or_refuses_cleanly(filename, data, tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("fuzz")) / filename
    path.write_bytes(data)
    try:
        _readers()[filename](path)
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg.strip() or len(msg) < 2000
        assert path.name in msg or str(path) in msg, msg
    except UnicodeDecodeError as exc:  # pragma: no cover - the failure this test exists to catch
        raise AssertionError(f"{filename}: undecodable bytes escaped as {exc!r}") from None


@pytest.mark.parametrize("filename", ["taxonomy.json", "thresholds.json", "prompts.json"])
@FUZZ
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
        max_leaves=20,
    )
)
def test_json_readers_refuse_wrong_shapes(filename, value, tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("fuzz")) / filename
    path.write_text(json.dumps(value))
    with contextlib.suppress(InputError):
        _readers()[filename](path)
