"""Encoders × zero-shot × fine-tuning: the tiny CLIP / timm models through the same code paths users run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.encoders.conftest import images

from medlens.taxonomy import Taxonomy

torch = pytest.importorskip("torch")

TREE = {"name": "toy_cxr", "root": "root", "children": {"root": ["Lung", "Heart"], "Lung": ["Effusion", "Nodule"]}}


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return Taxonomy.from_dict(TREE)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    for i, a in enumerate(images(8, seed=3)):
        Image.fromarray(a).save(d / f"img{i}.png")
    return d


def test_zero_shot_images_with_clip_equal_the_manual_softmax(model_dirs, tax, image_dir):
    from medlens.encoders import load_encoder
    from medlens.hierarchy import ZeroShotScorer
    from medlens.io import list_images

    enc = load_encoder(str(model_dirs["clip"]))
    scorer = ZeroShotScorer(enc, tax, method="softmax")
    _, paths = list_images(image_dir)
    p = scorer.score_images(paths)
    assert p.shape == (8, len(tax))
    np.testing.assert_allclose(p[:, 0], 1.0)
    leaves = [tax.index[v] for v in tax.leaves]
    np.testing.assert_allclose(p[:, leaves].sum(axis=1), 1.0, atol=1e-9)
    # by hand: prompt-ensemble text embeddings, cosine with the image embeddings, softmax(logit_scale · cos)
    texts, owner = scorer.prompt_table.flat()
    t = enc.encode_texts(texts).astype(np.float64)
    centroids = np.stack([t[owner == j].mean(axis=0) for j in range(len(scorer.prompt_table.nodes))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    img = enc.encode_images(paths).astype(np.float64)
    cols = [scorer.prompt_table.nodes.index(v) for v in tax.leaves]
    z = enc.logit_scale * img @ centroids[cols].T
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p[:, leaves], expected, atol=1e-5)
    np.testing.assert_allclose(p[:, tax.index["Lung"]], p[:, [tax.index["Effusion"], tax.index["Nodule"]]].sum(1))


@pytest.mark.parametrize(("model", "mode"), [("clip", "last-block"), ("clip", "lora"), ("timm", "last-block")])
def test_finetune_image_towers(model_dirs, tax, image_dir, tmp_path, model, mode):
    from medlens.encoders import load_encoder
    from medlens.hierarchy.finetune import FinetuneConfig, LossConfig, finetune, load_finetuned
    from medlens.io import list_images

    _, paths = list_images(image_dir)
    labels = ["Effusion", "Nodule", "Heart", "Lung", "Effusion", "Heart", "Nodule", "Heart"]
    enc = load_encoder(str(model_dirs[model]))
    cfg = FinetuneConfig(loss=LossConfig("radial"), mode=mode, epochs=2, batch_size=4, lora_r=2)
    r = finetune(enc, tax, paths, labels, config=cfg, out_dir=tmp_path / "ft")
    assert len(r.history) == 2
    assert all(np.isfinite(h["train_loss"]) for h in r.history)
    meta = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert meta["encoder"]["modality"] == "image"
    assert meta["node_init"].startswith("prompts" if model == "clip" else "one-hot")
    p = r.model.predict_proba(paths)
    assert p.shape == (8, len(tax))
    again = load_finetuned(tmp_path / "ft", encoder=load_encoder(str(model_dirs[model])))
    np.testing.assert_allclose(again.predict_proba(paths), p, atol=1e-5)


def test_cli_zeroshot_images_and_finetune_from_an_image_csv(model_dirs, tax, image_dir, tmp_path, capsys):
    from medlens.cli import main
    from medlens.hierarchy import read_score_table

    tfile = tmp_path / "tax.json"
    tfile.write_text(json.dumps(TREE))
    scores = tmp_path / "scores.csv"
    rc = main(
        ["hier", "zeroshot", "--encoder", str(model_dirs["clip"]), "--images", str(image_dir), "--taxonomy", str(tfile)]
        + ["--out", str(scores), "--json"]
    )
    assert rc == 0, capsys.readouterr().err
    st = read_score_table(scores, tax)
    assert st.ids == [f"img{i}.png" for i in range(8)]
    data = tmp_path / "train.csv"
    rows = [f"{i},{y},{image_dir / f'img{i}.png'}" for i, y in enumerate(["Effusion", "Heart"] * 4)]  # absolute
    data.write_text("id,label,image\n" + "\n".join(rows) + "\n")
    capsys.readouterr()
    rc = main(
        ["hier", "finetune", "--encoder", str(model_dirs["clip"]), "--data", str(data), "--taxonomy", str(tfile)]
        + ["--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "ft"), "--json"]
    )
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["modality"] == "image"
