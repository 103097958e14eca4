"""The embedded brain generator: nilearn's MNI152 files, the derived mask, determinism, lesions, value ranges."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nibabel", reason='nibabel not installed (pip install "medlens[io]")')
if __import__("importlib").util.find_spec("nilearn") is None:
    pytest.skip('nilearn not installed (pip install "medlens[data]")', allow_module_level=True)

from medlens._validation import InputError  # noqa: E402
from medlens.diffusion import (  # noqa: E402
    BRAIN_GENERATOR_VERSION,
    DATASETS,
    BrainConfig,
    brain_mask_from_tissue,
    brain_slices,
    load_mni152,
    mni152_files,
)


def test_template_files_are_found_by_path_and_the_mask_covers_the_brain() -> None:
    files = mni152_files()
    assert sorted(files) == ["gm", "t1", "wm"]
    vol = load_mni152()
    assert vol["t1"].shape == vol["brain"].shape == (197, 233, 189)
    brain = vol["brain"]
    # ~1.8 litres at 1 mm; tissue is inside it; the ventricles (CSF, not GM/WM) are filled in
    assert 1.5e6 < brain.sum() < 2.0e6
    assert brain[(vol["gm"] + vol["wm"]) > 0.5].all()
    assert brain[98, 134, 85]  # near the lateral ventricles on the mid-line


def test_mask_from_tissue_thresholds_and_fills_holes() -> None:
    gm = np.zeros((7, 7, 1))
    gm[1:6, 1:6] = 0.6
    gm[3, 3] = 0.0  # a hole of "CSF" inside
    wm = np.zeros_like(gm)
    m = brain_mask_from_tissue(gm, wm, closing=0)
    assert m[1:6, 1:6].all()
    assert m.sum() == 25
    with pytest.raises(InputError, match="differ in shape"):
        brain_mask_from_tissue(gm, wm[:3])


def test_same_seed_same_images_and_index_stable() -> None:
    a = brain_slices(3, anomalous=True, seed=5)
    b = brain_slices(3, anomalous=True, seed=5)
    c = brain_slices(1, anomalous=True, seed=5)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.masks, b.masks)
    assert np.array_equal(a.images[:1], c.images)  # image i depends on (seed, split, i) only
    d = brain_slices(3, anomalous=True, seed=6)
    assert not np.array_equal(a.images, d.images)
    e = brain_slices(3, anomalous=True, seed=5, split="test")
    assert not np.array_equal(a.images, e.images)


def test_value_ranges_dtype_and_background() -> None:
    d = brain_slices(4, seed=0)
    assert d.images.dtype == np.float32
    assert d.images.shape == (4, 1, 64, 64)
    assert d.images.min() >= -1.0
    assert d.images.max() <= 1.0
    # background is -1 (never mapped to 0 as [0, 1] clamping would), the brain is mostly above it
    assert np.all(d.images[~d.brain] == -1.0)
    assert (d.images[d.brain] > -0.5).mean() > 0.9
    assert d.masks.sum() == 0
    assert d.labels.tolist() == [0, 0, 0, 0]
    assert d.meta["version"] == BRAIN_GENERATOR_VERSION == "brain-anomaly-v1"


def test_lesions_lie_inside_the_brain_mask_and_change_the_image() -> None:
    cfg = BrainConfig(size=32, radius_px=(1.0, 4.0))
    bad = brain_slices(6, anomalous=True, seed=1, config=cfg)
    assert bad.images.shape == (6, 1, 32, 32)
    assert bad.labels.tolist() == [1] * 6
    assert not (bad.masks.astype(bool) & ~bad.brain).any()
    assert set(bad.lesion_type) <= {"hyper", "hypo"}
    sizes = bad.masks.reshape(6, -1).sum(1)
    assert sizes.min() >= 1
    assert len(set(sizes.tolist())) > 1


def test_registered_as_benchmark_data() -> None:
    gen = DATASETS.get("brain-anomaly")
    data = gen(n_train=2, n_healthy=1, n_test=3, seed=0, config=BrainConfig(size=32))
    assert data["meta"]["version"] == BRAIN_GENERATOR_VERSION
    assert data["test"].labels.tolist() == [1, 1, 0]
    assert len(data["train"]) == 2
    assert data["train"].labels.sum() == 0


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(InputError, match="size"):
        brain_slices(1, config=BrainConfig(size=8))
    with pytest.raises(InputError, match="split"):
        brain_slices(1, split="other")
    with pytest.raises(InputError, match="seed"):
        brain_slices(1, seed=-1)
