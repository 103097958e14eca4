"""Tiny random Florence-2 (transformers-native): inputs, masked loss, training with resume, prediction parsing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from medlens.grounding import load_knowledge  # noqa: E402
from medlens.grounding._model import load_grounder, n_image_tokens, write_tiny_florence  # noqa: E402
from medlens.grounding._train import train_grounder  # noqa: E402

KB = load_knowledge("vindr-cxr")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    corpus = [f.name for f in KB.findings] + [f.definition for f in KB.findings]
    return write_tiny_florence(tmp_path_factory.mktemp("tiny") / "florence", corpus=corpus, seed=0)


@pytest.fixture(scope="module")
def queries(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        w, h = (96, 64) if i % 2 else (64, 80)  # non-square, both orientations
        a = (rng.random((h, w)) * 40).astype(np.uint8)
        box = [8.0, 10.0, 8.0 + w / 3, 10.0 + h / 3]
        a[10 : int(box[3]), 8 : int(box[2])] = 230
        p = d / f"im{i}.png"
        Image.fromarray(a).save(p)
        out.append({"image": str(p), "image_id": f"im{i}", "finding": "cardiomegaly", "gold": [box], "width": w,
                    "height": h})  # fmt: skip
        out.append({"image": str(p), "image_id": f"im{i}", "finding": "pneumothorax", "gold": [], "width": w,
                    "height": h})  # fmt: skip
    return out


@pytest.mark.slow
def test_inputs_and_padding_carries_no_loss(tiny, queries):
    g = load_grounder(tiny)
    assert g.size == (64, 64)
    assert g.n_image_tokens == n_image_tokens(g.model.config.vision_config, 64, 64) == 5
    assert n_image_tokens(g.model.config.vision_config, 768, 768) == 577
    b = g.batch(queries[:2], ["cardiomegaly", "pneumothorax"])
    assert (b["input_ids"][:, :5] == g.image_token_id).all()
    tok = g.tokenizer
    target = tok.convert_ids_to_tokens(b["labels"][0][b["labels"][0] >= 0].tolist())
    assert target[0] == "<s>"
    assert target[-1] == "</s>"
    assert sum(t.startswith("<loc_") for t in target) == 4
    # the negative query's target is "<s></s>", padded with -100
    assert b["labels"][1].tolist()[:2] == [tok.bos_token_id, tok.eos_token_id]
    assert (b["labels"][1][2:] == -100).all()
    g.model.eval()
    with torch.no_grad():
        both = g.loss(b)
        out = g.model(**b)
        lab = b["labels"]
        ce = torch.nn.functional.cross_entropy(out.logits[lab >= 0], lab[lab >= 0])
        alone = g.loss(g.batch(queries[1:2], ["pneumothorax"]))
    assert float(both) == pytest.approx(float(ce), rel=1e-5)
    # the short sequence alone has the same per-token loss as inside the padded batch
    n1 = int((lab[1] >= 0).sum())
    row1 = torch.nn.functional.cross_entropy(out.logits[1][lab[1] >= 0], lab[1][lab[1] >= 0])
    assert float(row1) == pytest.approx(float(alone), rel=1e-4)
    assert n1 == 2


class _Killed(Exception):
    pass


def _kill_after(n):
    def cb(epoch, row):
        if epoch == n:
            raise _Killed

    return cb


@pytest.mark.slow
def test_train_lowers_loss_resumes_identically_and_predictions_parse(tiny, queries, tmp_path):
    from medlens.training import read_safetensors

    splits = {"train": queries[:8], "val": queries[8:], "test": []}
    kw = {"epochs": 3, "batch_size": 4, "lr": 3e-3, "seed": 1}
    full = train_grounder(tiny, splits, KB, tmp_path / "full", **kw)
    losses = [r["train_loss"] for r in full["history"]]
    assert losses[-1] < losses[0]
    assert full["selected_on"].startswith("val_f1")  # the default: F1@0.5 of the decoded val predictions
    f1s = [r["val_f1"] for r in full["history"]]
    assert all(0.0 <= f <= 1.0 for f in f1s)
    ranks = [(r["val_f1"], -r["val_loss"]) for r in full["history"]]  # F1 ties go to the lower validation loss
    assert full["selected_epoch"] == ranks.index(max(ranks)) + 1
    # killed after epoch 2, then resumed: the same weights and history as the uninterrupted run
    with pytest.raises(_Killed):
        train_grounder(tiny, splits, KB, tmp_path / "part", callback=_kill_after(2), **kw)
    resumed = train_grounder(tiny, splits, KB, tmp_path / "part", resume=True, **kw)
    a, _ = read_safetensors(tmp_path / "full" / "checkpoint.safetensors")
    b, _ = read_safetensors(tmp_path / "part" / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for key in ("val_loss", "val_f1", "val_n_pred_boxes"):
        assert [r[key] for r in resumed["history"]] == [r[key] for r in full["history"]]
    assert resumed["selected_epoch"] == full["selected_epoch"]
    g = load_grounder(full["model_path"])
    preds = g.predict([q["image"] for q in queries[:2]], ["cardiomegaly", "pneumothorax"], KB, max_new_tokens=12)
    for p, q in zip(preds, queries[:2], strict=True):
        assert p.boxes.shape[1] == 4
        assert p.box_scores is not None
        assert len(p.box_scores) == len(p.boxes)
        assert p.sequence_score is not None
        assert 0 < p.sequence_score <= 1
        assert (p.boxes[:, 2] <= q["width"]).all()
