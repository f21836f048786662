"""Routes of dead letters (being written for issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
