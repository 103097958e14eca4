"""``fair run`` on an executor (fast: the local executor, and a fake Ray that pickles the task and sends the items as
JSON, ``tests/executors/_fake_ray.py``): the same rows and scores as the in-process run, block by block into the
same run folder, resumable either way; the executor reported, never part of the configuration; bad combinations
refused before anything loads. The real Ray run is in ``tests/executors/test_ray_llm.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from tests.executors._fake_ray import PickledExecutor

from medlens._validation import InputError
from medlens.executors import LocalExecutor
from medlens.fairness import run_fair_run, write_synthetic_fairvlmed
from medlens.llm import CallableClient, LLMConnectionError, LLMHTTPError

WORDS = ["cupped disc", "normal disc", "thin rim", "glaucoma", "no glaucoma"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))


def by_content(messages, **params):
    """Answers by the request's content only (text and image bytes), never by arrival order or process; a question
    marked LONG is refused (HTTP 413: an item's request failure, recorded)."""
    text = json.dumps(messages, sort_keys=True)
    if "LONG" in text:
        raise LLMHTTPError("prompt too long", status=413)
    k = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    return f"{WORDS[k % 5]} and {WORDS[(k // 5) % 5]}"


class ByContent:
    """A picklable client factory: what a worker calls to build its own client."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after

    def __call__(self):
        calls = []

        def fn(messages, **params):
            if self.fail_after is not None and len(calls) >= self.fail_after:
                raise LLMConnectionError("the scripted endpoint went away")
            calls.append(1)
            return by_content(messages, **params)

        return CallableClient(fn, model="by-content")


@pytest.fixture
def items(tmp_path) -> Path:
    """Five text-only VQA items, one of them refused by the model."""
    p = tmp_path / "Q.jsonl"
    rows = [
        {"id": f"q{i}", "question": f"Is the rim thin in eye {i}?" + (" LONG" if i == 3 else ""),
         "reference": "thin rim and cupped disc", "race": ["Asian", "White"][i % 2]}
        for i in range(5)
    ]  # fmt: skip
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("kind", ["vqa-text", "report-images"])
def test_executors_give_the_rows_and_scores_of_the_in_process_run(items, tmp_path, kind):
    """SLO images (report items of a FairVLMed folder) travel as paths and reach the model as in this process."""
    if kind == "vqa-text":
        data, opts = items, {"task": "vqa", "images": False, "metrics": ["bleu1", "rouge_l"]}
    else:
        data, opts = write_synthetic_fairvlmed(tmp_path / "fv", n=10, seed=1), {"task": "report"}
    client = ByContent()()
    base = run_fair_run(data, client, out=tmp_path / "here", **opts)
    assert base["executor"] == {"name": "local"}
    local = run_fair_run(data, client, out=tmp_path / "local", executor=LocalExecutor(), block_size=2, **opts)
    fake = PickledExecutor(seed=3)
    dist = run_fair_run(
        data, client, out=tmp_path / "fake", executor=fake, client_factory=ByContent(), block_size=2, **opts
    )
    assert fake.loads == 1  # the worker built its own client from the factory
    assert dist["executor"] == {"name": "fake-ray", "workers": 2}
    assert json.loads((tmp_path / "fake" / "manifest.json").read_text())["executor"] == dist["executor"]
    assert json.loads((tmp_path / "fake" / "summary.json").read_text())["executor"] == dist["executor"]
    want = rows_of(tmp_path / "here")
    assert len({r["prediction"] for r in want}) > 1  # answers differ by item, so equal rows compare something
    assert rows_of(tmp_path / "local") == want  # the local executor runs the blocks in order
    got = rows_of(tmp_path / "fake")
    assert [r["id"] for r in got] != [r["id"] for r in want]  # block-completion order ...
    assert by_id(got) == by_id(want)  # ... the same rows
    assert dist["counts"] == local["counts"] == base["counts"]
    assert (dist["mean"], dist["corpus"]) == (base["mean"], base["corpus"])
    assert (tmp_path / "fake" / "scores.csv").read_text() == (tmp_path / "here" / "scores.csv").read_text()
    hashes = {json.loads((tmp_path / d / "manifest.json").read_text())["config_hash"] for d in ("here", "fake")}
    assert len(hashes) == 1  # the executor is not configuration
    if kind == "vqa-text":
        assert (dist["counts"]["request_failures"], dist["n_empty"]) == (1, 1)


def test_a_worker_dying_keeps_the_finished_blocks_and_resumes_in_process(items, tmp_path):
    opts = {"task": "vqa", "images": False, "metrics": ["bleu1"]}
    whole = tmp_path / "whole"
    run_fair_run(items, ByContent()(), out=whole, **opts)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="worker died"):
        run_fair_run(
            items, ByContent()(), out=out, executor=PickledExecutor(seed=5, fail_at=1), client_factory=ByContent(),
            block_size=2, **opts,
        )  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["status"], manifest["counts"]["done"]) == ("interrupted", 2)  # one block came back, then died
    assert manifest["executor"]["name"] == "fake-ray"
    doc = run_fair_run(items, ByContent()(), out=out, **opts)  # resumed in this process
    assert (doc["counts"]["resumed"], doc["counts"]["answered"], doc["counts"]["done"]) == (2, 3, 5)
    assert doc["executor"] == {"name": "local"}
    assert by_id(rows_of(out)) == by_id(rows_of(whole))


def test_an_interrupted_in_process_run_resumes_on_an_executor(items, tmp_path):
    opts = {"task": "vqa", "images": False, "metrics": ["bleu1"]}
    whole = tmp_path / "whole"
    run_fair_run(items, ByContent()(), out=whole, **opts)
    out = tmp_path / "run"
    with pytest.raises(LLMConnectionError):
        run_fair_run(items, ByContent(fail_after=3)(), out=out, **opts)
    assert len(rows_of(out)) == 3
    doc = run_fair_run(
        items, ByContent()(), out=out, executor=PickledExecutor(seed=0), client_factory=ByContent(), block_size=1,
        **opts,
    )  # fmt: skip
    assert (doc["counts"]["resumed"], doc["counts"]["answered"]) == (3, 2)
    assert sorted(r["id"] for r in rows_of(out)) == [f"q{i}" for i in range(5)]  # every item exactly once
    assert by_id(rows_of(out)) == by_id(rows_of(whole))


def test_an_executor_run_refuses_threads_and_a_missing_factory(items, tmp_path):
    client, opts = ByContent()(), {"task": "vqa", "images": False}
    with pytest.raises(InputError, match="exclude each other"):
        run_fair_run(items, client, out=tmp_path / "a", workers=2, executor=LocalExecutor(), **opts)
    with pytest.raises(InputError, match="loads the model in each worker; give client_factory"):
        run_fair_run(items, client, out=tmp_path / "b", executor=PickledExecutor(), **opts)
    with pytest.raises(InputError, match="block_size"):
        run_fair_run(items, client, out=tmp_path / "c", executor=LocalExecutor(), block_size=0, **opts)
    with pytest.raises(InputError, match="'spark'"):
        run_fair_run(items, client, out=tmp_path / "d", executor="spark", **opts)
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_cli_executor_refusals_and_a_missing_ray(items, tmp_path, monkeypatch, capsys):
    from tests.cli.conftest import cli_runner
    from tests.cli.test_cli import assert_user_error

    cli = cli_runner(capsys)
    base = ["fair", "run", "--data", items, "--task", "vqa", "--text-only", "--out", tmp_path / "o"]
    local = ["--model-path", tmp_path / "no-such-model"]  # never loaded: the options are refused first
    assert_user_error(
        cli(*base, "--llm-url", "http://127.0.0.1:9/v1", "--model", "m", "--executor", "ray"),
        "--executor ray runs a --model-path model on Ray actors",
        "--workers N",
    )
    assert_user_error(cli(*base, *local, "--ray-address", "auto"), "--ray-address applies to --executor ray only")
    assert_user_error(cli(*base, *local, "--executor", "ray", "--rate-limit", "3"), "--rate-limit", "--executor ray")
    assert_user_error(cli(*base, *local, "--workers", "2"), "--workers overlaps", "add --executor ray")
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert_user_error(cli(*base, *local, "--executor", "ray", "--workers", "2"), 'pip install "medlens[ray]"')
    assert not (tmp_path / "o").exists()
