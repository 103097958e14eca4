"""The ``omni-phantoms`` benchmark: rod vs disc lesions drawn into the MNI152 brain (generator
``omni-phantoms-v1``), omnidirectional vs canonical vs axial-stack views with one frozen encoder and head."""

from medlens.benchmarks.omni_phantoms._data import GENERATOR, Phantom, generate_phantoms, mni_t1_path

__all__ = ["GENERATOR", "Phantom", "generate_phantoms", "mni_t1_path"]
