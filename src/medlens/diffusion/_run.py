"""The documents behind ``medlens anomaly train | score | evaluate``: image folders in, stamped JSON out.

Image folders hold ``.png`` or ``.npy`` files or NIfTI volumes read slice by slice (ids, intensity scaling and
the ``<volume>/z<k>`` slice ids: :mod:`medlens.diffusion._folders`). Maps are written as float32 ``.npy``, one
per image or slice, under the same ids; the evaluation of slices of volumes is reported per volume too.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError, check_option
from medlens.diffusion._folders import check_mask_volumes, read_image_folder, volume_groups

__all__ = [
    "PERCEPTUAL",
    "UNET_PRESETS",
    "read_image_folder",
    "run_anomaly_evaluate",
    "run_anomaly_score",
    "run_anomaly_train",
    "unet_config",
]

#: ``anomaly train --unet NAME``: UNet configs by size (``build_unet`` keys; the rest from ``DEFAULT_UNET``).
UNET_PRESETS: dict[str, dict[str, Any]] = {
    # ~0.6 M parameters, no attention: the shipped brain-anomaly demo denoiser's shape (two CPU cores)
    "small": {"channels": [8, 16, 32, 64], "attention_levels": [False] * 4, "num_res_blocks": 1, "norm_num_groups": 8},
    # ~1 M parameters, attention at the lowest level: DEFAULT_UNET
    "default": {},
    # THOR's / MedEdit's UNet (~17 M parameters at 128²): a GPU model
    "paper": {"channels": [128, 256, 256], "attention_levels": [False, True, True], "num_res_blocks": 1,
              "norm_num_groups": 32, "num_head_channels": 256},
}  # fmt: skip
#: ``anomaly score --perceptual``: no perceptual weighting, or the fixed random conv extractor (or a TorchScript file).
PERCEPTUAL = ("none", "random")


def unet_config(value: str | os.PathLike | dict[str, Any] | None) -> dict[str, Any] | None:
    """A UNet config from a preset name (:data:`UNET_PRESETS`), a JSON file of ``build_unet`` keys, or a dict."""
    if value is None or isinstance(value, dict):
        return value
    name = str(value)
    if name in UNET_PRESETS:
        return dict(UNET_PRESETS[name])
    path = Path(name)
    if path.suffix.lower() != ".json":
        raise InputError(f"--unet {name!r}: give a preset ({', '.join(UNET_PRESETS)}) or a .json file of UNet keys.")
    import json

    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"--unet {path}: cannot read it ({e.strerror or e}).") from None
    except ValueError as e:
        raise InputError(f"--unet {path}: not valid JSON ({e}).") from None
    if not isinstance(cfg, dict):
        raise InputError(f"--unet {path}: the JSON must be an object of UNet keys (channels, attention_levels, ...).")
    return cfg


def _perceptual(value: str | os.PathLike | None) -> Any:
    """``None`` (``none``), the fixed random conv extractor (``random``), or a feature extractor file
    (``x (B, C, H, W) -> list of feature maps``) as a :class:`~medlens.diffusion.FeatureDistance`: a
    ``torch.export`` program (``.pt2``, from ``torch.export.save``; the format torch recommends) or a TorchScript
    module (``.pt``; torch deprecates TorchScript and warns when it loads one)."""
    from medlens.diffusion._maps import FeatureDistance, random_conv_extractor

    if value is None or str(value) == "none":
        return None
    if str(value) == "random":
        return FeatureDistance(random_conv_extractor())
    path = Path(value)
    if not path.is_file():
        raise InputError(
            f"--perceptual {value}: give none, random or a feature extractor file (.pt2 from torch.export.save, or "
            "a TorchScript .pt)."
        )
    torch = require("torch", extra="torch", purpose="a perceptual feature extractor")
    if path.suffix.lower() == ".pt2":
        quiet = logging.getLogger("torch.export")  # it logs a traceback before raising on a file it cannot read
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            program = torch.export.load(str(path))
        except Exception as e:  # noqa: BLE001 - torch.export raises several types for a file it cannot read
            raise InputError(
                f"--perceptual {path}: not a torch.export program ({type(e).__name__}); write it with "
                "torch.export.save(torch.export.export(model, (example,)), path)."
            ) from None
        finally:
            quiet.setLevel(level)
        net = _static_batches(program.module(), _input_shape(program), path)
    else:
        try:
            net = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:  # noqa: BLE001 - torch.jit raises several types for a file that is not TorchScript
            raise InputError(
                f"--perceptual {path}: not a TorchScript module ({type(e).__name__}); a torch.export program must "
                "end in .pt2."
            ) from None

    def extract(x: Any) -> list[Any]:
        out = net(x)
        return list(out) if isinstance(out, list | tuple) else [out]

    return FeatureDistance(extract)


def _input_shape(program: Any) -> tuple[int | None, ...] | None:
    """The exported program's (first) user input shape: ints where it was exported static, None where dynamic."""
    users = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in users and hasattr(node.meta.get("val"), "shape"):
            return tuple(d if isinstance(d, int) else None for d in node.meta["val"].shape)
    return None


def _static_batches(net: Any, shape: tuple[int | None, ...] | None, path: Path) -> Any:
    """Call an exported extractor on any batch: a program exported with a static batch size B runs in chunks of B
    (the last one padded with copies of its last image, whose outputs are dropped); its other dims must match."""
    if shape is None or shape[0] is None:
        return net

    def run(x: Any) -> Any:
        want = shape[1:]
        got = tuple(x.shape[1:])
        if any(w is not None and w != g for w, g in zip(want, got, strict=False)) or len(want) != len(got):
            raise InputError(
                f"--perceptual {path}: exported for inputs of shape {shape} (None = dynamic) but the images are "
                f"(B, {', '.join(map(str, got))}); export it at that size or with dynamic_shapes."
            )
        import torch

        b, n = shape[0], x.shape[0]
        outs = []
        for i in range(0, n, b):
            chunk = x[i : i + b]
            k = chunk.shape[0]
            if k < b:
                chunk = torch.cat([chunk, chunk[-1:].expand(b - k, *chunk.shape[1:])])
            out = net(chunk)
            out = list(out) if isinstance(out, list | tuple) else [out]
            outs.append([o[:k] for o in out])
        return [torch.cat([o[j] for o in outs]) for j in range(len(outs[0]))]

    return run


def run_anomaly_train(
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    generator: str | None = None,
    n_images: int = 256,
    size: int = 64,
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 1e-3,
    num_train_timesteps: int = 1000,
    noise: str = "gaussian",
    unet: str | os.PathLike | dict[str, Any] | None = None,
    conditioned: str | None = None,
    classifier_lr: float = 5e-4,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a denoiser on healthy images (a folder, or a registered generator's ``train`` split) into the run
    folder ``out`` (``model.safetensors`` + checkpoint, resumable). ``steps`` optimiser steps in all, in
    epochs of at most 100.

    ``conditioned="class"`` (weakly supervised, for the guidance methods): the images are healthy (class 0)
    and diseased (class 1) — a folder's ``healthy/`` and ``anomalous/`` sub-folders, or the generator's
    ``train`` split plus as many slices with lesions; the denoiser is class-conditioned (null-class dropout
    0.1, for ``cfg``) and a noise-aware classifier is trained for ``steps`` steps too, at its own learning rate
    ``classifier_lr``, into ``out/classifier`` (for ``classifier``). (At the demo UNet's 2e-3 the classifier's
    ReLU head died in the first epoch: constant logits, a zero input gradient, and classifier guidance equal to
    plain DDIM decoding; at 5e-4 it learns.) ``unet``: a preset name of :data:`UNET_PRESETS`, a JSON file or a
    dict of ``build_unet`` keys.

    ``conditioned="mask"`` (an inpainting model for ``medlens edit``): images with lesions and their lesion masks
    — a folder's ``images/`` and ``masks/`` sub-folders (paired by id), or the generator's ``train`` split with
    lesions; the denoiser sees ``[x_t, x_0⊙(1−m), m]`` (``mask_conditioned`` in its config).

    ``conditioned="palette"`` (the separately trained model of ``medlens edit --method palette``): the same images
    and masks; the denoiser sees ``[x_t, c]`` with ``c = m⊙N(0, I) + (1−m)⊙x_0``, fresh noise every step
    (``palette_conditioned`` in its config)."""
    from medlens.diffusion import DATASETS
    from medlens.diffusion._backbones import build_unet
    from medlens.diffusion._train import train_diffusion

    if (images is None) == (generator is None):
        raise InputError("give exactly one of --images DIR and --generator NAME.")
    unet = unet_config(unet)
    if conditioned is not None:
        check_option(conditioned, ("class", "mask", "palette"), name="--conditioned")
    paired = conditioned in ("mask", "palette")  # lesion images with their masks
    labels = masks = None
    if generator is not None:
        from medlens.diffusion._brain import BrainConfig, brain_slices

        gen = DATASETS.get(generator)
        n_healthy = 0 if paired else n_images  # the mask and Palette models train on lesioned slices only
        data = gen(n_train=n_healthy, n_healthy=0, n_test=0, seed=seed, config=BrainConfig(size=size))
        x, source = data["train"].images, {"generator": DATASETS.meta(generator).get("version", generator)}
        if paired:
            bad = brain_slices(n_images, anomalous=True, seed=seed, split="train", config=BrainConfig(size=size))
            x, masks = bad.images, bad.masks
        if conditioned == "class":
            bad = brain_slices(n_images, anomalous=True, seed=seed, split="train", config=BrainConfig(size=size))
            x, labels = np.concatenate([x, bad.images]), np.repeat([0, 1], [len(x), len(bad.images)])
    elif paired:
        x, masks = _image_mask_pairs(images, conditioned)
        source = {"images": str(images), "n": len(x)}
    else:
        folder = read_image_folder(images)
        x, source = folder["array"], {"images": str(images), "n": len(folder["ids"])}
        if conditioned == "class":
            labels = _class_labels(folder["ids"], images)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps must be a positive integer; got {steps!r}.")
    epochs = math.ceil(steps / 100)
    per_epoch = math.ceil(steps / epochs)
    cfg = {"sample_size": int(x.shape[-1]), **({"num_classes": 2} if labels is not None else {}),
           **({f"{conditioned}_conditioned": True} if masks is not None else {}), **(unet or {})}  # fmt: skip
    model = build_unet(cfg, seed=seed)
    res = train_diffusion(model, x, labels=labels, masks=masks, epochs=epochs, steps_per_epoch=per_epoch, batch_size=batch_size, lr=lr,
                          num_train_timesteps=num_train_timesteps, noise=noise, seed=seed, out=out, resume=resume,
                          overwrite=overwrite, progress=progress)  # fmt: skip
    config = {"source": source, "steps": epochs * per_epoch, "batch_size": batch_size, "lr": lr, "noise": noise,
              "num_train_timesteps": num_train_timesteps, "unet": model.config}  # fmt: skip
    hist = res["history"]
    extra: dict[str, Any] = {}
    if masks is not None:
        config |= {"conditioned": conditioned}
    if labels is not None:
        from medlens.diffusion._guidance import build_classifier, train_classifier

        clf = build_classifier({"sample_size": int(x.shape[-1]), "in_channels": int(x.shape[1])}, seed=seed)
        cres = train_classifier(clf, x, labels, epochs=epochs, steps_per_epoch=per_epoch, batch_size=batch_size,
                                lr=classifier_lr, num_train_timesteps=num_train_timesteps, seed=seed, out=Path(out) / "classifier",
                                resume=resume, overwrite=overwrite, progress=progress)  # fmt: skip
        ch = cres["history"]
        config |= {"conditioned": conditioned, "classifier": clf.config, "classifier_lr": classifier_lr}
        extra = {"classifier_path": str(cres["classifier_path"]), "n_labels": [int((labels == k).sum()) for k in (0, 1)],
                 "classifier_first_loss": ch[0]["train_loss"] if ch else None,
                 "classifier_last_loss": ch[-1]["train_loss"] if ch else None}  # fmt: skip
    return stamp(
        {**extra, "model_path": str(res["model_path"]), "steps": epochs * per_epoch, "image_shape": list(x.shape[1:]),
         "n_parameters": int(sum(p.numel() for p in model.parameters())),
         "first_loss": hist[0]["train_loss"] if hist else None, "last_loss": hist[-1]["train_loss"] if hist else None},
        provenance(command="anomaly train", config=config, seed=seed),
    )  # fmt: skip


def _image_mask_pairs(images: Any, conditioned: str = "mask") -> tuple[np.ndarray, np.ndarray]:
    root = Path(images)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise InputError(
            f"--images {images}: --conditioned {conditioned} needs two sub-folders, images/ and masks/ (paired by id)."
        )
    img = read_image_folder(root / "images", what="--images")
    msk = read_image_folder(root / "masks", kind="mask", what="--images masks/")
    index = {i: k for k, i in enumerate(msk["ids"])}
    missing = [i for i in img["ids"] if i not in index]
    if missing:
        raise InputError(f"--images {images}: masks/ has no mask for image {missing[0]!r} ({len(missing)} missing).")
    m = msk["array"][[index[i] for i in img["ids"]]]
    if m.shape != img["array"].shape:
        raise InputError(f"--images {images}: masks are {m.shape[2:]} but images are {img['array'].shape[2:]}.")
    return img["array"], m


def _class_labels(ids: list[str], images: Any) -> np.ndarray:
    top = [i.split("/", 1)[0] for i in ids]
    bad = next((i for i, t in zip(ids, top, strict=True) if t not in ("healthy", "anomalous")), None)
    if bad is not None or "healthy" not in top or "anomalous" not in top:
        raise InputError(
            f"--images {images}: --conditioned class needs the images in two sub-folders, healthy/ and anomalous/"
            + (f" (found {bad!r})." if bad else " (one of them is missing or empty).")
        )
    return np.array([0 if t == "healthy" else 1 for t in top])


def _model_file(path: str | os.PathLike) -> Path:
    from medlens.diffusion._train import MODEL_FILE

    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise InputError(f"--model-path {path}: no model file here (give a model.safetensors or its run folder).")
    return p


class ScoreTask:
    """A picklable recipe: ``task()`` loads the UNet (and the classifier and perceptual extractor the method
    needs) and reads the image folder once, then ``fn([k])`` scores chunk ``k`` (images ``k*batch_size`` onwards,
    seed ``seed + k``) and returns ``{"maps", "reconstructions", "scores", "nfe", "seconds"}``. Made with
    ``loaded=`` it reuses this process's model and images; pickled to a Ray actor it travels without them."""

    def __init__(self, path: Path, images: str, opts: dict[str, Any], *, device: str, loaded: Any = None) -> None:
        self.path, self.images, self.opts, self.device = Path(path), str(images), dict(opts), device
        self._loaded = loaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}

    def load(self, **have: Any) -> dict[str, Any]:
        """Model, schedule, classifier, perceptual distance and images (on ``device``); ``perceptual`` and
        ``array`` already loaded by the caller (the driver has them) are reused, not read again."""
        from medlens._device import resolve_device
        from medlens.diffusion._backbones import load_unet
        from medlens.diffusion._schedule import make_schedule

        model, meta = load_unet(self.path)
        clf = None
        if self.opts["method"] == "classifier":
            from medlens.diffusion._guidance import CLASSIFIER_FILE, load_classifier

            clf = load_classifier(self.path.parent / "classifier" / CLASSIFIER_FILE)[0].to(resolve_device(self.device))
        sched = make_schedule(meta.get("schedule", "linear"), int(meta.get("num_train_timesteps", 1000)))
        return {"model": model.to(resolve_device(self.device)), "meta": meta, "classifier": clf, "schedule": sched,
                "perceptual": have["perceptual"] if "perceptual" in have else _perceptual(self.opts["perceptual"]),
                "array": have["array"] if "array" in have else read_image_folder(self.images)["array"]}  # fmt: skip

    def __call__(self):
        from medlens.diffusion._reconstruct import score_images

        ld = self._loaded or self.load()
        o = self.opts
        bs = int(o["batch_size"])

        def fn(chunks: list[int]) -> dict[str, Any]:
            (k,) = chunks
            x = ld["array"][k * bs : (k + 1) * bs]
            t = time.perf_counter()
            res = score_images(ld["model"], x, ld["schedule"], method=o["method"], t0=o["t0"], steps=o["steps"],
                               seed=o["seed"] + k, batch_size=bs, classifier=ld["classifier"], scale=o["scale"],
                               weight=o["weight"], perceptual=ld["perceptual"])  # fmt: skip
            return {"maps": np.asarray(res["maps"], dtype=np.float32),
                    "reconstructions": np.asarray(res["reconstructions"], dtype=np.float32),
                    "scores": np.asarray(res["scores"], dtype=np.float64), "nfe": int(res["nfe"]),
                    "seconds": (time.perf_counter() - t) / len(x)}  # fmt: skip

        return fn


def run_anomaly_score(
    model_path: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "anoddpm",
    t0: int = 250,
    steps: int | None = 25,
    scale: float = 10.0,
    weight: float = 3.0,
    perceptual: str | os.PathLike | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Score every image of a folder: one float32 map ``out/maps/<id>.npy`` and reconstruction
    ``out/reconstructions/<id>.npy`` each, one ``results.jsonl`` row
    each (id, score, nfe, seconds). Images go in fixed chunks of ``batch_size`` (seed ``seed + chunk``), so an
    interrupted run re-run with the same ``out`` skips finished chunks and ends with the same maps.

    ``classifier`` uses the noise-aware classifier trained next to the model (``classifier/classifier.safetensors``
    in the run folder of ``anomaly train --conditioned class``) with gradient scale ``scale``; ``cfg`` needs a
    class-conditioned model and uses guidance weight ``weight``. ``perceptual`` weights the maps by a feature
    distance (THOR's temporal maps, the residual of the other methods): ``none``, ``random`` (a fixed random
    conv extractor) or a TorchScript extractor file returning a list of feature maps.

    ``executor="ray"`` scores the chunks on ``workers`` Ray actors (``ray_address``; one GPU each with a CUDA
    ``device``), each loading the model and reading the image folder itself (so the paths must be visible to
    every node); the chunks and their seeds are the local ones, so the maps are too, and this process alone
    writes the files and ``results.jsonl`` (same resume). The executor is not part of the configuration."""
    from medlens.diffusion._reconstruct import METHODS
    from medlens.executors import check_executor_options, make_executor, plan_blocks
    from medlens.io import RunFolder, atomic_write_bytes

    check_executor_options(executor, ray_address, workers)
    check_option(method, METHODS, name="--method")
    distance = _perceptual(perceptual)  # a bad --perceptual fails here, before any model loads
    path = _model_file(model_path)
    folder = read_image_folder(images)
    opts = {"method": method, "t0": t0, "steps": steps, "scale": scale, "weight": weight, "seed": seed,
            "batch_size": batch_size, "perceptual": None if perceptual is None else str(perceptual)}  # fmt: skip
    task = ScoreTask(path, str(images), opts, device=device)
    if method == "classifier":
        from medlens.diffusion._guidance import CLASSIFIER_FILE

        cpath = path.parent / "classifier" / CLASSIFIER_FILE
        if not cpath.is_file():
            raise InputError(f"--method classifier: no {cpath} next to the model; train with --conditioned class.")
    loaded = task.load(perceptual=distance, array=folder["array"])
    model = loaded["model"]
    if model.conditioning in ("mask", "palette"):
        editing = "Palette" if model.conditioning == "palette" else "mask-conditioned"
        raise InputError(
            f"--model-path {path.name} is a {editing} editing model (it needs a lesion mask per image); anomaly "
            "score needs a denoiser trained on healthy images: `medlens anomaly train` without --conditioned (or "
            "--conditioned class for --method classifier/cfg). Edit with it through `medlens edit`."
        )
    want = (model.config["in_channels"], model.config["sample_size"], model.config["sample_size"])
    if tuple(folder["array"].shape[1:]) != want:
        raise InputError(
            f"--images are {tuple(folder['array'].shape[2:])} with 1 channel; the model {path.name} takes "
            f"{want[0]} channel(s) of {want[1]}x{want[2]}. Resize the images to the checkpoint's size."
        )
    if method == "cfg" and model.null_class is None:
        raise InputError(f"--method cfg: {path.name} is not class-conditioned; train it with --conditioned class.")
    runner = make_executor(executor, ray_address=ray_address, workers=workers, device=device)
    if runner.name == "local":
        task._loaded = loaded
    config = {"task": "anomaly.score", "model_sha": config_hash({"file": str(path.resolve()), "size": path.stat().st_size}),
              "method": method, "t0": t0, "steps": steps, "batch_size": batch_size, "seed": seed,
              **({"scale": scale} if method == "classifier" else {"weight": weight} if method == "cfg" else {}),
              **({"perceptual": str(perceptual)} if loaded["perceptual"] is not None else {}),
              "ids": config_hash(folder["ids"])}  # fmt: skip
    prov = provenance(command="anomaly score", config=config, seed=seed, models={"unet": str(path)})
    with RunFolder(
        out, config, overwrite=overwrite, provenance=prov, outputs=["results.jsonl", "maps", "reconstructions"]
    ) as run:
        run.write_manifest(status="running")
        log = run.log("results.jsonl")
        done = log.ids()
        maps_dir, recon_dir = run.subdir("maps"), run.subdir("reconstructions")
        ids_of = [folder["ids"][start : start + batch_size] for start in range(0, len(folder["ids"]), batch_size)]
        todo = [k for k, ids in enumerate(ids_of) if not all(i in done for i in ids)]
        for b, res in runner.map_blocks(task, todo, plan_blocks(len(todo), block_size=1)):
            ids = ids_of[todo[b]]
            for i, m, r, s in zip(ids, res["maps"], res["reconstructions"], res["scores"], strict=True):
                for folder_, a in ((maps_dir, m[0]), (recon_dir, r[0] if len(r) == 1 else r)):
                    target = folder_ / f"{i}.npy"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, _npy_bytes(a))
                if i not in done:
                    log.append({"id": i, "score": float(s), "nfe": int(res["nfe"]), "seconds": float(res["seconds"])})
        records = log.records()
        run.write_manifest(status="done")
    nfe = [r["nfe"] for r in records]
    return stamp(
        {"method": method, "t0": t0, "steps": steps, "n_images": len(records), "maps": str(Path(out) / "maps"),
         "reconstructions": str(Path(out) / "reconstructions"), "nfe_per_image": max(nfe) if nfe else 0,
         "seconds_per_image": float(np.mean([r["seconds"] for r in records])) if records else 0.0,
         "executor": runner.info()},
        prov,
    )  # fmt: skip


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _paired(maps: dict[str, Any], masks: dict[str, Any], what: str) -> np.ndarray:
    noun = "mask" if what == "--masks" else "image"
    index = {i: k for k, i in enumerate(masks["ids"])}
    missing = [i for i in maps["ids"] if i not in index]
    if missing:
        vol = missing[0].rpartition("/z")[0]
        hint = ""
        if vol in masks.get("volumes", {}):
            v = masks["volumes"][vol]
            hint = f" The {noun} volume {v['path']} has {v['shape'][-1]} slices: it does not match its image."
        raise InputError(
            f"{what} has no {noun} for map {missing[0]!r} ({len(missing)} missing); one {noun} per map.{hint}"
        )
    m = masks["array"][[index[i] for i in maps["ids"]]]
    if m.shape != maps["array"].shape:
        raise InputError(f"{what}: {noun}s are {m.shape[2:]} but maps are {maps['array'].shape[2:]}; they must match.")
    return m


def run_anomaly_evaluate(
    maps: str | os.PathLike,
    masks: str | os.PathLike,
    *,
    healthy: str | os.PathLike | None = None,
    fpr: float = 0.05,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    images: str | os.PathLike | None = None,
    reconstructions: str | os.PathLike | None = None,
    reference: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a folder of maps against a folder of masks (paired by id); ``healthy`` maps fit the FPR
    threshold (else the oracle threshold is used, labelled so). See
    :func:`~medlens.diffusion.evaluate_localization` for the keys.

    With the scored ``images`` and their ``reconstructions`` (``anomaly score``'s ``reconstructions/``, same
    ids) the document adds ``normative``: RQI on the images without a lesion, CACI on those with one, and
    AHI when healthy ``reference`` images are given (see :mod:`medlens.metrics.normative`)."""
    from medlens.diffusion._evaluate import evaluate_localization

    mp = read_image_folder(maps, kind="map", what="--maps")
    mk = read_image_folder(masks, kind="mask", what="--masks")
    truth = _paired(mp, mk, "--masks")
    hm = read_image_folder(healthy, kind="map", what="--healthy")["array"] if healthy is not None else None
    if hm is not None and hm.shape[1:] != mp["array"].shape[1:]:
        raise InputError(f"--healthy maps are {hm.shape[2:]} but --maps are {mp['array'].shape[2:]}; they must match.")
    doc = evaluate_localization(mp["array"], truth, healthy_maps=hm, fpr=fpr, n_bootstrap=n_bootstrap, ci=ci, seed=seed)
    groups = volume_groups(mp["ids"])
    if groups:
        doc["per_volume"] = _per_volume(mp["array"], truth, groups, doc["threshold"])
    if images is not None or reconstructions is not None or reference is not None:
        doc["normative"] = _normative(mp, mk, truth, images, reconstructions, reference)
    config = {"fpr": fpr, "n_bootstrap": n_bootstrap, "ci": ci, "ids": config_hash(mp["ids"])}
    inputs = {"maps": str(maps), "masks": str(masks), **({"healthy": str(healthy)} if healthy else {}),
              **{k: str(v) for k, v in (("images", images), ("reconstructions", reconstructions),
                                        ("reference", reference)) if v is not None}}  # fmt: skip
    return stamp(doc, provenance(command="anomaly evaluate", config=config, seed=seed, extra={"folders": inputs}))


def _per_volume(maps: np.ndarray, truth: np.ndarray, groups: dict[str, list[int]], tau: float) -> dict[str, Any]:
    """Per-volume Dice (pooled over the volume's slices, at the slice-level threshold ``tau``) and volume-level
    AUROC (score: the mean of the volume's maps; label: any lesion voxel)."""
    from medlens.metrics import pixel_auroc

    rows = []
    for vid, idx in groups.items():
        p, t = maps[idx] > tau, truth[idx] > 0
        den = int(p.sum() + t.sum())
        rows.append({"id": vid, "n_slices": len(idx), "lesion_voxels": int(t.sum()), "score": float(maps[idx].mean()),
                     "dice": 2 * int((p & t).sum()) / den if den else float("nan")})  # fmt: skip
    labels = np.array([r["lesion_voxels"] > 0 for r in rows])
    dice = [r["dice"] for r in rows if r["lesion_voxels"] > 0]
    return {
        "n_volumes": len(rows),
        "dice_mean": float(np.mean(dice)) if dice else float("nan"),
        "volume_auroc": pixel_auroc(labels, [r["score"] for r in rows]) if 0 < labels.sum() < len(rows) else None,
        "threshold": tau,
        "volumes": rows,
    }


def _normative(
    maps: dict[str, Any], masks: dict[str, Any], truth: np.ndarray, images: Any, reconstructions: Any, reference: Any
) -> dict[str, Any]:
    from medlens.metrics import anomaly_to_healthy_index, masked_fidelity, restoration_quality

    if images is None or reconstructions is None:
        raise InputError("the normative metrics need both --images and --reconstructions (anomaly score's folder).")
    arrays = []
    for folder, what, kind in ((images, "--images", "image"), (reconstructions, "--reconstructions", "map")):
        f = read_image_folder(folder, kind=kind, what=what)
        if kind == "image":
            check_mask_volumes(f, masks)
        arrays.append(_paired(maps, f, what))
    x, r = arrays
    lesion = truth.reshape(len(truth), -1).any(axis=1)
    out: dict[str, Any] = {"n_lesion_images": int(lesion.sum()), "n_healthy_images": int((~lesion).sum())}
    if (~lesion).any():
        out["rqi"] = restoration_quality(x[~lesion], r[~lesion])
    if lesion.any():
        out["caci"] = masked_fidelity(x[lesion], r[lesion], masks=truth[lesion])
    if reference is not None:
        ref = read_image_folder(reference, kind="image", what="--reference")["array"]
        if lesion.sum() < 2 or (~lesion).sum() < 2 or len(ref) < 2:
            raise InputError("AHI needs at least 2 images with and 2 without a lesion, and 2 --reference images.")
        if ref.shape[1:] != x.shape[1:]:
            raise InputError(f"--reference images are {ref.shape[2:]} but --images are {x.shape[2:]}; they must match.")
        out["ahi"] = anomaly_to_healthy_index(x[lesion], r[lesion], healthy_reference=ref, healthy_unseen=x[~lesion])
    return out
