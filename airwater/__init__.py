"""airwater: glue shared by every component — settings, embedded services, the command line."""

from pathlib import Path

__all__ = ["PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
