"""Run folders across processes: the exclusive lock, and a run killed with SIGKILL mid-write that resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medlens.io import RunFolder, RunFolderLocked

SRC = str(Path(__file__).resolve().parents[2] / "src")

HOLD = """
import sys
from medlens.io import RunFolder
with RunFolder(sys.argv[1], {"model": "m"}) as run:
    run.write_manifest(status="running")
    print("ready", flush=True)
    sys.stdin.readline()
"""

# A deterministic run of 8 items; with KILL_AT set, the process writes half of that item's line and kills itself.
WORK = """
import hashlib, json, os, signal, sys
from medlens.io import RunFolder, RunLog

out, kill_at = sys.argv[1], int(sys.argv[2])
append = RunLog.append

def dying_append(self, record):
    if record["id"] == kill_at:
        line = json.dumps(record)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line[: len(line) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    append(self, record)

RunLog.append = dying_append
with RunFolder(out, {"items": 8}, outputs=("results.jsonl",)) as run:
    log = run.log("results.jsonl", key="id")
    run.write_manifest(status="running", done=len(log))
    for i in range(8):
        if i in log:
            continue
        log.append({"id": i, "value": hashlib.sha256(str(i).encode()).hexdigest()})
        run.write_manifest(status="running", done=len(log))
    run.write_manifest(status="complete", done=len(log))
"""


def _python(code: str, *args: object, **kw):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, **kw)


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    holder = _python(HOLD, tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(RunFolderLocked, match=rf"{tmp_path} is in use by another run \(PID {holder.pid}\)"):
            RunFolder(tmp_path, {"model": "m"}).open()
        # whatever its configuration: the lock is taken before the manifest is read
        with pytest.raises(RunFolderLocked, match=rf"PID {holder.pid}"):
            RunFolder(tmp_path, {"model": "other"}, overwrite=True).open()
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    with RunFolder(tmp_path, {"model": "m"}) as run:  # released when the holder ends
        assert run.previous_hash == run.config_hash


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunFolder(tmp_path, {}), pytest.raises(RunFolderLocked, match=rf"PID {os.getpid()}"):
        RunFolder(tmp_path, {}).open()


def test_sigkill_mid_write_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _python(WORK, whole, -1).wait(timeout=120) == 0
    proc = _python(WORK, killed, 5)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    text = (killed / "results.jsonl").read_text(encoding="utf-8")
    assert not text.endswith("\n")  # killed mid-line, holding the lock
    assert json.loads((killed / "manifest.json").read_text(encoding="utf-8"))["status"] == "running"
    assert _python(WORK, killed, -1).wait(timeout=120) == 0  # the dead process's lock does not block the resume
    assert (killed / "results.jsonl").read_bytes() == (whole / "results.jsonl").read_bytes()
    manifests = [json.loads((d / "manifest.json").read_text(encoding="utf-8")) for d in (whole, killed)]
    assert manifests[0] == manifests[1]
    assert manifests[0]["done"] == 8
