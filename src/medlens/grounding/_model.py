"""Florence-2 for grounding through transformers' native ``Florence2ForConditionalGeneration`` (``hf`` extra).

Everything loads from a local folder (``save_pretrained`` layout: ``config.json``, ``model.safetensors``, the
tokenizer files and ``preprocessor_config.json``); nothing is downloaded and no remote code runs. Real weights
(Florence-2-base in the transformers layout) and the tiny random model of :func:`write_tiny_florence` (tests,
demo) go through the same code.

- Inputs are built here, as Florence-2's processor builds them: ``image_seq_length`` image tokens, ``<s>``,
  the task's prompt (``<CAPTION_TO_PHRASE_GROUNDING>`` expands to "Locate the phrases in the caption: "),
  ``</s>``; images resized to the processor's size and normalised with its mean/std. The number of image tokens
  follows from the vision tower's patch convolutions (plus one pooled token).
- Targets are :func:`medlens.grounding.build_target` strings (``<loc_k>`` bins of the *original* image,
  ``(width, height)``), tokenised as ``<s> target </s>``; padding positions get label ``-100`` so they carry no
  loss (the public AG-KD code leaves them in).
- Predictions are greedy generations; :meth:`FlorenceGrounder.predict` parses them with per-token
  log-probabilities from ``compute_transition_scores``, so every box gets a score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError
from medlens.grounding._florence import N_BINS, ParsedGrounding, build_target, parse_grounding
from medlens.grounding._prompts import GROUNDING_TASK

__all__ = ["FlorenceGrounder", "load_grounder", "n_image_tokens", "write_tiny_florence"]

TASK_EXPANSION = {GROUNDING_TASK: "Locate the phrases in the caption: "}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
PREPROCESSOR = "preprocessor_config.json"


def _transformers() -> Any:
    from medlens._device import set_offline

    tf = require("transformers", extra="hf", purpose="Florence-2 grounding models")
    set_offline()  # offline, and no weight-writing/loading bars of transformers' own in the demo's output
    return tf


def n_image_tokens(vision_config: Any, width: int, height: int) -> int:
    """Image tokens Florence-2's encoder sees: the last feature map's cells (each stage a strided convolution,
    ``out = (in + 2p - k) // s + 1``) plus one pooled token. 768 × 768 gives 24 × 24 + 1 = 577."""
    w, h = int(width), int(height)
    for k, s, p in zip(vision_config.patch_size, vision_config.patch_stride, vision_config.patch_padding, strict=True):
        w, h = (w + 2 * p - k) // s + 1, (h + 2 * p - k) // s + 1
    return w * h + 1


def write_tiny_florence(
    path: str | PathLike[str],
    *,
    corpus: Sequence[str] = (),
    seed: int = 0,
    image_size: int = 64,
    d_model: int = 32,
) -> Path:
    """Write a tiny randomly initialised Florence-2 (DaViT 4 stages of depth 1, BART 1+1 layers) with a byte-level
    BPE tokenizer holding ``<loc_0>``…``<loc_999>`` and ``<image>``, trained on ``corpus`` (plus the task prompt)
    with ``tokenizers``; deterministic for a seed. For tests and the demo: real weights use the same loader."""
    tf = _transformers()
    tk = require("tokenizers", extra="hf", purpose="building a tokenizer")
    torch = require("torch", extra="torch", purpose="Florence-2 grounding models")
    out = Path(path)
    tok = tk.Tokenizer(tk.models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [TASK_EXPANSION[GROUNDING_TASK], *corpus]
    tok.train_from_iterator(sorted(set(texts)) * 4, trainer)
    tok.add_special_tokens(["<image>"])
    tok.add_tokens([f"<loc_{i}>" for i in range(N_BINS)])
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    ids = fast.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<image>"])
    vision = tf.Florence2VisionConfig(
        depths=[1, 1, 1, 1],
        embed_dim=[8, 16, 16, d_model],
        num_heads=[1, 2, 2, 4],
        num_groups=[1, 2, 2, 4],
        window_size=2,
        projection_dim=d_model,
        drop_path_rate=0.0,
    )
    text = tf.BartConfig(
        vocab_size=len(fast),
        d_model=d_model,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=256,
        dropout=0.0,
        bos_token_id=ids[0],
        pad_token_id=ids[1],
        eos_token_id=ids[2],
        decoder_start_token_id=ids[2],
        forced_eos_token_id=ids[2],
    )
    config = tf.Florence2Config(vision_config=vision, text_config=text, image_token_id=ids[3])
    torch.manual_seed(int(seed))
    model = tf.Florence2ForConditionalGeneration(config)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    pre = {
        "size": {"height": image_size, "width": image_size},
        "image_mean": list(_MEAN),
        "image_std": list(_STD),
        "image_seq_length": n_image_tokens(vision, image_size, image_size),
    }
    (out / PREPROCESSOR).write_text(json.dumps(pre, indent=1), encoding="utf-8")
    return out


@dataclass
class FlorenceGrounder:
    """A loaded Florence-2 with its tokenizer and image preprocessing (from :func:`load_grounder`)."""

    model: Any
    tokenizer: Any
    size: tuple[int, int]  # (width, height) the images are resized to
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: str = "cpu"

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    @property
    def n_image_tokens(self) -> int:
        return n_image_tokens(self.model.config.vision_config, *self.size)

    def pixel_values(self, images: Sequence[Any]) -> Any:
        """RGB images (paths, PIL images or arrays) → normalised ``(n, 3, H, W)`` float tensor."""
        from medlens.io import load_image

        torch = require("torch", extra="torch")
        arrs = []
        for im in images:
            pil = load_image(im).resize(self.size, resample=3)  # bicubic, as Florence-2's processor
            arrs.append(np.asarray(pil, dtype=np.float32) / 255.0)
        x = (np.stack(arrs) - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(self.device)

    def input_ids(self, captions: Sequence[str], task: str = GROUNDING_TASK) -> tuple[Any, Any]:
        """``(input_ids, attention_mask)`` on the model's device: image tokens, ``<s>``, the expanded prompt,
        ``</s>``, right-padded."""
        torch = require("torch", extra="torch")
        tok = self.tokenizer
        head = [self.image_token_id] * self.n_image_tokens + [tok.bos_token_id]
        rows = [
            head + tok(TASK_EXPANSION.get(task, "") + c, add_special_tokens=False).input_ids + [tok.eos_token_id]
            for c in captions
        ]
        ids, mask = _pad(rows, tok.pad_token_id, torch)
        return ids.to(self.device), mask.to(self.device)  # beside the model and the pixels (CUDA too)

    def labels(self, targets: Sequence[str]) -> Any:
        """``<s> target </s>`` token ids, right-padded with ``-100`` (padding carries no loss)."""
        torch = require("torch", extra="torch")
        tok = self.tokenizer
        rows = [[tok.bos_token_id, *tok(t, add_special_tokens=False).input_ids, tok.eos_token_id] for t in targets]
        ids, _ = _pad(rows, -100, torch)
        return ids

    def batch(self, queries: Sequence[dict[str, Any]], captions: Sequence[str]) -> dict[str, Any]:
        """Model inputs with labels for queries ``{"image", "finding", "gold", "width", "height"}``."""
        targets = [build_target([q["finding"]] * len(q["gold"]), q["gold"], (q["width"], q["height"])) for q in queries]
        ids, mask = self.input_ids(captions)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": self.pixel_values([q["image"] for q in queries]),
            "labels": self.labels(targets).to(self.device),
        }

    def loss(self, batch: dict[str, Any]) -> Any:
        return self.model(**batch).loss

    def predict(
        self,
        images: Sequence[Any],
        captions: Sequence[str],
        kb: Any,
        *,
        max_new_tokens: int = 64,
        cutoff: float = 0.6,
    ) -> list[ParsedGrounding]:
        """Greedy generation per (image, caption); boxes decoded onto each image's own ``(width, height)`` with
        per-box scores from the transition log-probabilities."""
        from medlens.io import load_image

        torch = require("torch", extra="torch")
        if len(images) != len(captions):
            raise InputError(f"predict: {len(images)} images for {len(captions)} captions; give one caption each.")
        pils = [load_image(im) for im in images]
        ids, mask = self.input_ids(captions)
        self.model.eval()
        with torch.no_grad():
            gen = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                pixel_values=self.pixel_values(pils),
                max_new_tokens=int(max_new_tokens),
                do_sample=False,
                num_beams=1,
                return_dict_in_generate=True,
                output_scores=True,
            )
            lp = self.model.compute_transition_scores(gen.sequences, gen.scores, normalize_logits=True)
        n_new = lp.shape[1]
        out = []
        pad = self.tokenizer.pad_token_id
        for i, pil in enumerate(pils):
            new_ids = gen.sequences[i, -n_new:].tolist()
            keep = [j for j, t in enumerate(new_ids) if t != pad]
            tokens = [self.tokenizer.decode([new_ids[j]]) for j in keep]
            lps = [float(lp[i, j]) for j in keep]
            lps = [x if math.isfinite(x) else -1e9 for x in lps]
            out.append(parse_grounding(tokens, kb, pil.size, logprobs=lps, cutoff=cutoff))
        return out


def _pad(rows: list[list[int]], value: int, torch: Any) -> tuple[Any, Any]:
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), value, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def load_grounder(path: str | PathLike[str], *, device: str | None = None) -> FlorenceGrounder:
    """Load a Florence-2 folder (``config.json`` of model type ``florence2``, weights, tokenizer,
    ``preprocessor_config.json``) from the local disk only."""
    from medlens._device import resolve_device

    tf = _transformers()
    p = Path(path)
    if not (p / "config.json").is_file():
        raise InputError(
            f"--model-path {str(p)!r}: no config.json; give a local Florence-2 folder in the transformers "
            "layout (save_pretrained), e.g. the output folder of `medlens ground train`."
        )
    cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "florence2":
        raise InputError(
            f"--model-path {str(p)!r}: model_type is {cfg.get('model_type')!r}, not 'florence2'; convert the "
            "checkpoint to the transformers-native Florence-2 layout (no remote code is run)."
        )
    dev = resolve_device(device)
    model = tf.Florence2ForConditionalGeneration.from_pretrained(p, local_files_only=True).to(dev)
    tokenizer = tf.AutoTokenizer.from_pretrained(p, local_files_only=True)
    pre = json.loads((p / PREPROCESSOR).read_text(encoding="utf-8")) if (p / PREPROCESSOR).is_file() else {}
    size = pre.get("size") or {"height": 768, "width": 768}
    return FlorenceGrounder(
        model=model,
        tokenizer=tokenizer,
        size=(int(size["width"]), int(size["height"])),
        mean=tuple(pre.get("image_mean", _MEAN)),
        std=tuple(pre.get("image_std", _STD)),
        device=dev,
    )
