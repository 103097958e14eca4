"""Diffusion models for anomaly localisation: noise schedules and DDPM/DDIM steps equal to diffusers' and
MONAI's, Gaussian and AnoDDPM simplex noise, UNet backbones from MONAI and diffusers, training on healthy
images (optionally class-conditioned for classifier-free guidance), and an embedded brain-slice generator.

Importing this package imports neither torch, diffusers nor MONAI; the functions that need them import them
(the ``diffusion`` extra; ``data`` and ``io`` for the brain generator).
"""

from medlens.diffusion._backbones import (
    BACKBONES,
    DEFAULT_UNET,
    build_unet,
    load_monai_generative,
    load_unet,
    save_unet,
)
from medlens.diffusion._noise import NOISE_TYPES, noise_like, simplex_noise
from medlens.diffusion._schedule import (
    SCHEDULES,
    SPACINGS,
    NoiseSchedule,
    add_noise,
    ddim_step,
    ddpm_step,
    make_schedule,
    predict_x0,
    timestep_pairs,
    timesteps,
)
from medlens.diffusion._simplex import opensimplex_noise2, opensimplex_noise3, opensimplex_permutation
from medlens.diffusion._train import MODEL_FILE, train_diffusion

__all__ = [
    "BACKBONES",
    "MODEL_FILE",
    "train_diffusion",
    "DEFAULT_UNET",
    "build_unet",
    "load_monai_generative",
    "load_unet",
    "save_unet",
    "NOISE_TYPES",
    "SCHEDULES",
    "SPACINGS",
    "NoiseSchedule",
    "add_noise",
    "ddim_step",
    "ddpm_step",
    "make_schedule",
    "noise_like",
    "opensimplex_noise2",
    "opensimplex_noise3",
    "opensimplex_permutation",
    "predict_x0",
    "simplex_noise",
    "timestep_pairs",
    "timesteps",
]
