"""Runs every case of ``catalogue.txt``: a bad input exits with its code and one clear stderr line."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cli.conftest import cli_runner
from tests.cli.test_cli import assert_user_error

from medlens.taxonomy import load_taxonomy

CATALOGUE = Path(__file__).with_name("catalogue.txt")

LEAVES = [n for n in load_taxonomy("chexpert_pham").nodes if not load_taxonomy("chexpert_pham").children(n)]


def _thresholds(lam: str = "0.5", kind: str = '"medlens.thresholds"', depth: str = "1") -> str:
    return (
        f'{{"kind": {kind}, "taxonomy": "chexpert_pham", "rule": "climb", "lambda": {lam}, "branch_depth": {depth}, '
        '"aggregator": "max"}'
    )


def _coco_gt(bbox: str) -> str:
    return (
        '{"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "lesion"}], '
        f'"annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": {bbox}, "area": 400, "iscrowd": 0}}]}}'
    )


def _nifti(shape: tuple[int, ...], shift_mm: float = 0.0) -> bytes:
    """A small NIfTI-1 file's bytes (oblique 2 mm grid), for the ``slice`` cases."""
    import nibabel as nib
    import numpy as np

    affine = np.array([[0.0, -2.0, 0.0, 10.0 + shift_mm], [2.0, 0.0, 0.3, -5.0], [0.0, 0.0, 2.0, 0.0], [0, 0, 0, 1]])
    return nib.Nifti1Image(np.ones(shape, np.float32), affine).to_bytes()


def _dicom_series(n: int = 4, gap_at: int | None = None, spacing_at: int | None = None, uids: int = 1) -> dict:
    """A folder (file name -> bytes) of pydicom's CT slice re-positioned as an axial series, for the ``slice``
    cases: a missing slice (``gap_at``), another PixelSpacing (``spacing_at``) or ``uids`` series mixed."""
    import pydicom
    from pydicom.data import get_testdata_file

    files = {}
    for u in range(uids):
        for k in range(n):
            ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.ImagePositionPatient = [0.0, 0.0, 2.5 * (k + (k >= gap_at if gap_at is not None else 0))]
            ds.SeriesInstanceUID = f"1.2.826.0.1.{u + 1}"
            if k == spacing_at:
                ds.PixelSpacing = [0.9, 0.9]
            buf = io.BytesIO()
            ds.save_as(buf)
            files[f"s{u}_{k:02d}.dcm"] = buf.getvalue()
    return files


OBO_HEAD = "format-version: 1.2\ndata-version: test\n\n"


def _npy(array: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


def _translator(d1: int = 4, d2: int = 3) -> bytes:
    from medlens.stitching import Translator

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Translator("ortho").fit(rng.normal(size=(10, d1)), rng.normal(size=(10, d2))).save(Path(tmp) / "t.npz")
        return path.read_bytes()


def _unet(**kind: bool) -> bytes:
    """A tiny diffusion UNet (unconditioned, or of the conditioning ``kind``: ``mask_conditioned=True`` or
    ``palette_conditioned=True``), for ``medlens edit`` with the wrong kind of checkpoint; empty without torch."""
    try:
        from medlens.diffusion import build_unet, save_unet
    except ImportError:  # pragma: no cover - the dev extra installs torch and monai
        return b""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg = {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 8, "num_head_channels": 8,
                   "sample_size": 16, **kind}  # fmt: skip
            path = save_unet(Path(tmp) / "m.safetensors", build_unet(cfg, seed=0))
        except ImportError:  # pragma: no cover
            return b""
        return path.read_bytes()


_EDIT_MASK = np.zeros((16, 16), np.uint8)
_EDIT_MASK[6:9, 6:9] = 1
_RNG = np.random.default_rng(0)
FILES: dict[str, str | bytes | dict[str, str | bytes]] = {
    "children_list.json": '{"name": "t", "root": "root", "children": ["root", "Lung"]}',
    "children_str.yaml": "name: t\nroot: root\nchildren:\n  root: Lung\n",
    "dup_key.yaml": "name: t\nchildren:\n  Lung: [Pneumonia]\n  Lung: [Edema]\n  root: [Lung]\n",
    "dup_key.json": '{"name": "t", "children": {"root": ["A"], "root": ["B"]}}',
    "latin1.json": b'{"name": "\xf5"}',
    "broken.json": '{"name": ',
    "broken.pt2": "not a zip archive",
    "empty.yaml": "\n\n",
    "kb_empty.yaml": "name: t\nversion: 1.0.0\ndataset: d\nsource: s\nfindings: []\n",
    "kb_broken.yaml": "name: t\nfindings: [\n",
    "kb_split.yaml": "name: t\nversion: 1.0.0\ndataset: d\nsource: s\nfindings:\n  - name: a\n    split: maybe\n"
    "    definition: x\n    attributes: {colour: red}\n",
    "empty_is_a.obo": "[Term]\nid: T:1\nname: top\nis_a:\n",
    "missing_is_a.obo": OBO_HEAD + "[Term]\nid: T:1\nname: top\n\n[Term]\nid: T:2\nis_a: T:9 ! gone\n",
    "two_roots.obo": OBO_HEAD + "[Term]\nid: T:1\n\n[Term]\nid: T:2\n",
    "latin1.obo": b"[Term]\nid: T:1\nname: caf\xe9\n",
    "truth.csv": "id,label\na,Cardiomegaly\nb,Edema\n",
    "ambiguous.yaml": "name: t\nroot: root\nchildren:\n  root: [Mass, mass]\n",
    "truth_ambiguous.csv": "id,label\na,MASS\nb,mass\n",
    "huge_label.csv": "id,label\na,Cardiomegaly\nb," + "x" * 200_000 + "\n",
    "latin1.csv": b"id,label\na,Cardiomegaly\nb,\xe9dema\n",
    "scores.csv": "id,"
    + ",".join(LEAVES)
    + "\na,"
    + ",".join(["0.5"] * len(LEAVES))
    + "\nb,"
    + ",".join(["0.1"] * len(LEAVES))
    + "\n",
    "texts.txt": "no acute findings\nsmall left effusion\n",
    "empty.txt": "",
    "corpus.jsonl": '{"id": "d1", "title": "a", "text": "seizures and ataxia"}\n',
    "gt.json": _coco_gt("[10, 10, 20, 20]"),
    "gt_huge.json": _coco_gt("[1e308, 10, 1e308, 20]"),
    "dets.json": '[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]',
    "dets_huge.json": '[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 1e308, 1e308], "score": 0.9}]',
    "lam_nan.json": _thresholds(lam="NaN"),
    "lam_huge.json": _thresholds(lam="1e308"),
    "lam_neg.json": _thresholds(lam="-1"),
    "lam_abc.json": _thresholds(lam='"abc"'),
    "kind_wrong.json": _thresholds(kind='"something.else"'),
    "depth_zero.json": _thresholds(depth="0"),
    # grounding: a 4×4 PNG, a VinDr-layout truth CSV, COCO truths and predictions JSONL
    "g_p1.png": bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000040000000408000000008c9ac1a20000000e49444154789c6368000206540200501408"
        "017025ae3f0000000049454e44ae426082"
    ),
    "g_truth.csv": "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\np1,Cardiomegaly,3,R1,1,1,3,3\n",
    "g_outside.json": '{"images": [{"id": 1, "file_name": "p1.png", "width": 4, "height": 4}], "categories": '
    '[{"id": 1, "name": "cardiomegaly"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, '
    '"bbox": [2, 2, 5, 1]}]}',
    "g_coco.json": '{"images": [{"id": 1, "file_name": "p1.png", "width": 4, "height": 4}], "categories": '
    '[{"id": 1, "name": "cardiomegaly"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, '
    '"bbox": [1, 1, 2, 2]}]}',
    "g_other.jsonl": '{"image_id": "p9", "finding": "cardiomegaly", "boxes": [], "scores": []}\n',
    "g_wide.jsonl": '{"image_id": "p1", "finding": "cardiomegaly", "boxes": [[0, 0, 9, 2]], "scores": [0.5]}\n',
    "g_nofinding.jsonl": '{"image_id": "p1", "boxes": []}\n',
    # stitching: features X.npy with an optional X.ids.txt beside them (written with their .npy)
    "s3.npy": _npy(_RNG.normal(size=(3, 4))),
    "t4.npy": _npy(_RNG.normal(size=(4, 3))),
    "t3.npy": _npy(_RNG.normal(size=(3, 3))),
    "s5d.npy": _npy(_RNG.normal(size=(6, 5))),
    "nan.npy": _npy([[0.0, 1.0], [np.nan, 1.0], [1.0, 1.0]]),
    "vec.npy": _npy(np.zeros(4)),
    "sid.npy": _npy(_RNG.normal(size=(3, 4))),
    "sid.ids.txt": "a\nb\nc\n",
    "tid.npy": _npy(_RNG.normal(size=(3, 3))),
    "tid.ids.txt": "a\nb\nd\n",
    "s40.npy": _npy(_RNG.normal(size=(40, 4))),
    "t40.npy": _npy(_RNG.normal(size=(40, 3))),
    "lab40.csv": "id,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(39)),
    "tr.npz": _translator(),
    "other.npz": b"PK\x05\x06" + b"\x00" * 18,
    "vol.nii": _nifti((4, 4, 4)),
    "vol4d.nii": _nifti((4, 4, 4, 2)),
    "mask_short.nii": _nifti((4, 4, 3)),
    "mask_shifted.nii": _nifti((4, 4, 4), shift_mm=1.5),
    # DICOM series folders (a dict is a folder of files)
    "ct_gap": _dicom_series(gap_at=2),
    "ct_spacing": _dicom_series(spacing_at=1),
    "ct_two_series": _dicom_series(n=2, uids=2),
    "ct_no_dicom": {"README.txt": "not DICOM\n"},
    # fairness: scores CSVs and prediction/reference rows
    "fair_noattr.csv": "id,score\n1,0.5\n2,0.7\n",
    "fair_text.csv": "id,score,race\n1,0.5,a\n2,high,b\n",
    "fair_onegroup.csv": "id,score,race\n1,0.5,a\n2,0.7,a\n",
    "fair_two.csv": "id,bleu4,cider,race\n1,0.5,1,a\n2,0.7,1,b\n",
    "fair_ref.jsonl": '{"id": "1", "reference": "a small effusion"}\n',
    "fair_pred.jsonl": '{"id": "1", "prediction": "no effusion"}\n{"id": "2", "prediction": "edema"}\n',
    "fair_items.jsonl": '{"id": "a", "reference": "yes"}\n',
    "fair_groups.csv": "id,age_group\na,<40\nb,>=60\n",
    "fair_onegroup_ids.csv": "id,age_group\na,<40\nb,<40\n",
    "fair_items_q.jsonl": '{"id": "a", "question": "Is there glaucoma?", "reference": "yes", "race": "Asian"}\n',
    # counterfactual editing: a 16x16 image, masks of its size, of another size and empty, a plain UNet
    "edit_img.npy": _npy(np.zeros((16, 16), np.float32)),
    "edit_mask.npy": _npy(_EDIT_MASK),
    "edit_mask8.npy": _npy(_EDIT_MASK[:8, :8]),
    "edit_empty.npy": _npy(np.zeros((16, 16), np.uint8)),
    "edit_plain.safetensors": _unet(),
    "edit_masked.safetensors": _unet(mask_conditioned=True),
    "edit_palette.safetensors": _unet(palette_conditioned=True),
    "score_imgs": {"a.npy": _npy(np.zeros((16, 16), np.float32))},
}


def _cases() -> list[tuple[int, list[str], str]]:
    cases = []
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        code, words, command = (part.strip() for part in line.split(" | ", 2))
        cases.append((int(code), [w.strip() for w in words.split(";") if w.strip()], command))
    return cases


def test_the_catalogue_reads_and_names_only_known_files():
    cases = _cases()
    assert len(cases) >= 20
    for _, _, command in cases:
        for name in re.findall(r"\{([^}]+)\}", command):
            assert name == "tmp" or name in FILES, name


@pytest.mark.parametrize(("code", "words", "command"), _cases(), ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(code, words, command, tmp_path, capsys):
    for name, content in FILES.items():
        companion = name.endswith(".ids.txt") and f"{{{name[: -len('.ids.txt')]}.npy}}" in command
        if f"{{{name}}}" in command or companion:
            path = tmp_path / name
            if isinstance(content, dict):  # a folder
                path.mkdir()
                for fname, data in content.items():
                    (path / fname).write_bytes(data if isinstance(data, bytes) else data.encode())
                continue
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = [
        re.sub(r"\{([^}]+)\}", lambda m: str(tmp_path if m.group(1) == "tmp" else tmp_path / m.group(1)), a)
        for a in command.split()
    ]
    res = cli_runner(capsys)(*args)
    assert res.rc == code, (res.rc, res.err)
    line = assert_user_error(res, *words) if code == 2 else assert_unmet_target(res, *words)
    assert len(line) < 600, line  # short: no echo of a huge value


def assert_unmet_target(res, *fragments: str) -> str:
    """Exit code 3: the result is written (stdout may summarise it), one stderr line, no traceback."""
    assert res.rc == 3, (res.rc, res.err)
    lines = res.err.splitlines()
    assert len(lines) == 1, res.err
    line = lines[0]
    assert line.startswith("medlens: error: "), line
    assert "Traceback" not in res.err
    assert "internal error" not in line
    for f in fragments:
        assert f in line, (f, line)
    return line
