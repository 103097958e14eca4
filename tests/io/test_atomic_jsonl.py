"""Atomic writes and append-and-resume JSONL runs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from medlens._provenance import config_hash
from medlens._validation import InputError
from medlens.io import (
    JsonlRun,
    RunManifestMismatch,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    read_jsonl,
)


# ------------------------------------------------------------------------------------------------ atomic writes
def test_atomic_write_replaces_on_success(tmp_path):
    path = tmp_path / "sub" / "out.txt"  # parent folders are created
    with atomic_write(path) as fh:
        fh.write("new")
        assert not path.exists()  # nothing visible until the block succeeds
    assert path.read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_atomic_write_keeps_old_file_when_block_raises(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")

    def fail() -> None:
        with atomic_write(path) as fh:
            fh.write("half-written")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # the temporary file is gone


def test_atomic_write_keeps_old_file_on_keyboard_interrupt(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def interrupted() -> None:
        with atomic_write(path, "wb") as fh:
            fh.write(b"partial")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert path.read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 1


def test_atomic_helpers(tmp_path):
    assert atomic_write_text(tmp_path / "a.txt", "héllo").read_text(encoding="utf-8") == "héllo"
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    obj = {"x": np.float32(0.5), "n": np.int64(3), "arr": np.arange(3), "nan": float("nan"), "s": {"b", "a"}}
    p = atomic_write_json(tmp_path / "c.json", obj)
    text = p.read_text(encoding="utf-8")
    assert "NaN" not in text  # strict JSON: NaN becomes null
    assert json.loads(text) == {"x": 0.5, "n": 3, "arr": [0, 1, 2], "nan": None, "s": ["a", "b"]}
    assert file_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------- JSONL runs
def test_run_appends_and_resumes(tmp_path):
    cfg = {"model": "m", "k": 1}
    with JsonlRun(tmp_path / "run", config=cfg, provenance={"command": "test"}) as run:
        assert run.done_ids() == set()
        run.append({"id": "a", "score": 1.0})
        run.append({"id": "b", "score": np.float64(2.0)})
        # flushed per item: another reader sees both lines before close
        assert [r["id"] for r in read_jsonl(run.results_path)] == ["a", "b"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config_hash"] == config_hash(cfg)
    assert manifest["config"] == cfg
    assert manifest["provenance"] == {"command": "test"}
    assert "schema_version" in manifest
    # same config, keys in another order: resumes
    with JsonlRun(tmp_path / "run", config={"k": 1, "model": "m"}) as run:
        assert run.done_ids() == {"a", "b"}
        run.append({"id": "c", "score": 3.0})
        assert [r["id"] for r in run.records()] == ["a", "b", "c"]
    lines = (tmp_path / "run" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(json.loads(line) for line in lines)


def test_run_custom_key_and_missing_key(tmp_path):
    with JsonlRun(tmp_path, config={}, key="case") as run:
        run.append({"case": 7})
        assert run.done_ids() == {7}
        with pytest.raises(InputError, match=r"needs the key field 'case'; got fields \['id'\]"):
            run.append({"id": "x"})


def test_run_repairs_truncated_last_line(tmp_path):
    cfg = {"model": "m"}
    with JsonlRun(tmp_path, config=cfg) as run:
        run.append({"id": "a"})
        run.append({"id": "b"})
    results = tmp_path / "results.jsonl"
    with open(results, "ab") as fh:
        fh.write(b'{"id": "c", "sco')  # killed mid-write
    with JsonlRun(tmp_path, config=cfg) as run:
        assert run.done_ids() == {"a", "b"}  # the partial record is dropped, not an error
        run.append({"id": "c", "score": 1})
    assert [r["id"] for r in read_jsonl(results)] == ["a", "b", "c"]
    assert results.read_bytes().endswith(b"\n")


def test_run_refuses_a_different_config(tmp_path):
    with JsonlRun(tmp_path, config={"model": "m"}) as run:
        run.append({"id": "a"})
    with pytest.raises(RunManifestMismatch, match=r"different configuration .*--overwrite"):
        JsonlRun(tmp_path, config={"model": "other"})
    assert issubclass(RunManifestMismatch, InputError)
    assert issubclass(RunManifestMismatch, ValueError)
    # the refused attempt changed nothing
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["config"] == {"model": "m"}
    assert JsonlRun(tmp_path, config={"model": "m"}).done_ids() == {"a"}
    # overwrite discards the old results and records the new config
    with JsonlRun(tmp_path, config={"model": "other"}, overwrite=True) as run:
        assert run.done_ids() == set()
        run.append({"id": "z"})
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["config"] == {"model": "other"}
    assert JsonlRun(tmp_path, config={"model": "other"}).done_ids() == {"z"}


def test_run_out_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="exists and is not a folder"):
        JsonlRun(f, config={})


# ------------------------------------------------------------------------------------------------- read_jsonl
def test_read_jsonl_names_the_bad_line(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": 1}\n\n{"id": 2}\n{"id": 3,\n{"id": 4}\n', encoding="utf-8")
    it = read_jsonl(p)
    assert next(it) == {"id": 1}
    assert next(it) == {"id": 2}  # blank lines are skipped
    with pytest.raises(InputError, match=r"r\.jsonl: line 4 is not valid JSON"):
        next(it)


def test_read_jsonl_requires_objects(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 must be a JSON object; got list"):
        list(read_jsonl(p))
