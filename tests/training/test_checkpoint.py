"""Checkpoints in safetensors + JSON: exact round trips, and nothing ever unpickled from a file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from medlens._validation import InputError  # noqa: E402
from medlens.training import load_checkpoint, read_safetensors, save_checkpoint, write_safetensors  # noqa: E402


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: the shape of a crafted model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plant_pickle(path: Path, marker: Path) -> Path:
    """Write a torch-style pickle at ``path`` whose loading would create ``marker``; check the payload is live."""
    probe = marker.with_name(marker.name + ".probe")
    pickle.loads(pickle.dumps(_Payload(probe)))  # the payload really runs when unpickled...
    assert probe.exists()
    probe.unlink()
    torch.save({"model": _Payload(marker), "epoch": 1}, path)  # ...so a loader that unpickles would run it
    return path


def _trained_adamw():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(
        [{"params": [lin.weight], "lr": 1e-3}, {"params": [lin.bias], "lr": 3e-2, "weight_decay": 0.0}]
    )
    for _ in range(3):
        opt.zero_grad()
        lin(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    return lin, opt


def test_round_trip_is_exact(tmp_path):
    lin, opt = _trained_adamw()
    state = {
        "epoch": 3,
        "model": {k: v.clone() for k, v in lin.state_dict().items()},
        "optimizer": opt.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "history": [{"epoch": 1, "train_loss": 0.1 + 0.2, "val": None, "nan": float("nan")}],
        "pair": (1, "a"),
        "ints": {0: "zero", 7: [1.5, 2]},
        "__odd": {"__tensor__": "not a reference"},
        "empty": torch.zeros((0, 4)),
        "flag": torch.tensor([True, False]),
    }
    path = save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(path)
    assert back["epoch"] == 3
    assert back["pair"] == (1, "a")
    assert back["ints"] == {0: "zero", 7: [1.5, 2]}
    assert back["__odd"] == {"__tensor__": "not a reference"}
    assert back["history"][0]["train_loss"] == 0.1 + 0.2  # floats exactly
    assert back["history"][0]["nan"] != back["history"][0]["nan"]
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert back["empty"].shape == (0, 4)
    assert torch.equal(back["flag"], state["flag"])
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    # the optimizer state loads into a fresh optimizer and continues identically
    lin2, opt2 = _trained_adamw()
    opt2.load_state_dict(back["optimizer"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for i, s in opt.state_dict()["state"].items():
        for name, t in s.items():
            assert torch.equal(opt2.state_dict()["state"][i][name], t), (i, name)


def test_a_safetensors_model_file_is_plain_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    t = {"a.weight": torch.arange(6.0).reshape(2, 3)}
    write_safetensors(tmp_path / "m.safetensors", t, {"config": {"lr": 0.1}})
    assert torch.equal(st.load_file(tmp_path / "m.safetensors")["a.weight"], t["a.weight"])  # other tools read it
    tensors, meta = read_safetensors(tmp_path / "m.safetensors")
    assert meta == {"config": {"lr": 0.1}}
    assert torch.equal(tensors["a.weight"], t["a.weight"])


@pytest.mark.parametrize("kind", ["pickle", "truncated", "text", "empty"])
def test_an_unreadable_file_is_one_clear_line_naming_it(tmp_path, kind):
    path = tmp_path / "checkpoint.safetensors"
    marker = tmp_path / "pwned"
    if kind == "pickle":
        plant_pickle(path, marker)
    elif kind == "truncated":
        save_checkpoint(path, {"w": torch.ones(100)})
        path.write_bytes(path.read_bytes()[:-50])
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    else:
        path.write_bytes(b"")
    with pytest.raises(InputError) as e:
        load_checkpoint(path, fix="pass --overwrite to restart the run")
    msg = str(e.value)
    assert str(path) in msg
    assert "not a readable checkpoint" in msg
    assert msg.endswith("pass --overwrite to restart the run")
    assert "\n" not in msg
    assert not marker.exists()


def test_a_foreign_safetensors_file_is_not_a_checkpoint(tmp_path):
    write_safetensors(tmp_path / "x.safetensors", {"w": torch.ones(2)})
    with pytest.raises(InputError, match="not a medlens checkpoint"):
        load_checkpoint(tmp_path / "x.safetensors")


def test_what_cannot_be_stored_is_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        save_checkpoint(tmp_path / "c.safetensors", {"x": object()})
    assert not (tmp_path / "c.safetensors").exists()
