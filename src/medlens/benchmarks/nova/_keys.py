"""The headline keys of each NOVA task, in the order the benchmark summary and ``nova evaluate`` print them."""

from __future__ import annotations

from medlens.metrics import CAPTION_KEYS

__all__ = ["SUMMARY_KEYS"]

SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "localization": ("map30", "map50", "map50_95", "acc50", "precision50", "recall50"),
    "caption": CAPTION_KEYS,
    "diagnosis": ("top1", "top5", "top1_macro", "top5_macro", "coverage", "entropy_bits"),
}
