"""Box-consistent augmentations (boxes stay in the image and move with it) and LoRA / augmented training."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.grounding import Augment, affine_matrix, load_knowledge, map_boxes

KB = load_knowledge("vindr-cxr")

_params = st.fixed_dictionaries(
    {
        "shift": st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3)),
        "scale": st.floats(0.5, 1.5),
        "degrees": st.floats(-45, 45),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(8, 300),
    st.integers(8, 300),
    _params,
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), max_size=5),
)
def test_mapped_boxes_stay_inside_the_image(w, h, p, rel):
    boxes = [[min(a, c) * w, min(b, d) * h, max(a, c) * w, max(b, d) * h] for a, b, c, d in rel]
    out = map_boxes(boxes, affine_matrix(w, h, **p), w, h)
    assert out.shape[1] == 4
    assert (out[:, 0] >= 0).all()
    assert (out[:, 1] >= 0).all()
    assert (out[:, 2] <= w).all()
    assert (out[:, 3] <= h).all()
    assert (out[:, 2] > out[:, 0]).all()
    assert (out[:, 3] > out[:, 1]).all()


@settings(max_examples=30, deadline=None)
@given(
    st.integers(40, 120),
    st.integers(40, 120),
    st.floats(0.2, 0.5),
    st.floats(0.2, 0.5),
    st.floats(0.1, 0.3),
    st.floats(0.1, 0.3),
    st.integers(0, 2**31),
)
def test_boxes_move_with_the_image(w, h, fx, fy, fw, fh, seed):
    """A white rectangle on black: after the augmentation, the bright pixels' extent is the mapped box."""
    from PIL import Image

    x1, y1 = round(fx * w), round(fy * h)
    x2, y2 = x1 + max(4, round(fw * w)), y1 + max(4, round(fh * h))
    a = np.zeros((h, w), np.uint8)
    a[y1:y2, x1:x2] = 255
    aug = Augment(shift=0.1, scale=0.2, degrees=20, brightness=0, contrast=0, min_visible=1.0)
    img, boxes = aug(Image.fromarray(a), [[x1, y1, x2, y2]], np.random.default_rng(seed))
    assert img.size == (w, h)
    bright = np.asarray(img)[..., 0] > 127
    if not len(boxes):  # the box left the image in part: dropped with min_visible=1
        return
    ys, xs = np.nonzero(bright)
    found = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert np.allclose(found, boxes[0], atol=1.5), (found, boxes[0].tolist())


def test_identity_and_draws_are_seeded():
    from PIL import Image

    a = (np.arange(30 * 20) % 251).astype(np.uint8).reshape(20, 30)
    ident = Augment(shift=0, scale=0, degrees=0, brightness=0, contrast=0)
    img, boxes = ident(Image.fromarray(a), [[1, 2, 10, 12]], np.random.default_rng(0))
    assert np.array_equal(np.asarray(img)[..., 0], a)
    assert boxes.tolist() == [[1, 2, 10, 12]]
    aug = Augment()
    assert aug.draw(np.random.default_rng(3)) == aug.draw(np.random.default_rng(3))
    # a quarter turn of a square image maps the box by hand: (x, y) -> (y, W - x) about the centre
    m = affine_matrix(10, 10, degrees=90)
    assert map_boxes([[0, 0, 2, 4]], m, 10, 10)[0].tolist() == pytest.approx([0, 8, 4, 10])
    with pytest.raises(InputError, match="degrees"):
        Augment(degrees=90)


@pytest.mark.slow
def test_lora_with_augmentation_trains_adapters_and_merges(tmp_path):
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    from PIL import Image

    from medlens.grounding import load_grounder, train_grounder, write_tiny_florence

    model = write_tiny_florence(tmp_path / "m", corpus=[f.name for f in KB.findings], seed=0)
    qs = []
    for i in range(4):
        a = np.zeros((64, 96), np.uint8)
        a[10:30, 8:40] = 230
        Image.fromarray(a).save(tmp_path / f"i{i}.png")
        qs.append({"image": str(tmp_path / f"i{i}.png"), "image_id": f"i{i}", "finding": "cardiomegaly",
                   "gold": [[8.0, 10.0, 40.0, 30.0]], "width": 96, "height": 64})  # fmt: skip
    full = train_grounder(model, {"train": qs[:3], "val": qs[3:]}, KB, tmp_path / "full", epochs=1, batch_size=3)
    res = train_grounder(model, {"train": qs[:3], "val": qs[3:]}, KB, tmp_path / "lora", epochs=1, batch_size=3,
                         lr=1e-2, lora={"r": 2}, augment=Augment())  # fmt: skip
    assert res["config"]["lora"]["r"] == 2
    assert res["config"]["augment"]["degrees"] == 5.0
    assert 0 < res["n_trained_parameters"] < full["n_trained_parameters"]
    base, tuned = load_grounder(model).model.state_dict(), load_grounder(res["model_path"]).model.state_dict()
    assert set(base) == set(tuned)  # merged: a plain Florence-2 again
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed
    assert all("language_model" in k and any(t in k for t in ("proj", "fc")) for k in changed), changed
