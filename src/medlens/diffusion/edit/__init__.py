"""Counterfactual lesion editing with diffusion models (MedEdit; Ben Alaya et al., MICCAI-SASHIMI 2024) and its
baselines: naive RePaint, SDEdit and Palette (a separately trained conditional model), with the metrics to
compare them honestly (preservation outside the edit region, segmenter Dice against the requested lesion,
FID/KID with bootstrap intervals on pluggable features).

Importing this package imports neither torch nor MONAI; the samplers do (the ``diffusion`` extra).
"""

from medlens.diffusion.edit._metrics import (
    DEFAULT_FEATURES,
    bootstrap_fid_kid,
    dice_per_edit,
    fid,
    image_features,
    kid,
    preservation_mae,
    segmenter_dice,
    threshold_segmenter,
)
from medlens.diffusion.edit._run import run_edit
from medlens.diffusion.edit._samplers import (
    DEFAULTS,
    EDIT_METHODS,
    check_model_for_method,
    counterfactual_edit,
    dilate_mask,
    edit_region,
    inpaint,
    jump_path,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_FEATURES",
    "EDIT_METHODS",
    "bootstrap_fid_kid",
    "check_model_for_method",
    "counterfactual_edit",
    "dice_per_edit",
    "dilate_mask",
    "edit_region",
    "fid",
    "image_features",
    "inpaint",
    "jump_path",
    "kid",
    "preservation_mae",
    "run_edit",
    "segmenter_dice",
    "threshold_segmenter",
]
