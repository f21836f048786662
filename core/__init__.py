"""The floor every process stands on: settings (``AIRWATER_*``), the MQTT client set-up and
the database connections. Imports nothing else of ours."""

from pathlib import Path

__all__ = ["PROJECT_ROOT"]

# the checkout (the data folder, the deploy files and the migrations are found from it)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
