"""Training loop for taxonomy-aware fine-tuning: seeded, resumable, atomic checkpoints every epoch.

Modes
-----
``head``        the encoder is frozen; only the projection heads and node biases train (features are
                computed once and cached in memory, so an epoch costs almost nothing).
``last-block``  the last transformer block of the tower and the modules after it (final norm, pooling,
                projection) train with the heads.
``lora``        LoRA adapters (peft) on the tower's attention projections train with the heads.
``full``        every parameter trains.

Determinism: every epoch reseeds torch with ``(seed, epoch)`` and draws its batch order from
``numpy.random.default_rng([seed, epoch])``; a run killed after epoch ``e`` and resumed with ``resume=True``
restarts from the checkpoint of epoch ``e`` and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError
from medlens.hierarchy._encode import EncodedLabels, encode_labels
from medlens.hierarchy.finetune._losses import LossConfig, RadialConfig, make_loss
from medlens.hierarchy.finetune._model import TaxonomyModel, node_probabilities
from medlens.hierarchy.finetune._structure import TaxonomyArrays
from medlens.io import atomic_write, atomic_write_json
from medlens.taxonomy import Taxonomy

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")

__all__ = ["FinetuneConfig", "FinetuneResult", "FinetunedModel", "finetune", "load_finetuned", "node_texts"]

log = logging.getLogger(__name__)

MODES = ("head", "last-block", "lora", "full")
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
META = "finetune.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines a fine-tuning run (hashed into the run manifest)."""

    loss: LossConfig = field(default_factory=LossConfig)
    mode: str = "last-block"
    epochs: int = 5
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    dim: int | None = None
    temperature: float = 0.07
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    branch_depth: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown fine-tuning mode {self.mode!r}; expected one of {', '.join(MODES)}.")
        for name in ("epochs", "batch_size", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("lr", "head_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}.")
        if not 0 <= self.warmup < 1:
            raise InputError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        d = dict(d)
        if "k" in d:  # checkpoints written before the one-name rule called the branch depth "k"
            d["branch_depth"] = d.pop("k")
        loss = dict(d.pop("loss", {}))
        loss["radial"] = RadialConfig(**loss.get("radial", {}))
        return cls(loss=LossConfig(**loss), **d)


def node_texts(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """The prompts that describe each non-root node (the zero-shot prompt table: the taxonomy's own prompts,
    else templates filled with the node's names)."""
    from medlens.hierarchy._prompts import build_prompt_table

    return build_prompt_table(taxonomy).prompts


def _node_features(encoder: Any, taxonomy: Taxonomy) -> tuple[np.ndarray, str]:
    """Prompt-ensemble embedding of each node (as in zero-shot scoring), or one-hot rows for image-only encoders."""
    from medlens.hierarchy._prompts import build_prompt_table, ensemble_embeddings

    if "text" not in encoder.config.modalities:
        return np.eye(len(taxonomy) - 1, dtype=np.float32), "one-hot"
    table = build_prompt_table(taxonomy)
    texts, owner = table.flat()
    emb = ensemble_embeddings(encoder.encode_texts(texts), owner, len(table.nodes), names=table.nodes)
    return emb.astype(np.float32), f"prompts (sha256 {table.sha256()[:12]})"


def _setup_trainable(model: TaxonomyModel, config: FinetuneConfig) -> None:
    """Freeze the encoder, then unfreeze (or add LoRA to) what the mode trains."""
    enc = model.encoder
    for p in enc.parameters():
        p.requires_grad_(False)
    tower = model.tower
    if config.mode == "full":
        for p in enc.parameters():
            p.requires_grad_(True)
    elif config.mode == "last-block":
        if not tower.blocks:
            raise InputError("this encoder exposes no transformer blocks; use --mode head, lora or full.")
        for m in [tower.blocks[-1], *tower.head]:
            for p in m.parameters():
                p.requires_grad_(True)
    elif config.mode == "lora":
        peft = require("peft", extra="hf", purpose="LoRA fine-tuning")
        names = {n.rsplit(".", 1)[-1] for n, m in enc.named_modules() if isinstance(m, torch.nn.Linear)}
        targets = [t for t in tower.lora_targets if t in names]
        if not targets:
            raise InputError(
                f"LoRA: none of the encoder's target layers {list(tower.lora_targets)} exist in this model; "
                "use --mode last-block or head."
            )
        lcfg = peft.LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
        )
        peft.inject_adapter_in_model(lcfg, enc)
        for n, p in enc.named_parameters():
            p.requires_grad_("lora_" in n)


def _scale_input_head(model: TaxonomyModel, sample: list[Any], arrays: TaxonomyArrays, radial: RadialConfig) -> None:
    """Rescale the input head so that ``‖z‖`` starts at the mean radial target (not the encoder's raw norm)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        norm = model.embed(model.tower.prepare(sample)).norm(dim=-1).mean()
        target = radial.r0 + radial.delta * float(arrays.depth.mean())
        if float(norm) > 0:
            model.proj.weight.mul_(target / norm)
            model.proj.bias.mul_(target / norm)
    model.train(was)


@contextlib.contextmanager
def _deterministic_algorithms() -> Iterator[None]:
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


def _trainable_state(model: TaxonomyModel) -> dict[str, Any]:
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    keep |= {"node_features"}
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items() if n in keep}


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def _lr_lambda(total: int, warmup: float) -> Callable[[int], float]:
    warm = max(1, int(round(total * warmup))) if warmup > 0 else 0

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


class _PrefixCache:
    """Outputs of the frozen blocks, computed once, replayed while the last block trains.

    In ``last-block`` mode everything before ``blocks[-1]`` is frozen: its output for a fixed batch never
    changes, so it is computed once (in eval mode, i.e. without dropout in the frozen layers) and, during
    training, ``blocks[-2]`` returns the cached tensor while the earlier blocks pass their input through. The
    embedding layer still runs (cheaply) so the model's own masks and position handling stay untouched.
    """

    def __init__(self, tower: Any, batches: list[list[Any]], progress: bool) -> None:
        from medlens._progress import progress_bar

        self.tower = tower
        self.blocks = list(tower.blocks)
        self.states: list[Any] = []
        self.tuple_out = False
        captured: list[Any] = []

        def hook(_module, _args, output):
            self.tuple_out = isinstance(output, tuple)
            captured.append((output[0] if self.tuple_out else output).detach())

        handle = self.blocks[-2].register_forward_hook(hook)
        was = tower.module.training
        tower.module.eval()
        try:
            with torch.no_grad(), progress_bar(sum(map(len, batches)), progress, "frozen layers") as bar:
                for raw in batches:
                    tower.forward(tower.prepare(raw))
                    self.states.append(captured.pop().clone())
                    bar(len(raw))
        finally:
            handle.remove()
            tower.module.train(was)

    @contextlib.contextmanager
    def replay(self, batch_id: int) -> Iterator[None]:
        """While active, the tower's forward skips the frozen blocks and resumes from the cached batch output."""
        cached = self.states[batch_id]
        wrap = (lambda h: (h,)) if self.tuple_out else (lambda h: h)

        def passthrough(hidden_states, *args, **kwargs):
            return wrap(hidden_states)

        def lookup(hidden_states, *args, **kwargs):
            return wrap(cached)

        for b in self.blocks[:-2]:
            b.forward = passthrough
        self.blocks[-2].forward = lookup
        try:
            yield
        finally:
            for b in self.blocks[:-1]:
                del b.forward  # back to the class method


def _batches(inputs: list[Any], batch_size: int) -> list[np.ndarray]:
    """Fixed batches; texts are grouped by length (less padding), images keep their order."""
    n = len(inputs)
    order = np.argsort([len(x) for x in inputs], kind="stable") if all(isinstance(x, str) for x in inputs) else None
    order = np.arange(n) if order is None else order
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


@dataclass
class FinetunedModel:
    """A fine-tuned model ready for inference: ``predict_proba(inputs)`` → node probabilities."""

    model: TaxonomyModel
    taxonomy: Taxonomy
    arrays: TaxonomyArrays
    probability: str
    config: FinetuneConfig
    encoder: Any

    def predict_proba(self, inputs: Sequence[Any], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Node probabilities (n, n_nodes) in ``taxonomy.nodes`` order, root column 1."""
        logits, _ = self._run(inputs, batch_size, progress)
        return node_probabilities(logits, self.probability, self.arrays)

    def embed(self, inputs: Sequence[Any], *, batch_size: int = 64) -> np.ndarray:
        """Input embeddings ``z`` (unnormalised; their length carries the predicted depth)."""
        return self._run(inputs, batch_size, False)[1].numpy()

    def node_embeddings(self) -> np.ndarray:
        with torch.inference_mode():
            return self.model.node_embeddings().float().cpu().numpy()

    def radial_depth(self, inputs: Sequence[Any]) -> np.ndarray:
        """Depth read from ``‖z‖`` (radial read-out): ``round((‖z‖ - r0) / delta)``, clipped to the taxonomy."""
        r = self.config.loss.radial
        norms = np.linalg.norm(self.embed(inputs), axis=1)
        return np.clip(np.rint((norms - r.r0) / r.delta), 0, self.taxonomy.height).astype(int)

    def _run(self, inputs: Sequence[Any], batch_size: int, progress: bool) -> tuple[Any, Any]:
        from medlens._progress import progress_bar

        self.model.eval()
        outs, zs = [], []
        inputs = list(inputs)
        if not inputs:
            n = len(self.taxonomy) - 1
            return torch.zeros((0, n)), torch.zeros((0, self.model.proj.out_features))
        batches = _batches(inputs, batch_size)  # texts grouped by length: far less padding
        with torch.inference_mode(), progress_bar(len(inputs), progress, "scoring") as bar:
            for idx in batches:
                o = self.model(self.model.tower.prepare([inputs[i] for i in idx]))
                outs.append(o.logits.float().cpu())
                zs.append(o.z.float().cpu())
                bar(len(idx))
        inv = torch.as_tensor(np.argsort(np.concatenate(batches)))
        return torch.cat(outs)[inv], torch.cat(zs)[inv]


@dataclass
class FinetuneResult:
    model: FinetunedModel
    history: list[dict[str, Any]]
    out_dir: Path | None
    resumed_from: int


def _input_modality(encoder: Any, modality: str | None) -> str:
    """The tower the inputs go through: the only one, or ``image`` for image-text encoders unless told."""
    have = encoder.config.modalities
    if modality is None:
        return "text" if have == {"text"} else "image"
    if modality not in have:
        raise InputError(
            f"encoder {encoder.config.name!r} has no {modality} tower (it encodes {encoder.config.modality}); "
            f"use an encoder that encodes {modality}s."
        )
    return modality


def _build(
    encoder: Any, taxonomy: Taxonomy, config: FinetuneConfig, node_feats: np.ndarray | None, modality: str
) -> TaxonomyModel:
    tower = encoder.tower(modality)
    if node_feats is None:
        node_feats, _ = _node_features(encoder, taxonomy)
    torch.manual_seed(config.seed)
    model = TaxonomyModel(tower, node_feats, dim=config.dim, temperature=config.temperature)
    _setup_trainable(model, config)
    model.to(getattr(encoder, "device", "cpu"))
    return model


def finetune(
    encoder: Any,
    taxonomy: Taxonomy,
    inputs: Sequence[Any],
    labels: EncodedLabels | Sequence[Any],
    *,
    config: FinetuneConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    val: tuple[Sequence[Any], EncodedLabels | Sequence[Any]] | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    modality: str | None = None,
) -> FinetuneResult:
    """Fine-tune ``encoder`` on (``inputs``, ``labels``) with a taxonomy-aware loss.

    Parameters
    ----------
    encoder : medlens.encoders.Encoder
        Any adapter with a :class:`~medlens.encoders.Tower`; its text tower also embeds the node prompts.
    taxonomy : Taxonomy
    inputs : sequence
        Texts, or images (paths, PIL images, arrays) for image encoders.
    labels : EncodedLabels or label lists
        Truth per input (single node ids or label sets).
    config : FinetuneConfig
    out_dir : path, optional
        Run folder: ``manifest.json``, ``checkpoint.pt`` (every epoch, atomic), ``history.json``, and at the end
        ``model.pt`` (the trained parameters only) and ``finetune.json``. ``None`` trains in memory.
    resume : bool
        Continue from ``checkpoint.pt`` (the manifest must match this config).
    val : (inputs, labels), optional
        Evaluated after every epoch (hF, CAE, coverage at probability 0.5; macro-AUROC).
    callback : callable, optional
        Called as ``callback(epoch, history_row)`` after each epoch's checkpoint (raise to stop).
    modality : {"text", "image"}, optional
        Which tower the inputs go through; by default the encoder's only one, or ``image`` for image-text
        encoders (whose text tower then embeds the node prompts).
    """
    from medlens._progress import progress_bar
    from medlens.io import prepare_run_dir

    config = config or FinetuneConfig()
    modality = _input_modality(encoder, modality)
    y = labels if isinstance(labels, EncodedLabels) else encode_labels(list(labels), taxonomy, name="labels")
    inputs = list(inputs)
    if len(inputs) != y.n:
        raise InputError(f"{len(inputs)} inputs but {y.n} labels; give one label (set) per input.")
    if not inputs:
        raise InputError("no training inputs.")
    arrays = TaxonomyArrays(taxonomy, config.branch_depth)
    loss_fn = make_loss(config.loss.name, arrays, config.loss)
    targets_all = torch.as_tensor(y.closure[:, 1:].toarray(), dtype=torch.float32)
    node_feats, node_init = _node_features(encoder, taxonomy)
    model = _build(encoder, taxonomy, config, node_feats, modality)
    device = model.bias.device
    if config.loss.name == "radial" and not resume:
        _scale_input_head(model, inputs[:64], arrays, config.loss.radial)
    loss_fn.to(device)
    data_hash = config_hash({"inputs": [str(x) for x in inputs], "labels": y.given.indices.tolist()})
    run_config = {
        "finetune": config.to_dict(),
        "encoder": {"source": encoder.config.source, "name": encoder.config.name, "model_id": encoder.model_id},
        "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "sha256": taxonomy.content_hash()},
        "data_sha256": data_hash,
        "n": len(inputs),
    }
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        discarded = prepare_run_dir(out, run_config, overwrite=overwrite)
        ckpt = out / CHECKPOINT
        if discarded or (overwrite and not resume):
            for name in (CHECKPOINT, MODEL, META, "history.json"):
                (out / name).unlink(missing_ok=True)
        elif ckpt.exists() and not resume:
            raise InputError(
                f"{out} already holds a checkpoint of this run; pass --resume to continue it or --overwrite to restart."
            )

    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": model.head_parameters(), "lr": config.head_lr, "weight_decay": 0.0}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.lr, "weight_decay": config.weight_decay})
    opt = torch.optim.AdamW(groups)
    steps_per_epoch = math.ceil(len(inputs) / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps_per_epoch * config.epochs, config.warmup))
    history: list[dict[str, Any]] = []
    start = 0
    if out is not None and resume and (out / CHECKPOINT).exists():
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        missing = set(state["model"]) - set(model.state_dict())
        if missing:
            raise InputError(f"{out / CHECKPOINT} does not fit this model (unknown keys {sorted(missing)[:3]}).")
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start = state["history"], int(state["epoch"])
        log.info("resuming %s from epoch %d", out, start)

    frozen = config.mode == "head"
    batches = _batches(inputs, config.batch_size)
    prefix = None
    if config.mode == "last-block" and len(model.tower.blocks) >= 2 and start < config.epochs:
        prefix = _PrefixCache(model.tower, [[inputs[i] for i in b] for b in batches], progress)
    cached_feats = None
    if frozen and start < config.epochs:
        model.encoder.eval()
        feats = []
        with torch.no_grad():
            for s in range(0, len(inputs), 64):
                feats.append(model.tower.forward(model.tower.prepare(inputs[s : s + 64])).float())
        cached_feats = torch.cat(feats).clone()

    t_train = time.perf_counter()
    # Deterministic kernels: with several CPU threads some backward passes (the accumulating index backward of
    # the tree terms) sum in thread order, and a resumed run would drift from an uninterrupted one by ~1e-8.
    with _deterministic_algorithms():
        for epoch in range(start, config.epochs):
            torch.manual_seed(config.seed * 1_000_003 + epoch)
            rng = np.random.default_rng([config.seed, epoch])
            if frozen:  # cached features: a fresh random batch split every epoch
                perm = rng.permutation(len(inputs))
                plan = [(-1, perm[s : s + config.batch_size]) for s in range(0, len(perm), config.batch_size)]
            else:  # fixed (length-grouped) batches in a fresh random order every epoch
                plan = [(int(b), batches[b]) for b in rng.permutation(len(batches))]
            model.train()
            if frozen:
                model.encoder.eval()
            sums: dict[str, float] = {}
            n_batches = 0
            t0 = time.perf_counter()
            with progress_bar(len(inputs), progress, f"epoch {epoch + 1}/{config.epochs}") as bar:
                for batch_id, idx in plan:
                    if cached_feats is not None:
                        out_b = model.head(cached_feats[idx].to(device))
                    elif prefix is not None:
                        with prefix.replay(batch_id):
                            out_b = model(model.tower.prepare([inputs[i] for i in idx]))
                    else:
                        out_b = model(model.tower.prepare([inputs[i] for i in idx]))
                    loss, parts = loss_fn(out_b, targets_all[idx].to(device))
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"loss became {float(loss)} at epoch {epoch + 1}; lower the learning rate."
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], config.max_grad_norm)
                    opt.step()
                    sched.step()
                    for key, v in {"loss": float(loss.detach()), **parts}.items():
                        sums[key] = sums.get(key, 0.0) + v
                    n_batches += 1
                    bar(len(idx))
            row: dict[str, Any] = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t0, 2)}
            row |= {f"train_{k}": v / n_batches for k, v in sums.items()}
            if val is not None:
                row |= _validate(
                    FinetunedModel(model, taxonomy, arrays, loss_fn.probability, config, encoder), val, config
                )
            history.append(row)
            log.info("epoch %d/%d: %s", epoch + 1, config.epochs, {k: round(v, 4) for k, v in row.items()})
            if out is not None:
                _atomic_torch_save(
                    {
                        "epoch": epoch + 1,
                        "model": _trainable_state(model),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "history": history,
                        "config_hash": config_hash(run_config),
                    },
                    out / CHECKPOINT,
                )
                atomic_write_json(out / "history.json", history)
            if callback is not None:
                callback(epoch + 1, row)
    train_seconds = time.perf_counter() - t_train
    fitted = FinetunedModel(model, taxonomy, arrays, loss_fn.probability, config, encoder)
    if out is not None:
        _atomic_torch_save({"model": _trainable_state(model), "config": config.to_dict()}, out / MODEL)
        meta = {
            "config": config.to_dict(),
            "encoder": {
                "source": encoder.config.source,
                "name": encoder.config.name,
                "model_id": encoder.model_id,
                "family": getattr(encoder.config, "family", None),
                "max_length": encoder.config.max_length,
                "modality": modality,
            },
            "taxonomy": taxonomy.to_dict(),
            "taxonomy_sha256": taxonomy.content_hash(),
            "nodes": list(taxonomy.nodes[1:]),
            "node_init": node_init,
            "probability": loss_fn.probability,
            "history": history,
            "train_seconds": round(train_seconds, 2),
            "trainable_parameters": int(sum(p.numel() for g in groups for p in g["params"])),
        }
        prov = provenance(
            command="hier finetune",
            config=run_config,
            seed=config.seed,
            taxonomy=taxonomy,
            models={"encoder": encoder.model_id},
        )
        atomic_write_json(out / META, stamp(meta, prov))
    return FinetuneResult(fitted, history, out, start)


def _validate(fm: FinetunedModel, val: tuple, config: FinetuneConfig) -> dict[str, Any]:
    from medlens.hierarchy import evaluate
    from medlens.hierarchy._decide import predict_labels

    v_inputs, v_labels = val
    tax = fm.taxonomy
    yv = v_labels if isinstance(v_labels, EncodedLabels) else encode_labels(list(v_labels), tax, name="val labels")
    p = fm.predict_proba(list(v_inputs))
    pred = predict_labels(p, tax, rule="multilabel", lam=0.5)
    r = evaluate(yv, pred, taxonomy=tax, branch_depth=config.branch_depth, node_scores=p, ci=None).to_dict()
    return {
        "val_hF": r["hF"],
        "val_cae_rate": r["cae_rate"],
        "val_coverage": r["coverage"],
        "val_macro_auroc": r["flat"]["macro_auroc"],
    }


def load_finetuned(out_dir: str | os.PathLike, *, encoder: Any = None, device: str = "cpu") -> FinetunedModel:
    """Load a model written by :func:`finetune` (``model.pt`` + ``finetune.json``) for inference.

    The base encoder is loaded from the source recorded at training time unless ``encoder`` is given.
    """
    out = Path(out_dir)
    meta_path = out / META
    if not meta_path.is_file() or not (out / MODEL).is_file():
        raise InputError(f"{out}: no finished fine-tuning run here (expected {META} and {MODEL}).")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    config = FinetuneConfig.from_dict(meta["config"])
    tax = Taxonomy.from_dict(meta["taxonomy"])
    if tax.content_hash() != meta["taxonomy_sha256"]:
        raise InputError(f"{meta_path}: the stored taxonomy does not match its recorded hash; the file was edited.")
    if encoder is None:
        from medlens.encoders import load_encoder

        src = meta["encoder"]
        name = src["name"] if src["model_id"] and src["name"] == "minilm" else src["source"]
        kw = {"device": device}
        if src.get("max_length"):
            kw["max_length"] = src["max_length"]
        encoder = load_encoder(name, **kw)
    state = torch.load(out / MODEL, map_location=getattr(encoder, "device", device), weights_only=False)
    nf = state["model"]["node_features"].numpy()
    model = _build(encoder, tax, replace(config), nf, _input_modality(encoder, meta["encoder"].get("modality")))
    unknown = set(state["model"]) - set(model.state_dict())
    if unknown:
        raise InputError(f"{out / MODEL} does not fit the encoder {encoder.model_id!r} (keys {sorted(unknown)[:3]}).")
    model.load_state_dict(state["model"], strict=False)
    model.eval()
    arrays = TaxonomyArrays(tax, config.branch_depth)
    return FinetunedModel(model, tax, arrays, meta["probability"], config, encoder)
