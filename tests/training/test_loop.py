"""The shared training loop: exact resume, the run folder's refuse / resume / restart rules, the history."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from tests.training.test_checkpoint import plant_pickle  # noqa: E402

from medlens._provenance import provenance  # noqa: E402
from medlens._validation import InputError  # noqa: E402
from medlens.training import (  # noqa: E402
    CHECKPOINT,
    HISTORY,
    Trainer,
    adamw,
    cosine_with_warmup,
    open_training_run,
    seed_torch,
)

X = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5, 0.0], dtype=np.float32))[:, None]
CONFIG = {"what": "toy regression", "epochs": 4}


class Stop(Exception):
    pass


def _train(out=None, *, resume=False, overwrite=False, stop_after=None, epochs=4):
    seed_torch(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    opt = adamw([{"params": model.parameters(), "lr": 1e-2, "weight_decay": 0.01}, {"params": []}])
    sched = cosine_with_warmup(opt, warmup_steps=2, total_steps=epochs * 6)
    run = None
    if out is not None:
        prov = provenance(command="test", config=CONFIG, seed=0)
        run = open_training_run(
            out, CONFIG, resume=resume, overwrite=overwrite, outputs=("final.txt",), legacy=("old.pt",), provenance=prov
        )
    trainer = Trainer(model, opt, sched, epochs=epochs, seed=0, max_grad_norm=1.0, run=run)
    start = trainer.resume() if resume else 0
    x, y = torch.as_tensor(X), torch.as_tensor(Y)

    def plan(rng):
        perm = rng.permutation(len(X))
        return [(perm[s : s + 4], 4) for s in range(0, len(X), 4)]

    def step(idx):
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        return loss, {"mse": float(loss.detach())}

    def callback(epoch, row):
        if stop_after is not None and epoch == stop_after:
            raise Stop

    history = trainer.fit(plan, step, n_items=len(X), callback=callback)
    return model, history, start


def test_training_lowers_the_loss_and_reports_each_epoch():
    _, history, _ = _train()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(h["train_mse"] == pytest.approx(h["train_loss"]) for h in history)


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path):
    whole, hist_a, _ = _train(tmp_path / "a")
    with pytest.raises(Stop):
        _train(tmp_path / "b", stop_after=2)
    with pytest.raises(InputError, match="already holds a checkpoint of this run; pass --resume"):
        _train(tmp_path / "b")
    resumed, hist_b, start = _train(tmp_path / "b", resume=True)
    assert start == 2
    for (ka, a), (kb, b) in zip(whole.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert ka == kb
        assert torch.equal(a, b), ka
    assert [h["train_loss"] for h in hist_a] == [h["train_loss"] for h in hist_b]


def test_history_jsonl_rows_carry_provenance(tmp_path):
    _, history, _ = _train(tmp_path / "r")
    rows = [json.loads(line) for line in (tmp_path / "r" / HISTORY).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(r["schema_version"] and r["provenance"]["command"] == "test" for r in rows)
    assert [r["train_loss"] for r in rows] == [h["train_loss"] for h in history]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["provenance"]["command"] == "test"


def test_resume_with_nothing_to_resume_is_a_fresh_run(tmp_path):
    fresh, _, _ = _train()
    again, _, start = _train(tmp_path / "empty", resume=True)
    assert start == 0
    for a, b in zip(fresh.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_overwrite_restarts_and_deletes_the_old_outputs(tmp_path):
    out = tmp_path / "r"
    _train(out, epochs=4)
    (out / "final.txt").write_text("from the old run")
    _, history, start = _train(out, overwrite=True)
    assert start == 0
    assert len(history) == 4
    assert not (out / "final.txt").exists()
    # --overwrite with --resume keeps a finished run of the same configuration
    _, history, start = _train(out, overwrite=True, resume=True)
    assert start == 4
    assert len(history) == 4


def test_a_pickle_of_an_older_version_is_refused_and_never_loaded(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    marker = tmp_path / "pwned"
    plant_pickle(out / "old.pt", marker)
    for resume in (False, True):
        with pytest.raises(InputError, match=r"old.pt was written by an older medlens as a pickle.*--overwrite"):
            _train(out, resume=resume)
    _, history, start = _train(out, overwrite=True, resume=True)  # --overwrite deletes it and trains afresh
    assert start == 0
    assert len(history) == 4
    assert not (out / "old.pt").exists()
    assert not marker.exists()


def test_a_checkpoint_of_another_run_or_model_is_refused(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(Stop):
        _train(out, stop_after=1)
    # a checkpoint with foreign tensors
    from medlens.training import load_checkpoint, save_checkpoint

    state = load_checkpoint(out / CHECKPOINT)
    state["model"]["extra.weight"] = torch.ones(1)
    save_checkpoint(out / CHECKPOINT, state)
    with pytest.raises(InputError, match=r"does not fit this model \(unknown keys \['extra.weight'\]\)"):
        _train(out, resume=True)
    # a checkpoint whose config hash is not the run's
    state["model"].pop("extra.weight")
    state["config_hash"] = "0" * 64
    save_checkpoint(out / CHECKPOINT, state)
    with pytest.raises(InputError, match="belongs to another configuration"):
        _train(out, resume=True)
    # a tensor of the wrong shape
    state["config_hash"] = json.loads((out / "manifest.json").read_text())["config_hash"]
    state["model"]["0.weight"] = torch.ones(2, 2)
    save_checkpoint(out / CHECKPOINT, state)
    with pytest.raises(InputError, match=r"does not fit this run \(RuntimeError"):
        _train(out, resume=True)


def test_the_run_folder_is_locked_until_training_ends(tmp_path):
    from medlens.io import RunFolderLocked

    out = tmp_path / "r"
    run = open_training_run(out, CONFIG)
    with pytest.raises(RunFolderLocked, match=rf"in use by another run \(PID {os.getpid()}\)"):
        open_training_run(out, CONFIG, resume=True)
    run.close()
    with pytest.raises(Stop):
        _train(out, stop_after=1)
    _, history, start = _train(out, resume=True)  # the stopped run released the folder
    assert start == 1
    assert len(history) == 4
    open_training_run(out, CONFIG, resume=True).close()  # and so did the finished one


def test_nothing_to_train_is_a_clear_error():
    with pytest.raises(InputError, match="nothing to train"):
        adamw([{"params": []}])
