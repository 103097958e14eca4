"""Encoder throughput: medlens adapters vs calling the libraries directly, on the same model and inputs.

(a) Text: the MiniLM adapter's ``encode_texts(..., use_cache=False)`` vs sentence-transformers'
    ``model.encode`` on the same weights, same sentences (split from the Indiana University chest X-ray
    reports) and batch size; texts/s and the ratio ours/peer (target >= 0.95).
(b) Image: a ViT-S/16 (timm ``vit_small_patch16_224``, random init, saved in timm's hub layout and loaded through
    the medlens timm adapter) vs the timm model called directly: end to end from PIL images (our
    ``encode_images`` vs timm's eval transform + ``model(x)``) and forward only on the same preprocessed tensors.
    On the CPU, and on CUDA when a GPU is present.

Runs alternate ours/peer and report the median of ``--repeat`` runs each; outputs are checked to be equal.
Usage: python perf/encoders_throughput.py [--n-texts 2000] [--n-images 64] [--batch-text 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time

import numpy as np


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _median_pair(ours, peer, repeat: int) -> tuple[float, float, object, object]:
    """Median wall times of two callables, interleaved and in alternating order (so load hits both alike)."""
    t_ours, t_peer, out_ours, out_peer = [], [], None, None
    for i in range(repeat):
        if i % 2:
            tp, out_peer = _timed(peer)
            to, out_ours = _timed(ours)
        else:
            to, out_ours = _timed(ours)
            tp, out_peer = _timed(peer)
        t_ours.append(to)
        t_peer.append(tp)
    return float(np.median(t_ours)), float(np.median(t_peer)), out_ours, out_peer


def sentences(n: int) -> list[str]:
    """``n`` report sentences (IU chest X-ray findings and impressions), in archive order."""
    from medlens.benchmarks.cxr_reports import read_reports

    out: list[str] = []
    for text in read_reports()["text"]:
        out += [s.strip() for s in re.split(r"(?<=\.)\s+", text) if len(s.strip()) > 3]
        if len(out) >= n:
            break
    return out[:n]


def text_throughput(n: int, batch: int, repeat: int) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from medlens.encoders import load_encoder, minilm_folder

    texts = sentences(n)
    ours = load_encoder("minilm")
    peer = SentenceTransformer(str(minilm_folder()), device="cpu")

    def run_peer():
        with torch.inference_mode():
            return peer.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True)

    ours.encode_texts(texts[:batch], use_cache=False)  # warm-up both
    run_peer()
    t_o, t_p, e_o, e_p = _median_pair(
        lambda: ours.encode_texts(texts, batch_size=batch, use_cache=False), run_peer, repeat
    )
    same = np.allclose(e_o, e_p, atol=1e-5)
    print(
        f"  text  MiniLM, {len(texts)} report sentences, batch {batch}, cpu ({torch.get_num_threads()} threads), "
        f"median of {repeat}: ours {len(texts) / t_o:.0f} texts/s, sentence-transformers {len(texts) / t_p:.0f} "
        f"texts/s -> ratio ours/peer {t_p / t_o:.3f} (throughput; target >= 0.95); embeddings equal={same}"
    )
    if not same:
        raise SystemExit("MiniLM embeddings differ from sentence-transformers")


def image_throughput(n: int, batch: int, repeat: int, device: str) -> None:
    import timm
    import torch
    from PIL import Image
    from timm.models import save_for_hf

    from medlens.encoders import load_encoder

    rng = np.random.default_rng(0)
    pils = [Image.fromarray((rng.random((256, 256, 3)) * 255).astype(np.uint8)) for _ in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        save_for_hf(timm.create_model("vit_small_patch16_224", pretrained=False), tmp, safe_serialization=True)
        ours = load_encoder(tmp, device=device)
    model = ours.model  # the same weights, called the way a timm user would
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model), is_training=False)
    tower = ours.tower("image")
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def peer_e2e():
        out = []
        with torch.inference_mode():
            for s in range(0, n, batch):
                x = torch.stack([transform(p) for p in pils[s : s + batch]]).to(device)
                out.append(torch.nn.functional.normalize(model(x), dim=-1).float().cpu())
        sync()
        return torch.cat(out).numpy()

    def ours_e2e():
        out = ours.encode_images(pils, batch_size=batch)
        sync()
        return out

    batches = [tower.prepare(pils[s : s + batch]) for s in range(0, n, batch)]

    def forward(fn):
        def run():
            with torch.inference_mode():
                out = [fn(x).float().cpu() for x in batches]
            sync()
            return torch.cat(out).numpy()

        return run

    peer_e2e()  # warm-up
    ours_e2e()
    t_o, t_p, e_o, e_p = _median_pair(ours_e2e, peer_e2e, repeat)
    f_o, f_p, r_o, r_p = _median_pair(forward(tower.forward), forward(model), repeat)
    same = np.allclose(e_o, e_p, atol=1e-5) and np.allclose(r_o, r_p, atol=1e-5)
    where = device if device != "cpu" else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"  image ViT-S/16 224px, {n} images, batch {batch}, {where}, median of {repeat}:\n"
        f"    end to end (PIL -> features): ours {n / t_o:.1f} images/s, timm transform + model "
        f"{n / t_p:.1f} images/s -> ratio ours/peer {t_p / t_o:.3f}\n"
        f"    forward only (same tensors):  ours {n / f_o:.1f} images/s, timm model {n / f_p:.1f} images/s -> "
        f"ratio ours/peer {f_p / f_o:.3f}; features equal={same}"
    )
    if not same:
        raise SystemExit("ViT features differ from timm")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-texts", type=int, default=2000)
    ap.add_argument("--batch-text", type=int, default=64)
    ap.add_argument("--n-images", type=int, default=64)
    ap.add_argument("--batch-image", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-text", action="store_true")
    args = ap.parse_args()
    import torch

    print("encoder throughput (ratio = our throughput / the library's; > 1 means faster)")
    if not args.skip_text:
        text_throughput(args.n_texts, args.batch_text, args.repeat)
    image_throughput(args.n_images, args.batch_image, args.repeat, "cpu")
    if torch.cuda.is_available():
        image_throughput(max(args.n_images, 512), args.batch_image, args.repeat, "cuda")
    else:
        print("  image on CUDA: skipped (no GPU visible to torch)")


if __name__ == "__main__":
    main()
