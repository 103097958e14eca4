"""Grounding speed: evaluation of 10,000 queries vs pycocotools, and Florence-2 generation throughput.

1. ``evaluate_grounding`` on ``--queries`` (image, finding) queries (70 % positive with 1-3 gold boxes, 30 %
   negative; 0-3 predicted boxes each with real scores; 22 VinDr findings) — everything it reports: P/R/F1,
   Acc@0.5, mIoU, mAP .5:.95/.5/.75/.3, hallucination, RoDeO, by finding/split/size/count — against
   pycocotools scoring the same queries as a one-class COCO detection problem (each query an image;
   ``loadRes`` + ``evaluate`` + ``accumulate`` + ``summarize``, which gives the mAPs only). Prints both times,
   the ratio ours/peer and the largest difference of map, map50, map75 (must be below 1e-9).
2. Generation throughput of the tiny random Florence-2 (``write_tiny_florence``) on ``--device`` (default cpu):
   queries per second of ``FlorenceGrounder.predict`` in batches of ``--batch-size``.
3. With ``--base`` (use on a GPU): the same for a randomly initialised model of Florence-2-base's shape
   (DaViT 128-256-512-1024, depths 1-1-9-1; BART 768 wide, 6+6 layers) at 768 px (577 image tokens).
Usage: python perf/grounding.py [--queries 10000] [--repeat 3] [--gen 32] [--batch-size 8] [--device cpu] [--base]
       [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def make_queries(n: int, seed: int = 0) -> list[dict]:
    from medlens.grounding import load_knowledge

    kb = load_knowledge("vindr-cxr")
    rng = np.random.default_rng(seed)
    names = kb.names
    out = []
    for i in range(n):
        w, h = int(rng.integers(1800, 3000)), int(rng.integers(1800, 3000))
        gold = []
        if rng.random() < 0.7:
            for _ in range(int(rng.integers(1, 4))):
                bw, bh = rng.uniform(0.03, 0.4) * w, rng.uniform(0.03, 0.4) * h
                x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                gold.append([x, y, x + bw, y + bh])
        pred = []
        for _ in range(int(rng.integers(0, 4))):
            if gold and rng.random() < 0.6:
                g = np.array(gold[int(rng.integers(len(gold)))])
                j = g + rng.normal(0, 0.08, 4) * np.r_[g[2] - g[0], g[3] - g[1], g[2] - g[0], g[3] - g[1]]
                x1, x2 = sorted(np.clip(j[[0, 2]], 0, w))
                y1, y2 = sorted(np.clip(j[[1, 3]], 0, h))
                pred.append([x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)])
            else:
                bw, bh = rng.uniform(0.03, 0.4) * w, rng.uniform(0.03, 0.4) * h
                x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                pred.append([x, y, x + bw, y + bh])
        out.append({"image_id": f"q{i // 3}", "finding": names[i % len(names)], "gold": gold, "pred": pred,
                    "scores": rng.random(len(pred)).tolist(), "width": w, "height": h})  # fmt: skip
    return out


def pycocotools_scores(queries: list[dict]) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, q in enumerate(queries):
        images.append({"id": i + 1, "width": q["width"], "height": q["height"]})
        for b in q["gold"]:
            wh = [b[2] - b[0], b[3] - b[1]]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], *wh],
                         "area": wh[0] * wh[1], "iscrowd": 0})  # fmt: skip
        for b, s in zip(q["pred"], q["scores"], strict=True):
            dets.append({"image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                         "score": s})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "finding"}]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(ev.stats[0]), float(ev.stats[1]), float(ev.stats[2])]


def _base_model(path: Path) -> Path:
    """A random Florence-2 of the base model's shape with the tiny model's tokenizer, at 768 px."""
    import json

    import transformers as tf

    from medlens.grounding import n_image_tokens, write_tiny_florence

    tiny = write_tiny_florence(path / "tiny", image_size=768)
    tok = tf.AutoTokenizer.from_pretrained(tiny)
    ids = tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<image>"])
    vision = tf.Florence2VisionConfig(depths=[1, 1, 9, 1], embed_dim=[128, 256, 512, 1024],
                                      num_heads=[4, 8, 16, 32], num_groups=[4, 8, 16, 32], window_size=12,
                                      projection_dim=768)  # fmt: skip
    text = tf.BartConfig(vocab_size=len(tok), d_model=768, encoder_layers=6, decoder_layers=6,
                         encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
                         decoder_ffn_dim=3072, max_position_embeddings=1024, bos_token_id=ids[0],
                         pad_token_id=ids[1], eos_token_id=ids[2], decoder_start_token_id=ids[2],
                         forced_eos_token_id=ids[2])  # fmt: skip
    model = tf.Florence2ForConditionalGeneration(
        tf.Florence2Config(vision_config=vision, text_config=text, image_token_id=ids[3])
    )
    out = path / "base"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    pre = json.loads((tiny / "preprocessor_config.json").read_text())
    pre["image_seq_length"] = n_image_tokens(vision, 768, 768)
    (out / "preprocessor_config.json").write_text(json.dumps(pre))
    return out


def generation(n: int, batch_size: int, device: str, base: bool) -> dict:
    from PIL import Image

    from medlens.grounding import load_grounder, load_knowledge, write_tiny_florence

    kb = load_knowledge("vindr-cxr")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        path = _base_model(t) if base else write_tiny_florence(t / "tiny", corpus=kb.names)
        g = load_grounder(path, device=device)
        rng = np.random.default_rng(0)
        images = [Image.fromarray((rng.random((512, 512)) * 255).astype(np.uint8)) for _ in range(batch_size)]
        caps = [kb.names[i % len(kb.names)] for i in range(batch_size)]
        g.predict(images[:1], caps[:1], kb, max_new_tokens=8)  # warm-up
        t0 = time.perf_counter()
        done = 0
        while done < n:
            g.predict(images, caps, kb, max_new_tokens=64)
            done += batch_size
        if device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
    return {"model": "florence-2-base shape" if base else "tiny", "side": g.size[0], "queries": done,
            "seconds": sec, "queries_per_s": done / sec}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gen", type=int, default=32, help="Generated queries for the throughput (0: skip).")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--base", action="store_true", help="Florence-2-base shape at 768 px (for a GPU).")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    args = ap.parse_args()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from medlens.grounding import evaluate_grounding, load_knowledge

    kb = load_knowledge("vindr-cxr")
    qs = make_queries(args.queries)
    try:
        t_peer, peer = timed(lambda: pycocotools_scores(qs), args.repeat)
    except ImportError:
        raise SystemExit('pycocotools is not installed: pip install "medlens[reference]"') from None
    t_ours, ours = timed(lambda: evaluate_grounding(qs, kb=kb), args.repeat)
    diff = max(abs(a - b) for a, b in zip((ours["map"], ours["map50"], ours["map75"]), peer, strict=True))
    print(f"evaluation of {len(qs)} queries ({ours['n_positive']} positive, {ours['n_pred_boxes']} boxes)")
    print(f"  pycocotools (mAPs only):             {t_peer:.3f} s")
    print(f"  medlens evaluate_grounding (all):    {t_ours:.3f} s")
    print(f"  ratio ours/peer: {t_ours / t_peer:.2f}  (speed-up {t_peer / t_ours:.2f}x)")
    print(f"  map {ours['map']:.6f} map50 {ours['map50']:.6f} map75 {ours['map75']:.6f}; max |diff| {diff:.2e}")
    print(f"  RoDeO total {ours['rodeo']['total']:.4f}, F1@0.5 {ours['f1_50']:.4f}")
    if diff > 1e-9:
        raise SystemExit("mAP differs from pycocotools")
    if args.gen > 0:
        r = generation(args.gen, args.batch_size, args.device, args.base)
        print(f"generation ({r['model']}, {r['side']} px, {args.device}, batch {args.batch_size}): "
              f"{r['queries']} queries in {r['seconds']:.2f} s = {r['queries_per_s']:.1f} queries/s")  # fmt: skip


if __name__ == "__main__":
    main()
