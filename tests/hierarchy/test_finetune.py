"""Taxonomy-aware fine-tuning: the losses on hand-built cases, training, resume, save/load, frozen-prefix replay."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medlens._validation import InputError  # noqa: E402
from medlens.encoders._base import BaseEncoder, EncoderConfig, Tower  # noqa: E402
from medlens.hierarchy.finetune import (  # noqa: E402
    FinetuneConfig,
    HXELoss,
    LossConfig,
    ModelOutput,
    RadialConfig,
    RadialTaxonomyLoss,
    SoftLabelLoss,
    TaxonomyArrays,
    finetune,
    load_finetuned,
    soft_labels,
)
from medlens.taxonomy import Taxonomy  # noqa: E402
from medlens.training import read_safetensors  # noqa: E402

# ----------------------------------------------------------------------------------------- a toy text encoder


class _Block(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(d, d)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, h, mask=None):
        return h + self.drop(torch.tanh(self.lin(h)))


class _Net(torch.nn.Module):
    def __init__(self, vocab: int = 1009, d: int = 16, n_blocks: int = 3) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.blocks = torch.nn.ModuleList(_Block(d) for _ in range(n_blocks))

    def forward(self, ids, mask):
        h = self.emb(ids)
        for b in self.blocks:
            h = b(h, mask)
        m = mask[..., None].float()
        return (h * m).sum(1) / m.sum(1)


class ToyTextEncoder(BaseEncoder):
    """Words hashed into a 1009-word vocabulary, 3 residual blocks, mean pooling; deterministic per seed."""

    def __init__(self, seed: int = 0, d: int = 16) -> None:
        torch.manual_seed(seed)
        self.net = _Net(d=d)
        self.device = "cpu"
        self.model_id = f"toy-text-{seed}"
        self.config = EncoderConfig(name="toy", source=f"toy:{seed}", modality="text", embedding_dim=d, family="toy")

    def tower(self, modality: str = "text") -> Tower:
        self._require(modality)

        def prepare(texts):
            toks = [[zlib.crc32(w.encode()) % 1009 for w in t.lower().split()] or [0] for t in texts]
            width = max(map(len, toks))
            ids = torch.tensor([t + [0] * (width - len(t)) for t in toks])
            mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in toks])
            return {"ids": ids, "mask": mask}

        return Tower(
            module=self.net,
            dim=self.config.embedding_dim,
            prepare=prepare,
            forward=lambda b: self.net(b["ids"], b["mask"]),
            blocks=list(self.net.blocks),
            lora_targets=("lin",),
        )


WORDS = {"Pneumonia": "consolidation", "Edema": "edema", "Effusion": "effusion", "Lung": "lung", "Pleura": "pleura"}


def toy_data(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    nodes = list(WORDS)
    labels = [nodes[i] for i in rng.integers(0, len(nodes), n)]
    fillers = ["there", "is", "a", "small", "mild", "seen", "in", "the", "right", "left"]
    texts = [" ".join([*rng.choice(fillers, 3), WORDS[y], *rng.choice(fillers, 2)]) for y in labels]
    return texts, labels


# ------------------------------------------------------------------------------------------------ the losses


def _meets_every_target(tax: Taxonomy, cfg: RadialConfig, dim: int = 8) -> np.ndarray:
    """Node embeddings with norm r0 + depth·Δ, children along their branch direction, branches orthogonal."""
    arrays = TaxonomyArrays(tax)
    e = np.zeros((arrays.n, dim))
    for j, v in enumerate(tax.nodes[1:]):
        branch = tax.path(v)[0]
        b = tax.nodes[1:].index(branch)
        direction = np.eye(dim)[b] + 0.05 * np.eye(dim)[dim - 1 - (j % 3)]
        e[j] = direction / np.linalg.norm(direction) * (cfg.r0 + tax.depth(v) * cfg.delta)
    return e


def test_radial_geometry_is_zero_when_every_target_is_met(toy_tree):
    cfg = RadialConfig()
    loss = RadialTaxonomyLoss(TaxonomyArrays(toy_tree), cfg)
    e = torch.tensor(_meets_every_target(toy_tree, cfg), dtype=torch.float32)
    g = loss.geometry(e)
    assert {k: round(float(v), 6) for k, v in g.items()} == {"rad": 0.0, "pc": 0.0, "cross": 0.0}
    # the input term: ‖z‖ on the radius of the deepest true node (Pneumonia at depth 2 → 0.5 + 2·0.5)
    targets = torch.tensor([[1.0, 0, 1, 0, 0]])  # Lung, Pneumonia
    z = torch.tensor([[1.5, 0.0]])
    assert float(loss.geometry(e, z, targets)["rad_input"]) == pytest.approx(0.0)
    assert float(loss.geometry(e, 2 * z, targets)["rad_input"]) == pytest.approx(1.5**2)


def test_radial_loss_grows_with_cross_branch_similarity(toy_tree):
    cfg = RadialConfig()
    loss = RadialTaxonomyLoss(TaxonomyArrays(toy_tree), cfg)
    base = _meets_every_target(toy_tree, cfg)
    lung, pleura = toy_tree.nodes[1:].index("Lung"), toy_tree.nodes[1:].index("Pleura")
    values = []
    for t in np.linspace(0, 1, 6):  # rotate Pleura towards Lung
        e = base.copy()
        u = (1 - t) * base[pleura] / np.linalg.norm(base[pleura]) + t * base[lung] / np.linalg.norm(base[lung])
        e[pleura] = u / np.linalg.norm(u) * np.linalg.norm(base[pleura])
        values.append(float(loss.geometry(torch.tensor(e, dtype=torch.float32))["cross"]))
    assert values[0] == 0.0
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > 0.1


def test_losses_have_finite_gradients_even_at_zero_embeddings(toy_tree):
    arrays = TaxonomyArrays(toy_tree)
    targets = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 0, 0]])
    for loss in (RadialTaxonomyLoss(arrays), HXELoss(arrays, 0.4), SoftLabelLoss(arrays, 10.0)):
        logits = torch.randn(3, 5, requires_grad=True)
        z = torch.zeros(3, 4, requires_grad=True)
        nodes = torch.zeros(5, 4, requires_grad=True)
        total, parts = loss(ModelOutput(logits, z, nodes), targets)
        total.backward()
        assert np.isfinite(float(total.detach()))
        for t in (logits, z, nodes):
            assert t.grad is None or torch.isfinite(t.grad).all()
        assert all(np.isfinite(v) for v in parts.values())


def test_hxe_with_alpha_zero_is_cross_entropy(toy_tree):
    arrays = TaxonomyArrays(toy_tree)
    logits = torch.randn(4, 5)
    leaves = torch.as_tensor(arrays.leaves)
    leaf_names = [toy_tree.nodes[1:][j] for j in arrays.leaves]
    truth = ["Pneumonia", "Edema", "Effusion", "Lung"]
    targets = torch.tensor(
        [[float(c in toy_tree.ancestors(t, include_self=True)) for c in toy_tree.nodes[1:]] for t in truth]
    )
    hxe, _ = HXELoss(arrays, alpha=0.0)(ModelOutput(logits), targets)
    logp = torch.log_softmax(logits[:, leaves], dim=1)
    expected = []
    for i, t in enumerate(truth):  # internal truth: -log of the summed probability of its leaves
        under = [leaf_names.index(x) for x in leaf_names if t in toy_tree.ancestors(x, include_self=True)]
        expected.append(-torch.logsumexp(logp[i, under], dim=0))
    assert float(hxe) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)
    # alpha > 0 down-weights the deeper conditional, so the loss of a leaf target shrinks
    hxe4, _ = HXELoss(arrays, alpha=0.4)(ModelOutput(logits[:1]), targets[:1])
    assert float(hxe4) < float(expected[0])


def test_soft_labels_sum_to_one_and_favour_the_branch(toy_tree):
    arrays = TaxonomyArrays(toy_tree)
    cols = np.arange(arrays.n)
    for beta in (0.5, 4.0, 10.0, 30.0):
        y = soft_labels(arrays, cols, beta)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
        assert (y >= 0).all()
    y = soft_labels(arrays, [toy_tree.nodes[1:].index("Pneumonia")], 4.0)[0]
    leaf_names = [toy_tree.nodes[1:][j] for j in arrays.leaves]  # Pneumonia, Edema, Effusion
    p = dict(zip(leaf_names, y, strict=True))
    assert p["Pneumonia"] > p["Edema"] > p["Effusion"]
    # a true internal node spreads its mass evenly over its leaves
    lung = soft_labels(arrays, [toy_tree.nodes[1:].index("Lung")], 30.0)[0]
    assert lung[leaf_names.index("Pneumonia")] == pytest.approx(lung[leaf_names.index("Edema")])


def test_tree_only_losses_refuse_a_dag(toy_dag):
    arrays = TaxonomyArrays(toy_dag)
    with pytest.raises(InputError, match="needs a tree"):
        HXELoss(arrays)
    with pytest.raises(InputError, match="needs a tree"):
        SoftLabelLoss(arrays)
    RadialTaxonomyLoss(arrays)  # DAGs are fine for the radial loss


def test_bad_configs_are_clear_errors():
    with pytest.raises(InputError, match="delta"):
        RadialConfig(delta=0)
    with pytest.raises(InputError, match="unknown fine-tuning mode"):
        FinetuneConfig(mode="everything")
    with pytest.raises(InputError, match="epochs must be >= 1"):
        FinetuneConfig(epochs=0)


# ------------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("loss", ["radial", "hxe", "soft", "bce"])
def test_training_lowers_the_loss_and_learns(toy_tree, loss):
    texts, labels = toy_data(80)
    cfg = FinetuneConfig(loss=LossConfig(loss), mode="full", epochs=20, batch_size=16, lr=3e-3, head_lr=3e-2)
    r = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < 0.6 * losses[0]
    p = r.model.predict_proba(texts)
    assert p.shape == (80, len(toy_tree))
    np.testing.assert_array_equal(p[:, 0], 1.0)
    hit = [p[i, toy_tree.index[y]] > 0.5 for i, y in enumerate(labels)]
    assert np.mean(hit) > 0.9


def test_radial_norms_separate_by_depth_after_training(toy_tree):
    texts, labels = toy_data(80)
    loss = LossConfig("radial", radial=RadialConfig(w_rad_input=1.0))  # the input read-out weighted up
    cfg = FinetuneConfig(loss=loss, mode="full", epochs=20, batch_size=16, lr=3e-3, head_lr=3e-2)
    r = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg)
    fm = r.model
    node_norms = np.linalg.norm(fm.node_embeddings(), axis=1)
    depth = toy_tree.depths[1:]
    assert node_norms[depth == 1].max() < node_norms[depth == 2].min()
    z = np.linalg.norm(fm.embed(texts), axis=1)
    d = np.array([toy_tree.depth(y) for y in labels])
    assert z[d == 1].mean() + 0.25 < z[d == 2].mean()
    assert (fm.radial_depth(texts) == d).mean() > 0.8


def test_kill_and_resume_gives_identical_weights(toy_tree, tmp_path):
    texts, labels = toy_data(40)
    cfg = FinetuneConfig(loss=LossConfig("radial"), mode="last-block", epochs=3, batch_size=8, lr=1e-3)
    whole = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "a")

    class Killed(Exception):
        pass

    def kill(epoch, row):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "b", callback=kill)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    with pytest.raises(InputError, match="--resume"):
        finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "b")
    resumed = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "b", resume=True)
    assert resumed.resumed_from == 1
    a, b = whole.model.model.state_dict(), resumed.model.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["train_loss"] for h in whole.history] == [h["train_loss"] for h in resumed.history]
    # another config in the same folder is refused (the run manifest)
    other = FinetuneConfig(loss=LossConfig("bce"), mode="last-block", epochs=3, batch_size=8)
    with pytest.raises(InputError, match="different configuration"):
        finetune(ToyTextEncoder(), toy_tree, texts, labels, config=other, out_dir=tmp_path / "b", resume=True)


def test_saved_model_reloads_with_the_same_predictions(toy_tree, tmp_path):
    texts, labels = toy_data(40)
    cfg = FinetuneConfig(loss=LossConfig("hxe"), mode="last-block", epochs=2, batch_size=8)
    r = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path)
    again = load_finetuned(tmp_path, encoder=ToyTextEncoder())
    np.testing.assert_allclose(again.predict_proba(texts), r.model.predict_proba(texts), atol=1e-6)
    saved = read_safetensors(tmp_path / "model.safetensors")[0]
    assert "encoder.blocks.0.lin.weight" not in saved  # frozen blocks are not stored
    assert "encoder.blocks.2.lin.weight" in saved


def test_last_block_mode_trains_only_the_last_block_and_replays_the_prefix(toy_tree):
    from medlens.hierarchy.finetune._prefix import PrefixCache, fixed_batches

    texts, labels = toy_data(24)
    enc = ToyTextEncoder()
    before = {k: v.clone() for k, v in enc.net.state_dict().items()}
    cfg = FinetuneConfig(loss=LossConfig("bce"), mode="last-block", epochs=2, batch_size=8, lr=1e-2)
    finetune(enc, toy_tree, texts, labels, config=cfg)
    after = enc.net.state_dict()
    assert torch.equal(before["blocks.0.lin.weight"], after["blocks.0.lin.weight"])
    assert torch.equal(before["emb.weight"], after["emb.weight"])
    assert not torch.equal(before["blocks.2.lin.weight"], after["blocks.2.lin.weight"])
    # replaying the cached frozen output gives the same features as running every block
    tower = enc.tower()
    tower.module.eval()
    batches = fixed_batches(texts, 8)
    cache = PrefixCache(tower, [[texts[i] for i in b] for b in batches], progress=False)
    with torch.no_grad():
        for j, b in enumerate(batches):
            raw = [texts[i] for i in b]
            full = tower.forward(tower.prepare(raw))
            with cache.replay(j):
                fast = tower.forward(tower.prepare(raw))
            torch.testing.assert_close(fast, full)
    assert "forward" not in vars(tower.blocks[0])  # the patch is undone


def test_lora_mode_trains_adapters_only(toy_tree):
    pytest.importorskip("peft")
    texts, labels = toy_data(24)
    enc = ToyTextEncoder()
    cfg = FinetuneConfig(loss=LossConfig("radial"), mode="lora", epochs=1, batch_size=8, lora_r=2)
    r = finetune(enc, toy_tree, texts, labels, config=cfg)
    trainable = [n for n, p in r.model.model.encoder.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 3  # lora_A and lora_B for the Linear of each of the 3 blocks


def test_inputs_and_labels_must_match(toy_tree):
    with pytest.raises(InputError, match="2 inputs but 1 labels"):
        finetune(ToyTextEncoder(), toy_tree, ["a", "b"], ["Lung"])


# ------------------------------------------------------------------------------ resume exactness and model files


def _assert_same_weights(a, b):
    sa, sb = a.model.model.state_dict(), b.model.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


RESUME_CFG = dict(loss=LossConfig("radial"), mode="full", epochs=2, batch_size=8, lr=1e-3)


def test_resume_into_an_empty_folder_equals_a_fresh_run(toy_tree, tmp_path):
    texts, labels = toy_data(40)
    cfg = FinetuneConfig(**RESUME_CFG)
    fresh = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "fresh")
    resumed = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "r", resume=True)
    assert resumed.resumed_from == 0
    _assert_same_weights(fresh, resumed)
    assert [h["train_loss"] for h in fresh.history] == [h["train_loss"] for h in resumed.history]


KILL_SCRIPT = """
import importlib.util, json, os, signal, sys
import torch
from medlens.hierarchy.finetune import FinetuneConfig, finetune
from medlens.taxonomy import Taxonomy

spec = importlib.util.spec_from_file_location("toy_finetune", sys.argv[3])  # this test file
toy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(toy)
ToyTextEncoder, toy_data, RESUME_CFG = toy.ToyTextEncoder, toy.toy_data, toy.RESUME_CFG

enc = ToyTextEncoder()
forward, calls = enc.net.forward, [0]

def killing_forward(ids, mask):  # SIGKILL in the 3rd training batch of epoch 1 (before any checkpoint)
    if enc.net.training and torch.is_grad_enabled():
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return forward(ids, mask)

enc.net.forward = killing_forward
tax = Taxonomy.from_dict(json.loads(open(sys.argv[1]).read()))
texts, labels = toy_data(40)
finetune(enc, tax, texts, labels, config=FinetuneConfig(**RESUME_CFG), out_dir=sys.argv[2])
"""


def test_sigkill_before_the_first_checkpoint_then_resume_equals_an_uninterrupted_run(toy_tree, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    tax_file = tmp_path / "tax.json"
    tax_file.write_text(json.dumps(toy_tree.to_dict()))
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-c", KILL_SCRIPT, str(tax_file), str(out), __file__]
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (out / "manifest.json").is_file()
    assert not (out / "checkpoint.safetensors").exists()  # killed during epoch 1
    texts, labels = toy_data(40)
    cfg = FinetuneConfig(**RESUME_CFG)
    whole = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "whole")
    resumed = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=out, resume=True)
    assert resumed.resumed_from == 0
    _assert_same_weights(whole, resumed)
    assert [h["train_loss"] for h in whole.history] == [h["train_loss"] for h in resumed.history]


def test_pickles_in_a_run_folder_are_refused_and_never_unpickled(toy_tree, tmp_path):
    from tests.training.test_checkpoint import plant_pickle

    texts, labels = toy_data(16)
    cfg = FinetuneConfig(loss=LossConfig("bce"), mode="head", epochs=1, batch_size=8)
    marker = tmp_path / "pwned"
    # a model folder with an old-style model.pt
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    plant_pickle(model_dir / "model.pt", marker)
    with pytest.raises(InputError, match=r"model.pt was written by an older medlens as a pickle.*--overwrite"):
        load_finetuned(model_dir, encoder=ToyTextEncoder())
    # the same payload under the new name is just an unreadable file
    r = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=tmp_path / "run")
    plant_pickle(r.out_dir / "model.safetensors", marker)
    with pytest.raises(InputError, match=r"model.safetensors is not a readable fine-tuned model"):
        load_finetuned(r.out_dir, encoder=ToyTextEncoder())
    # an old checkpoint.pt in a run folder, with and without --resume
    run_dir = tmp_path / "old-run"
    run_dir.mkdir()
    plant_pickle(run_dir / "checkpoint.pt", marker)
    for resume in (False, True):
        with pytest.raises(InputError, match=r"checkpoint.pt was written by an older medlens as a pickle"):
            finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=run_dir, resume=resume)
    # a pickle as the new checkpoint: unreadable, named, never run
    plant_pickle(r.out_dir / "checkpoint.safetensors", marker)
    with pytest.raises(InputError, match=r"checkpoint.safetensors is not a readable checkpoint"):
        finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=r.out_dir, resume=True)
    assert not marker.exists()
    # --overwrite re-creates the run from scratch
    again = finetune(ToyTextEncoder(), toy_tree, texts, labels, config=cfg, out_dir=run_dir, overwrite=True)
    assert not (run_dir / "checkpoint.pt").exists()
    assert load_finetuned(run_dir, encoder=ToyTextEncoder()).predict_proba(texts).shape == (16, len(toy_tree))
    assert again.resumed_from == 0


def test_config_from_dict_reads_the_old_k_key():
    from medlens.hierarchy.finetune import FinetuneConfig

    new = FinetuneConfig(branch_depth=2, epochs=3)
    old = new.to_dict()
    old["k"] = old.pop("branch_depth")  # a finetune.json written before the one-name rule
    assert FinetuneConfig.from_dict(old) == new
    assert FinetuneConfig.from_dict(new.to_dict()) == new
