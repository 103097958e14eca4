"""``python -m medlens`` runs the command-line interface."""

from medlens.cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    raise SystemExit(main())
