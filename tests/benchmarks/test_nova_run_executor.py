"""``nova_run`` on an executor (fast: the local executor, and a fake Ray that pickles the task and sends the items
as JSON, ``tests/executors/_fake_ray.py``): the same rows as the in-process run, block by block into the same
run folder, resumable either way; the executor reported, never part of the configuration; bad combinations
refused before anything loads. The real Ray runs are in ``tests/executors/test_ray_llm.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from tests.benchmarks.conftest import FILENAMES, write_struct
from tests.executors._fake_ray import PickledExecutor

from medlens._validation import InputError
from medlens.benchmarks.nova import load_nova
from medlens.benchmarks.nova._run import nova_run
from medlens.executors import LocalExecutor
from medlens.llm import CallableClient, LLMConnectionError

NAMES = ["Meningioma", "Glioma", "Abscess", "Lymphoma"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))


def by_content(messages, **params):
    """Answers by the request's content only (text and image bytes), never by arrival order or process."""
    k = int(hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest(), 16)
    if "boxes" in json.dumps(messages):
        return json.dumps({"boxes": [[k % 100, 0, 100 + k % 50, 200]], "scores": [0.5]})
    return json.dumps({"primary": NAMES[k % 4], "differentials": [NAMES[(k // 4) % 4]]})


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

        return CallableClient(fn)


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def by_name(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["filename"])


@pytest.mark.parametrize(("task", "setting"), [("diagnosis", "text"), ("localization", "image")])
@pytest.mark.parametrize("layout", ["v1", "struct"])
def test_executors_give_the_rows_of_the_in_process_run(nova_dir, tmp_path, task, setting, layout):
    """Image paths (v1) and embedded image bytes (struct, sent as base64) reach the model the same way."""
    data = nova_dir if layout == "v1" else write_struct(tmp_path / "struct")
    ds = load_nova(data)
    client = CallableClient(by_content)
    base = nova_run(ds, client, tmp_path / "here", task=task, setting=setting)
    assert base["executor"] == {"name": "local"}
    local = nova_run(ds, client, tmp_path / "local", task=task, setting=setting, executor=LocalExecutor(), block_size=2)
    fake = PickledExecutor(seed=3)  # blocks finish in the order 2, 1, 0
    dist = nova_run(
        ds, client, tmp_path / "fake", task=task, setting=setting, executor=fake, client_factory=ByContent(),
        block_size=2,
    )  # fmt: skip
    assert fake.loads == 1  # the worker built its own client from the factory
    assert dist["executor"] == {"name": "fake-ray", "workers": 2}
    assert (dist["task"], dist["setting"], dist["status"]) == (task, setting, "complete")
    assert json.loads((tmp_path / "fake" / "manifest.json").read_text())["executor"] == dist["executor"]
    want = rows_of(tmp_path / "here")
    assert [r["filename"] for r in want] == FILENAMES
    assert rows_of(tmp_path / "local") == want  # the local executor runs the blocks in order
    got = rows_of(tmp_path / "fake")
    assert [r["filename"] for r in got] != FILENAMES  # block-completion order ...
    assert by_name(got) == by_name(want)  # ... the same rows
    assert dist["counts"] == local["counts"] == base["counts"]
    assert local["executor"] == {"name": "local"}
    hashes = {json.loads((tmp_path / d / "manifest.json").read_text())["config_hash"] for d in ("here", "fake")}
    assert len(hashes) == 1  # the executor is not configuration


def test_a_worker_dying_keeps_the_finished_blocks_and_resumes_on_another_executor(nova, tmp_path):
    client = CallableClient(by_content)
    whole = tmp_path / "whole"
    nova_run(nova, client, whole, task="diagnosis", setting="text")
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="worker died"):
        nova_run(
            nova, client, out, task="diagnosis", setting="text", executor=PickledExecutor(seed=5, fail_at=1),
            client_factory=ByContent(), block_size=2,
        )  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["status"], manifest["counts"]["done"]) == ("interrupted", 2)  # block 1 came back, then it died
    assert len(rows_of(out)) == 2
    summary = nova_run(nova, client, out, task="diagnosis", setting="text")  # resumed in this process
    assert (summary["status"], summary["counts"]["done"], summary["counts"]["remaining"]) == ("complete", 5, 0)
    assert by_name(rows_of(out)) == by_name(rows_of(whole))


def test_an_interrupted_in_process_run_resumes_on_an_executor(nova, tmp_path):
    whole = tmp_path / "whole"
    nova_run(nova, CallableClient(by_content), whole, task="diagnosis", setting="text")
    out = tmp_path / "run"
    with pytest.raises(LLMConnectionError):
        nova_run(nova, ByContent(fail_after=3)(), out, task="diagnosis", setting="text")
    assert len(rows_of(out)) == 3
    fake = PickledExecutor(seed=0)
    summary = nova_run(
        nova, CallableClient(by_content), out, task="diagnosis", setting="text", executor=fake,
        client_factory=ByContent(), block_size=1,
    )  # fmt: skip
    assert summary["counts"]["done"] == 5
    ids = [r["filename"] for r in rows_of(out)]
    assert sorted(ids) == sorted(FILENAMES)  # every image exactly once
    assert by_name(rows_of(out)) == by_name(rows_of(whole))


def test_an_executor_run_refuses_threads_and_a_missing_factory(nova, tmp_path):
    client = CallableClient(by_content)
    with pytest.raises(InputError, match="exclude each other"):
        nova_run(nova, client, tmp_path / "a", task="diagnosis", workers=2, executor=LocalExecutor())
    with pytest.raises(InputError, match="loads the model in each worker; give client_factory"):
        nova_run(nova, client, tmp_path / "b", task="diagnosis", executor=PickledExecutor())
    with pytest.raises(InputError, match="block_size"):
        nova_run(nova, client, tmp_path / "c", task="diagnosis", executor=LocalExecutor(), block_size=0)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_cli_executor_refusals_and_a_missing_ray(nova_dir, tmp_path, monkeypatch, capsys):
    from tests.cli.conftest import cli_runner
    from tests.cli.test_cli import assert_user_error

    cli = cli_runner(capsys)
    base = ["nova", "run", "--data", nova_dir, "--task", "diagnosis", "--setting", "text", "--out", tmp_path / "o"]
    local = ["--model-path", tmp_path / "no-such-model"]  # never loaded: the options are refused first
    assert_user_error(
        cli(*base, "--llm-url", "http://127.0.0.1:9/v1", "--model", "m", "--executor", "ray"),
        "--executor ray runs a --model-path model on Ray actors",
        "--workers N",
    )
    assert_user_error(cli(*base, *local, "--ray-address", "auto"), "--ray-address applies to --executor ray only")
    assert_user_error(cli(*base, *local, "--executor", "ray", "--rate-limit", "3"), "--rate-limit", "--executor ray")
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert_user_error(cli(*base, *local, "--executor", "ray", "--workers", "2"), 'pip install "medlens[ray]"')
    assert not (tmp_path / "o").exists()
