"""Epoch selection of ``train_grounder`` by validation F1@0.5 (default) or validation loss, with a fake grounder.

The fake stands in for :func:`load_grounder`: one parameter that really trains, a scripted validation loss per
epoch and scripted predictions per epoch, so the F1-best epoch is not the loss-best one. It records every image
it is asked to predict, so the tests can see that only the (unaugmented) validation queries are decoded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from medlens._validation import InputError  # noqa: E402
from medlens.grounding import _train, load_knowledge  # noqa: E402
from medlens.grounding._florence import ParsedGrounding  # noqa: E402
from medlens.training import read_safetensors  # noqa: E402

KB = load_knowledge("vindr-cxr")
GOLD = [10.0, 10.0, 30.0, 40.0]
# per epoch: validation loss (falls every epoch) and what the model emits on the validation queries
VAL_LOSS = [3.0, 2.0, 1.0, 0.5]
MODES = ["hit_fp", "hit", "hit", "none"]
# hit_fp: both positives hit, one box on each negative: P = 2/4, R = 1, F1 = 2/3 (negatives count);
# hit: F1 1 (epochs 2 and 3 tie on F1: the lower validation loss, epoch 3, wins); none: no box at all, F1 0
# although the loss is lowest
F1 = [2 / 3, 1.0, 1.0, 0.0]


def _query(split: str, i: int, finding: str, gold: list) -> dict:
    return {"image": f"{split}/im{i}.png", "image_id": f"{split}{i}", "finding": finding, "gold": gold,
            "width": 64, "height": 64}  # fmt: skip


def _splits() -> dict[str, list[dict]]:
    out = {}
    for split in ("train", "val", "test"):
        out[split] = [q for i in range(2) for q in (_query(split, i, "cardiomegaly", [GOLD]),
                                                    _query(split, i, "pneumothorax", []))]  # fmt: skip
    return out


class _NoTest(Mapping):
    """The splits, where reading the test split fails the test."""

    def __init__(self, splits: dict) -> None:
        self._s = splits

    def __getitem__(self, key: str) -> list:
        if key == "test":
            raise AssertionError("the test split was read during training")
        return self._s[key]

    def __iter__(self):
        return iter(self._s)

    def __len__(self) -> int:
        return len(self._s)


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def save_pretrained(self, dest: Path) -> None:
        Path(dest).mkdir(parents=True)
        (Path(dest) / "w.json").write_text(json.dumps(self.w.detach().tolist()))


class _Tokenizer:
    def save_pretrained(self, dest: Path) -> None:
        (Path(dest) / "tokenizer.json").write_text("{}")


class _Fake:
    """One training batch per epoch, so the epoch is the number of training steps so far."""

    def __init__(self, val_loss: list[float] = VAL_LOSS) -> None:
        self.val_loss = val_loss
        self.model = _Model()
        self.tokenizer = _Tokenizer()
        self.steps = 0
        self.predicted: list[list[str]] = []  # images of each predict call
        self.val_batches: list[list[str]] = []  # images of each validation-loss batch

    @property
    def epoch(self) -> int:  # 0-based index of the epoch being validated
        return self.steps - 1

    def batch(self, queries, captions):
        assert len(queries) == len(captions)
        return {"images": [q["image"] for q in queries]}

    def loss(self, batch):
        if self.model.training:
            self.steps += 1
            return ((self.model.w - 1.0) ** 2).sum()
        self.val_batches.append(batch["images"])
        return torch.tensor(self.val_loss[self.epoch])

    def predict(self, images, captions, kb, *, max_new_tokens=64, cutoff=0.6):
        self.predicted.append(list(images))
        mode = MODES[self.epoch]
        out = []
        for cap in captions:
            positive = cap.startswith("cardiomegaly")
            if mode == "none" or (mode == "hit" and not positive):
                boxes = []
            else:
                boxes = [GOLD] if positive else [[40.0, 40.0, 60.0, 60.0]]
            label = "cardiomegaly" if positive else "pneumothorax"
            out.append(ParsedGrounding(boxes=np.array(boxes, dtype=float).reshape(-1, 4), labels=[label] * len(boxes),
                                       phrases=[label] * len(boxes), box_scores=np.full(len(boxes), 0.7),
                                       sequence_score=0.5))  # fmt: skip
        return out


class _Augment:
    """Moves every training image to a marker the fake can recognise (validation must never see it)."""

    def __call__(self, image, boxes, rng):
        return "AUGMENTED", np.asarray(boxes, dtype=float).reshape(-1, 4)

    def to_dict(self) -> dict:
        return {"kind": "marker"}


def _train_with(monkeypatch, tmp_path, name: str, val_loss: list[float] = VAL_LOSS, **kw):
    fake = _Fake(val_loss)
    monkeypatch.setattr(_train, "load_grounder", lambda path, device=None: fake)
    states: dict[int, torch.Tensor] = {}

    def keep(epoch, row):
        states[epoch] = fake.model.w.detach().clone()

    res = _train.train_grounder(tmp_path / "model", _NoTest(_splits()), KB, tmp_path / name, epochs=4,
                                batch_size=4, lr=0.1, seed=0, freeze_vision=False, device="cpu", callback=keep,
                                augment=_Augment(), **kw)  # fmt: skip
    return res, fake, states


def test_val_f1_selects_the_best_f1_epoch_not_the_lowest_loss(monkeypatch, tmp_path):
    res, fake, states = _train_with(monkeypatch, tmp_path, "f1")
    h = res["history"]
    # both numbers in every row; an epoch without boxes has F1 0; negatives' boxes are false positives
    assert [r["val_loss"] for r in h] == pytest.approx(VAL_LOSS)
    assert [r["val_f1"] for r in h] == pytest.approx(F1)
    assert h[0]["val_precision"] == pytest.approx(0.5)
    assert h[0]["val_recall"] == pytest.approx(1.0)
    assert [r["val_n_pred_boxes"] for r in h] == [4, 2, 2, 0]
    # epoch 3 (F1 1, tied with epoch 2 and a lower validation loss) although epoch 4 has the lowest loss
    assert res["select"] == "val_f1"
    assert res["selected_epoch"] == 3
    assert res["selected_on"].startswith("val_f1 (F1@0.5 on the validation split")
    assert "test split is never used" in res["selected_on"]
    assert res["selected_val_f1"] == pytest.approx(1.0)
    assert res["selected_val_loss"] == pytest.approx(1.0)
    assert res["best_val_loss"] == pytest.approx(0.5)
    assert res["config"]["select"] == "val_f1"
    tensors, meta = read_safetensors(tmp_path / "f1" / _train.BEST)
    assert meta["epoch"] == 3
    assert meta["val_f1"] == pytest.approx(1.0)
    assert torch.equal(tensors["w"], states[3])
    assert not torch.equal(states[3], states[4])
    # the final model holds the selected epoch's tensors
    saved = json.loads((Path(res["model_path"]) / "w.json").read_text())
    assert saved == pytest.approx(states[3].tolist())
    # only the validation queries were decoded, as they are (never augmented, never train or test)
    val_images = [q["image"] for q in _splits()["val"]]
    assert fake.predicted == [val_images] * 4
    assert fake.val_batches == [val_images] * 4


def test_val_loss_keeps_the_old_behaviour(monkeypatch, tmp_path):
    res, fake, states = _train_with(monkeypatch, tmp_path, "loss", select="val_loss")
    assert res["selected_epoch"] == 4
    assert res["selected_on"].startswith("val_loss")
    assert res["selected_val_f1"] is None
    assert res["selected_val_loss"] == res["best_val_loss"] == pytest.approx(0.5)
    assert all("val_f1" not in r for r in res["history"])
    assert fake.predicted == []  # no generation at all
    tensors, meta = read_safetensors(tmp_path / "loss" / _train.BEST)
    assert meta["epoch"] == 4
    assert torch.equal(tensors["w"], states[4])


def test_full_ties_keep_the_earlier_epoch_and_no_box_runs_keep_the_best_fit(monkeypatch, tmp_path):
    # epochs 2 and 3: the same F1 and the same loss: the earlier is kept
    res, _, states = _train_with(monkeypatch, tmp_path, "f1tie", val_loss=[3.0, 2.0, 2.0, 0.5])
    assert res["selected_epoch"] == 2
    # every epoch without a box (F1 0 throughout): the lowest validation loss decides, not the first epoch
    monkeypatch.setattr(sys.modules[__name__], "MODES", ["none"] * 4)
    res, _, _ = _train_with(monkeypatch, tmp_path, "nobox")
    assert [r["val_f1"] for r in res["history"]] == [0.0] * 4
    assert res["selected_epoch"] == 4


def test_loss_ties_keep_the_earlier_epoch(monkeypatch, tmp_path):
    res, _, states = _train_with(monkeypatch, tmp_path, "tie", val_loss=[2.0, 1.0, 1.0, 1.0], select="val_loss")
    assert res["selected_epoch"] == 2
    tensors, _ = read_safetensors(tmp_path / "tie" / _train.BEST)
    assert torch.equal(tensors["w"], states[2])


def test_bad_criterion_and_undefined_f1(monkeypatch, tmp_path):
    with pytest.raises(InputError, match="'select' parameter must be one of .*'val_f1'"):
        _train_with(monkeypatch, tmp_path, "bad", select="val_map")
    splits = _splits()
    splits["val"] = [q for q in splits["val"] if not q["gold"]]  # negatives only: F1 undefined
    monkeypatch.setattr(_train, "load_grounder", lambda path, device=None: _Fake())
    with pytest.raises(InputError, match="needs a positive validation query"):
        _train.train_grounder(tmp_path / "model", splits, KB, tmp_path / "neg", epochs=1, freeze_vision=False)
    # val_loss needs no positive query
    res = _train.train_grounder(tmp_path / "model", splits, KB, tmp_path / "neg", epochs=1, batch_size=4,
                                freeze_vision=False, select="val_loss", overwrite=True)  # fmt: skip
    assert res["selected_epoch"] == 1


def test_cli_text_output_names_the_criterion(monkeypatch, capsys):
    import medlens.grounding as grounding
    from medlens.cli import main

    seen = {}

    def fake_run(*args, **kw):
        seen.update(kw)
        return {"history": [{"epoch": 1, "val_loss": 2.0, "val_f1": 0.25}, {"epoch": 2, "val_loss": 1.0, "val_f1": 0.0}],
                "select": kw["select"], "selected_epoch": 1, "selected_val_loss": 2.0, "selected_val_f1": 0.25,
                "model_path": "run/model"}  # fmt: skip

    monkeypatch.setattr(grounding, "run_ground_train", fake_run)
    code = main(["ground", "train", "--data", "b.csv", "--images", "imgs", "--model-path", "m", "--out", "run"])
    out = capsys.readouterr().out
    assert code == 0
    assert seen["select"] == "val_f1"
    assert "epoch 2: val loss 1.0000, val F1@0.5 0.0000" in out
    assert "selected epoch 1 on val_f1 (val loss 2.0000, val F1@0.5 0.2500)" in out
