"""Stamped JSON documents behind ``medlens ground prompt | train | predict | evaluate`` (the CLI only prints them).

Predictions file (``ground evaluate --predictions``): JSONL, one line per (image, finding) query,
``{"image_id", "finding", "boxes": [[x1, y1, x2, y2], ...], "scores": [...] | null}`` in the image's pixels
(``ground predict --json`` prints these keys; ``labels``, ``width``, ``height`` and other keys are allowed).
A query of the truth with boxes but no prediction line counts as predicted empty (``n_missing_predictions``
says how many); a line for an image the truth does not have, or a duplicate (image, finding), is an error.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from medlens._provenance import file_sha256, provenance, stamp
from medlens._validation import InputError, check_option
from medlens.grounding._documents import knowledge_provenance
from medlens.grounding._kb import load_knowledge
from medlens.grounding._prompts import PROMPT_MODES, render_prompt, task_prompt

__all__ = [
    "evaluate_document",
    "predict_document",
    "prompt_document",
    "read_predictions",
    "run_ground_train",
    "truth_queries",
]


def prompt_document(
    finding: str, *, attributes: str | None = None, knowledge: str | PathLike[str] = "vindr-cxr"
) -> dict[str, Any]:
    """A finding's caption in every prompt mode and the model input of each (task token + caption).

    ``attributes`` (``"shape,location"``) picks the attribute subset of the ``attributes`` mode."""
    kb = load_knowledge(knowledge)
    f = kb.get(finding)
    prompts = {
        m: render_prompt(f, m, attributes=attributes if m == "attributes" else None)  # type: ignore[arg-type]
        for m in PROMPT_MODES
    }
    prov = provenance(
        command="ground prompt",
        config={"finding": finding, "attributes": attributes},
        extra={"knowledge": knowledge_provenance(kb)},
    )
    return stamp(
        {
            "knowledge": kb.name,
            "finding": f.name,
            "split": f.split,
            "attributes": f.attributes,
            "prompts": prompts,
            "model_inputs": {m: task_prompt(t) for m, t in prompts.items()},
        },
        prov,
    )


def run_ground_train(
    data: str | PathLike[str],
    images: str | PathLike[str],
    model_path: str | PathLike[str],
    out: str | PathLike[str],
    *,
    knowledge: str | PathLike[str] = "vindr-cxr",
    split_file: str | PathLike[str] | None = None,
    prompt_mode: str = "definition",
    epochs: int = 3,
    batch_size: int = 8,
    lr: float = 1e-4,
    seed: int = 0,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    augment: Any = False,
    lora: Any = False,
    select: str = "val_f1",
) -> dict[str, Any]:
    """Read ``data`` (VinDr CSV or COCO JSON) and ``images``, fine-tune the Florence-2 at ``model_path`` into
    ``out`` (:func:`medlens.grounding.train_grounder`); the stamped summary (``OUT/model`` is the trained model).

    ``augment``: ``True`` (the default :class:`~medlens.grounding.Augment`) or an ``Augment``; ``lora``: ``True``
    (the default :class:`~medlens.grounding.LoraOptions`), a dict of its fields or ``LoraOptions``; ``select``:
    the epoch's criterion on the val split, ``val_f1`` (F1@0.5 of the decoded predictions) or ``val_loss``."""
    from medlens.grounding._augment import Augment
    from medlens.grounding._data import load_grounding_data
    from medlens.grounding._train import SELECT_CRITERIA, train_grounder

    check_option(select, SELECT_CRITERIA, name="select")  # before the data are read
    kb = load_knowledge(knowledge)
    gd = load_grounding_data(data, images, kb, split_file=split_file, seed=seed)
    summary = train_grounder(
        model_path, gd.splits, kb, out, prompt_mode=prompt_mode, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, device=device, resume=resume, overwrite=overwrite, progress=progress, data_config=gd.config,
        augment=Augment() if augment is True else (augment or None), lora=lora or None, select=select,
    )  # fmt: skip
    prov = provenance(
        command="ground train",
        config=summary["config"],
        seed=seed,
        inputs={"data": data, **({"split_file": split_file} if split_file is not None else {})},
        extra={"knowledge": knowledge_provenance(kb)},
    )
    return stamp({**summary, "data_counts": gd.counts()}, prov)


def predict_document(
    model_path: str | PathLike[str],
    image: str | PathLike[str],
    finding: str,
    *,
    knowledge: str | PathLike[str] = "vindr-cxr",
    prompt_mode: str = "definition",
    attributes: str | None = None,
    device: str | None = None,
    max_new_tokens: int = 64,
) -> dict[str, Any]:
    """Ground one finding on one image: ``boxes`` (pixels, ``xyxy``), ``labels``, ``scores`` and the parse's
    counts (unknown phrases, malformed runs), with ``image_id`` (the file name stem) for a predictions file."""
    from medlens.grounding._model import load_grounder
    from medlens.io import load_image

    p = Path(image)
    if not p.is_file():
        raise InputError(f"--image {str(p)!r} does not exist; give an image file (.png, .jpg, ...).")
    pil = load_image(p)  # an unreadable file is an InputError naming it
    kb = load_knowledge(knowledge)
    f = kb.get(finding)
    check_option(prompt_mode, PROMPT_MODES, name="prompt_mode")
    if attributes is not None and prompt_mode != "attributes":
        raise InputError("--attributes applies only to --prompt-mode attributes.")
    caption = render_prompt(f, prompt_mode, attributes=attributes)  # type: ignore[arg-type]
    g = load_grounder(model_path, device=device)
    parsed = g.predict([pil], [caption], kb, max_new_tokens=max_new_tokens)[0]
    mp = Path(model_path)
    weights = mp / "model.safetensors"
    prov = provenance(
        command="ground predict",
        config={"finding": f.name, "prompt_mode": prompt_mode, "attributes": attributes, "max_new_tokens":
                max_new_tokens},
        inputs={"image": p},
        models={"grounder": str(mp)},
        extra={
            "knowledge": knowledge_provenance(kb),
            "model_sha256": file_sha256(weights) if weights.is_file() else None,
        },
    )  # fmt: skip
    return stamp(
        {
            "image": str(p),
            "image_id": p.stem,
            "width": pil.size[0],
            "height": pil.size[1],
            "finding": f.name,
            "caption": caption,
            **parsed.to_dict(),
        },
        prov,
    )


def read_predictions(path: str | PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(image_id, finding) → {"boxes", "scores"}`` from a predictions JSONL (module docstring)."""
    from medlens.io import iter_jsonl

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for line, obj in iter_jsonl(path, what="predictions file"):
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {line} must be a JSON object; got {type(obj).__name__}.")
        missing = [k for k in ("image_id", "finding", "boxes") if k not in obj]
        if missing:
            raise InputError(
                f"{path}: line {line}: missing field {missing[0]!r}; each line needs image_id, finding, boxes "
                "(and scores, one per box, or null)."
            )
        key = (str(obj["image_id"]), str(obj["finding"]))
        if key in out:
            raise InputError(f"{path}: line {line}: a second prediction for image {key[0]!r}, finding {key[1]!r}.")
        out[key] = {"boxes": obj["boxes"], "scores": obj.get("scores"), "line": line}
    if not out:
        raise InputError(f"{path}: no prediction; write one JSON line per (image, finding) query.")
    return out


def truth_queries(
    truth: str | PathLike[str],
    kb: Any,
    *,
    fusion_iou: float = 0.55,
    min_readers: int = 1,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``image_id → finding → {"gold", "width", "height"}`` of the truth: a COCO ``.json`` (sizes from it) or a
    VinDr CSV (readers fused with weighted box fusion; no sizes)."""
    from medlens.grounding._coco import coco_queries, is_coco_file

    out: dict[str, dict[str, dict[str, Any]]] = {}
    if is_coco_file(truth):
        for q in coco_queries(truth, kb, negatives=False):
            out.setdefault(q["image_id"], {})[q["finding"]] = q
        return out
    from medlens.grounding._data import fuse_readers
    from medlens.grounding._stats import read_vindr_boxes

    rows = read_vindr_boxes(truth)
    rows = rows.assign(image_id=rows["image_id"].astype(str))
    for img in rows["image_id"].unique():
        out.setdefault(str(img), {})
    canon = {c: kb.get(c).name for c in rows["class_name"].unique() if c != "No finding"}
    fused = fuse_readers(rows, iou=fusion_iou, min_readers=min_readers)
    for r in fused.itertuples(index=False):
        q = out[str(r.image_id)].setdefault(canon[r.class_name], {"gold": [], "width": None, "height": None})
        q["gold"].append([float(r.x_min), float(r.y_min), float(r.x_max), float(r.y_max)])
    return out


def _check_inside(p: dict[str, Any], t: dict[str, Any], path: Any, img: str) -> None:
    """Predicted boxes must lie in the image when the truth gives its size (half a pixel of slack)."""
    w, h = t.get("width"), t.get("height")
    if w is None or h is None or not isinstance(p["boxes"], list):
        return
    for b in p["boxes"]:
        numeric = isinstance(b, list) and len(b) == 4 and all(isinstance(v, int | float) for v in b)
        if numeric and (min(b) < -0.5 or b[2] > w + 0.5 or b[3] > h + 0.5):
            raise InputError(
                f"{path}: line {p['line']}: box {b} lies outside image {img!r} of (width, height) = "
                f"({w:g}, {h:g}); give boxes in the image's pixels, x before y."
            )


def evaluate_document(
    predictions: str | PathLike[str],
    truth: str | PathLike[str],
    *,
    knowledge: str | PathLike[str] = "vindr-cxr",
    fusion_iou: float = 0.55,
    min_readers: int = 1,
) -> dict[str, Any]:
    """Evaluate a predictions JSONL against ``truth`` (:func:`medlens.grounding.evaluate_grounding`; keys
    ``map, map50, map75, f1_50, acc50, hallucination_rate, rodeo`` and the strata)."""
    from medlens.grounding._evaluate import evaluate_grounding

    kb = load_knowledge(knowledge)
    preds = read_predictions(predictions)
    gold = truth_queries(truth, kb, fusion_iou=fusion_iou, min_readers=min_readers)
    queries = []
    seen: set[tuple[str, str]] = set()
    for (img, finding), p in preds.items():
        if img not in gold:
            raise InputError(
                f"{predictions}: line {p['line']}: image {img!r} is not in the truth {str(truth)!r}; predict only "
                "the truth's images (ids are file name stems)."
            )
        name = kb.get(finding).name
        if (img, name) in seen:
            raise InputError(f"{predictions}: line {p['line']}: a second prediction for {img!r}, {name!r}.")
        seen.add((img, name))
        t = gold[img].get(name, {"gold": [], "width": None, "height": None})
        _check_inside(p, t, predictions, img)
        queries.append({"image_id": img, "finding": name, "gold": t["gold"], "pred": p["boxes"],
                        "scores": p["scores"], "width": t["width"], "height": t["height"]})  # fmt: skip
    missing = 0
    for img, by in sorted(gold.items()):
        for name, t in sorted(by.items()):
            if (img, name) not in seen and t["gold"]:
                missing += 1
                queries.append({"image_id": img, "finding": name, "gold": t["gold"], "pred": [], "scores": None,
                                "width": t["width"], "height": t["height"]})  # fmt: skip
    if any(q["scores"] is not None for q in queries):  # a query without boxes has no scores to give
        for q in queries:
            if q["scores"] is None and not len(q["pred"]):
                q["scores"] = []
    result = evaluate_grounding(queries, kb=kb)
    prov = provenance(
        command="ground evaluate",
        config={"fusion_iou": fusion_iou, "min_readers": min_readers},
        inputs={"predictions": predictions, "truth": truth},
        extra={"knowledge": knowledge_provenance(kb)},
    )
    return stamp({"n_missing_predictions": missing, **result}, prov)
