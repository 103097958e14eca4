"""medlens: measure and fix what flat metrics hide in medical-imaging foundation models.

Importing ``medlens`` is cheap: it defines the version only. Capabilities live in subpackages
(``medlens.taxonomy``, ``medlens.hierarchy``, ``medlens.risk``, ...) that import their optional
dependencies lazily, inside the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
