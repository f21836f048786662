"""airwater: the ``airwater`` command and process orchestration — ``run``, the embedded
services, broker accounts. The top of the house: nothing below imports it."""

from core import PROJECT_ROOT

__all__ = ["PROJECT_ROOT"]
