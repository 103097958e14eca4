"""Diffusion models for anomaly localisation: noise schedules and DDPM/DDIM steps equal to diffusers' and
MONAI's, Gaussian and AnoDDPM simplex noise, UNet backbones from MONAI and diffusers, training on healthy
images (optionally class-conditioned for classifier-free guidance), reconstruction-based and guided anomaly
maps (AnoDDPM, patched, THOR, classifier and classifier-free guidance), and an embedded brain-slice generator.

Importing this package imports neither torch, diffusers nor MONAI; the functions that need them import them
(the ``diffusion`` extra; ``data`` and ``io`` for the brain generator).
"""

from medlens._registry import Registry
from medlens.diffusion._backbones import (
    BACKBONES,
    DEFAULT_UNET,
    build_unet,
    load_monai_generative,
    load_unet,
    mask_condition,
    palette_condition,
    save_unet,
)
from medlens.diffusion._brain import (
    BRAIN_GENERATOR_VERSION,
    BrainConfig,
    BrainSlices,
    brain_mask_from_tissue,
    brain_slices,
    generate_brain_anomaly,
    load_mni152,
    mni152_files,
)
from medlens.diffusion._evaluate import ORACLE_LABEL, evaluate_localization
from medlens.diffusion._guidance import (
    CLASSIFIER_FILE,
    DEFAULT_CLASSIFIER,
    ENCODINGS,
    build_classifier,
    cfg_reconstruct,
    classifier_reconstruct,
    load_classifier,
    save_classifier,
    train_classifier,
)
from medlens.diffusion._maps import (
    FeatureDistance,
    drop_small_components,
    gaussian_blur,
    harmonic_mean,
    normalize_maps,
    postprocess_maps,
    random_conv_extractor,
    residual_map,
    temporal_map,
    thor_harmonize,
)
from medlens.diffusion._noise import NOISE_TYPES, noise_like, simplex_noise
from medlens.diffusion._reconstruct import (
    METHODS,
    chain,
    partial_reconstruct,
    patched_reconstruct,
    score_images,
    thor_reconstruct,
)
from medlens.diffusion._run import (
    PERCEPTUAL,
    UNET_PRESETS,
    read_image_folder,
    run_anomaly_evaluate,
    run_anomaly_score,
    run_anomaly_train,
    unet_config,
)
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

#: Data generators for the diffusion benchmarks, by name: ``DATASETS.get("brain-anomaly")(seed=0, ...)``.
DATASETS: Registry = Registry("diffusion dataset")
DATASETS.register(
    "brain-anomaly",
    "medlens.diffusion._brain:generate_brain_anomaly",
    version=BRAIN_GENERATOR_VERSION,
    extras=("data", "io"),
    description="augmented axial MNI152 slices (nilearn's template), healthy and with synthetic lesions",
)
DATASETS.freeze()

__all__ = [
    "CLASSIFIER_FILE",
    "DEFAULT_CLASSIFIER",
    "ENCODINGS",
    "build_classifier",
    "cfg_reconstruct",
    "classifier_reconstruct",
    "load_classifier",
    "save_classifier",
    "train_classifier",
    "BACKBONES",
    "BRAIN_GENERATOR_VERSION",
    "BrainConfig",
    "BrainSlices",
    "DATASETS",
    "brain_mask_from_tissue",
    "brain_slices",
    "generate_brain_anomaly",
    "load_mni152",
    "mni152_files",
    "ORACLE_LABEL",
    "read_image_folder",
    "run_anomaly_evaluate",
    "run_anomaly_score",
    "run_anomaly_train",
    "PERCEPTUAL",
    "UNET_PRESETS",
    "unet_config",
    "evaluate_localization",
    "FeatureDistance",
    "METHODS",
    "chain",
    "drop_small_components",
    "gaussian_blur",
    "harmonic_mean",
    "normalize_maps",
    "partial_reconstruct",
    "patched_reconstruct",
    "postprocess_maps",
    "random_conv_extractor",
    "residual_map",
    "score_images",
    "temporal_map",
    "thor_harmonize",
    "thor_reconstruct",
    "MODEL_FILE",
    "train_diffusion",
    "DEFAULT_UNET",
    "build_unet",
    "load_monai_generative",
    "load_unet",
    "mask_condition",
    "palette_condition",
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
