"""Routes of compliance (being written for issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/compliance", tags=["compliance"])
