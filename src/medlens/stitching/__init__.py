"""Latent-space stitching with anchors: translators, relative representations, zero-shot, diagnostics.

Two encoders of the same items often learn latent spaces that differ by an (at most) affine map. With a few
hundred paired *anchors*, :class:`Translator` estimates that map (Procrustes, least squares, ridge, SGD affine; after
standardising and zero-padding), so one model can reuse another's trained head, or a vision encoder without a
text tower can be scored against text prompts (:func:`translated_zero_shot`). :func:`relative_projection`
describes vectors by their relation to anchors instead (Moschella et al., 2023). :func:`anchor_sweep` measures how
many anchors each method needs. Spec: ``design/grounding-stitching.md`` §2.
"""

from medlens.stitching._diagnostics import cross_covariance_rank, linear_cka, sample_anchors, translation_report
from medlens.stitching._heads import Head, LogisticHead
from medlens.stitching._relative import RELATIVE_METHODS, relative_projection
from medlens.stitching._run import (
    pair_features,
    read_class_labels,
    read_feature_matrix,
    run_stitch_apply,
    run_stitch_fit,
    run_stitch_sweep,
    run_stitch_zeroshot,
)
from medlens.stitching._sweep import anchor_sweep, summarize_values
from medlens.stitching._translate import METHODS, PRE_TRANSFORMS, Translator, load_translator, underdetermined
from medlens.stitching._zeroshot import translated_zero_shot, zero_shot_metrics

__all__ = [
    "METHODS",
    "PRE_TRANSFORMS",
    "RELATIVE_METHODS",
    "Head",
    "LogisticHead",
    "Translator",
    "anchor_sweep",
    "cross_covariance_rank",
    "linear_cka",
    "load_translator",
    "pair_features",
    "read_class_labels",
    "read_feature_matrix",
    "relative_projection",
    "run_stitch_apply",
    "run_stitch_fit",
    "run_stitch_sweep",
    "run_stitch_zeroshot",
    "sample_anchors",
    "summarize_values",
    "translated_zero_shot",
    "translation_report",
    "underdetermined",
    "zero_shot_metrics",
]
