"""Atomic writes, run folders (manifest, resume, overwrite, append-only JSONL logs) and read_jsonl."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from medlens._provenance import config_hash
from medlens._validation import InputError
from medlens.io import (
    RunFolder,
    RunManifestMismatch,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    prepare_run_dir,
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
def _run(path, config, **kw):
    return RunFolder(path, config, outputs=("results.jsonl",), **kw)


def test_run_appends_and_resumes(tmp_path):
    cfg = {"model": "m", "k": 1}
    with _run(tmp_path / "run", cfg, provenance={"command": "test"}) as run:
        run.write_manifest()
        log = run.log()
        assert log.ids() == set()
        log.append({"id": "a", "score": 1.0})
        log.append({"id": "b", "score": np.float64(2.0)})
        # flushed per item: another reader sees both lines before close
        assert [r["id"] for r in read_jsonl(log.path)] == ["a", "b"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config_hash"] == config_hash(cfg)
    assert manifest["config"] == cfg
    assert manifest["provenance"] == {"command": "test"}
    assert "schema_version" in manifest
    # same config, keys in another order: resumes
    with _run(tmp_path / "run", {"k": 1, "model": "m"}) as run:
        log = run.log()
        assert log.ids() == {"a", "b"}
        assert "a" in log
        assert len(log) == 2
        log.append({"id": "c", "score": 3.0})
        assert [r["id"] for r in log.records()] == ["a", "b", "c"]
    lines = (tmp_path / "run" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(json.loads(line) for line in lines)


def test_run_custom_key_and_missing_key(tmp_path):
    with RunFolder(tmp_path, {}) as run:
        log = run.log("history.jsonl", key="case")
        log.append({"case": 7})
        assert log.ids() == {7}
        with pytest.raises(InputError, match=r"needs the key field 'case'; got fields \['id'\]"):
            log.append({"id": "x"})


def test_run_log_refuses_a_duplicate_id(tmp_path):
    with _run(tmp_path, {"model": "m"}) as run:
        run.write_manifest()
        log = run.log()
        log.append({"id": "a", "score": 1})
        with pytest.raises(InputError, match=r"already holds id 'a' \(record 1\); a run writes each item once"):
            log.append({"id": "a", "score": 2})
        log.append({"id": "b"})
        with pytest.raises(InputError, match="already holds id 'b'"):
            log.append({"id": "b"})
    assert [r["id"] for r in read_jsonl(tmp_path / "results.jsonl")] == ["a", "b"]
    # after a reopen too; and a file that already repeats an id (two writers at once) is named, not resumed
    with _run(tmp_path, {"model": "m"}) as run, pytest.raises(InputError, match="already holds id 'a'"):
        run.log().append({"id": "a"})
    with open(tmp_path / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"id": "a", "score": 3}\n')
    with _run(tmp_path, {"model": "m"}) as run, pytest.raises(InputError, match=r"record 3 repeats id 'a' of record 1"):
        run.log()
    with _run(tmp_path, {"model": "m"}, overwrite=True) as run:
        assert run.log().ids() == set()


def test_run_repairs_truncated_last_line(tmp_path):
    cfg = {"model": "m"}
    with _run(tmp_path, cfg) as run:
        run.write_manifest()
        log = run.log()
        log.append({"id": "a"})
        log.append({"id": "b"})
    results = tmp_path / "results.jsonl"
    with open(results, "ab") as fh:
        fh.write(b'{"id": "c", "sco')  # killed mid-write
    with _run(tmp_path, cfg) as run:
        log = run.log()
        assert log.ids() == {"a", "b"}  # the partial record is dropped, not an error
        log.append({"id": "c", "score": 1})
    assert [r["id"] for r in read_jsonl(results)] == ["a", "b", "c"]
    assert results.read_bytes().endswith(b"\n")


def test_run_refuses_a_different_config(tmp_path):
    (tmp_path / "notes.txt").write_text("not the run's", encoding="utf-8")
    with _run(tmp_path, {"model": "m"}) as run:
        run.write_manifest()
        run.log().append({"id": "a"})
    with pytest.raises(RunManifestMismatch, match=r"different configuration .*--overwrite"):
        _run(tmp_path, {"model": "other"}).open()
    assert issubclass(RunManifestMismatch, InputError)
    assert issubclass(RunManifestMismatch, ValueError)
    # the refused attempt changed nothing (and released the folder)
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["config"] == {"model": "m"}
    with _run(tmp_path, {"model": "m"}) as run:
        assert run.log().ids() == {"a"}
    # overwrite discards the old results and records the new config; other files in the folder are kept
    with _run(tmp_path, {"model": "other"}, overwrite=True) as run:
        assert run.discarded
        run.write_manifest()
        log = run.log()
        assert log.ids() == set()
        log.append({"id": "z"})
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["config"] == {"model": "other"}
    with _run(tmp_path, {"model": "other"}) as run:
        assert run.log().ids() == {"z"}
    # --overwrite starts again even with the same configuration
    with _run(tmp_path, {"model": "other"}, overwrite=True) as run:
        assert run.log().ids() == set()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "not the run's"


def test_run_results_without_a_manifest_or_with_a_broken_one_are_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(RunManifestMismatch, match=r"config hash none vs"):
        _run(tmp_path, {"model": "m"}).open()
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunManifestMismatch, match=r"config hash \? vs"):
        _run(tmp_path, {"model": "m"}).open()


def test_run_without_auto_resume_needs_resume_or_overwrite(tmp_path):
    cfg = {"epochs": 2}
    outputs = ("history.jsonl", "checkpoints")
    with RunFolder(tmp_path, cfg, outputs=outputs, resume=False) as run:  # nothing there yet: a fresh run
        run.write_manifest(status="running")
        (run.subdir("checkpoints") / "epoch-1.safetensors").write_bytes(b"w")
        run.log("history.jsonl", key="epoch").append({"epoch": 1, "loss": 0.5})
    with pytest.raises(InputError, match=r"already holds this run \(history.jsonl, checkpoints\); pass --resume"):
        RunFolder(tmp_path, cfg, outputs=outputs, resume=False).open()
    with RunFolder(tmp_path, cfg, outputs=outputs) as run:
        assert len(run.log("history.jsonl", key="epoch")) == 1
    with RunFolder(tmp_path, cfg, outputs=outputs, resume=False, overwrite=True) as run:
        assert not (tmp_path / "checkpoints").exists()
        assert len(run.log("history.jsonl", key="epoch")) == 0


def test_resume_from_names_the_file_a_run_continues_from(tmp_path):
    """A training-style run: only its checkpoint needs --resume, and --overwrite --resume keeps this config's run."""
    cfg = {"epochs": 2}
    outputs = ("checkpoint.bin", "history.jsonl", "model.bin")

    def folder(config=cfg, **kw):
        return RunFolder(tmp_path, config, outputs=outputs, resume_from="checkpoint.bin", **kw)

    with folder(resume=False) as run:
        run.write_manifest()
        (tmp_path / "history.jsonl").write_text("{}\n")
    with folder(resume=False) as run:  # a history alone is not a run to continue
        pass
    (tmp_path / "checkpoint.bin").write_bytes(b"w")
    (tmp_path / "model.bin").write_bytes(b"m")
    with pytest.raises(InputError, match=r"already holds a checkpoint of this run; pass --resume"):
        folder(resume=False).open()
    with folder(resume=True, overwrite=True) as run:  # --overwrite --resume, same config: continued
        assert not run.discarded
    assert (tmp_path / "checkpoint.bin").exists()
    assert (tmp_path / "model.bin").exists()
    with folder(resume=False, overwrite=True) as run:  # --overwrite alone: restarted
        assert run.discarded
    assert not any((tmp_path / name).exists() for name in outputs)
    (tmp_path / "checkpoint.bin").write_bytes(b"w")
    with folder({"epochs": 3}, resume=True, overwrite=True) as run:  # another config: discarded even with resume
        run.write_manifest()
        assert run.discarded
    assert not (tmp_path / "checkpoint.bin").exists()


def test_legacy_files_are_refused_until_overwrite_deletes_them(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"pickle")
    for resume in (True, False):
        with pytest.raises(
            InputError, match=r"model.pt was written by an older version and is never read; pass --over"
        ):
            RunFolder(tmp_path, {"a": 1}, legacy=["model.pt"], resume=resume).open()
    with pytest.raises(InputError, match=r"model.pt is old \(see\)"):
        RunFolder(tmp_path, {"a": 1}, legacy=["model.pt"], legacy_message="{path} is old (see)").open()
    with RunFolder(tmp_path, {"a": 1}, legacy=["model.pt"], overwrite=True):
        pass
    assert not (tmp_path / "model.pt").exists()


def test_run_out_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="exists and is not a folder"):
        RunFolder(f, {}).open()


def test_prepare_run_dir_reports_a_discarded_config(tmp_path):
    assert prepare_run_dir(tmp_path, {"a": 1}) is False
    assert prepare_run_dir(tmp_path, {"a": 1}) is False
    with pytest.raises(RunManifestMismatch, match="different configuration"):
        prepare_run_dir(tmp_path, {"a": 2})
    assert prepare_run_dir(tmp_path, {"a": 1}, overwrite=True) is False
    assert prepare_run_dir(tmp_path, {"a": 2}, overwrite=True) is True
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["config"] == {"a": 2}


def test_log_and_manifest_need_an_open_folder(tmp_path):
    run = RunFolder(tmp_path, {})
    with pytest.raises(RuntimeError, match="open the RunFolder first"):
        run.log()
    with pytest.raises(RuntimeError, match="open the RunFolder first"):
        run.write_manifest()


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
