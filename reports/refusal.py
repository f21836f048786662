"""An action refused for its input — a review, a dust event, a publication: nothing was
changed, and ``detail`` says why in a sentence. The API answers ``kind`` with its status
(not_found 404, invalid 422, conflict 409); the command line exits 2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Refusal = Literal["not_found", "invalid", "conflict"]


@dataclass
class Refused(Exception):
    kind: Refusal
    detail: str

    def __str__(self) -> str:
        return self.detail
