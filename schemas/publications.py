"""Published years as they cross the API: the published (kind, year)s, their revisions with
the difference each made, and the figures of one revision (pydantic models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.reports import AirReport, WaterReport

PublicationKind = Literal["air", "water"]
RevisionCause = Literal["publish", "revision"]


class Change(BaseModel):
    """One value that differs from the revision before."""

    path: str = Field(
        description="where in the report: keys joined by '.', a station, city, section or "
        "basin of a list by its id in brackets; air paths start with the parameter",
        examples=["pm25.stations[110000-A001].annual_mean"],
    )
    published: Any = Field(description="the value in the revision before (null: absent)")
    current: Any = Field(description="the value in this revision (null: absent)")


class Revision(BaseModel):
    """A revision of a published year: 1 is the publication, each later one a change."""

    kind: PublicationKind
    year: int
    revision: int
    created_at: datetime
    created_by: str
    cause: RevisionCause
    as_of: datetime = Field(description="the figures reflect every reading committed before")
    changes: int = Field(description="values that differ from the revision before (0 for 1)")
    difference: list[Change] | None = Field(description="null for revision 1")


class Publication(BaseModel):
    """A published (kind, year)."""

    kind: PublicationKind
    year: int
    latest_revision: int
    published_at: datetime
    published_by: str
    revised_at: datetime = Field(description="when the latest revision was made")


class PublicationHistory(BaseModel):
    kind: PublicationKind
    year: int
    revisions: list[Revision] = Field(description="first first")


class PublishedFigures(BaseModel):
    """The figures of a year as one revision published them."""

    kind: PublicationKind
    year: int
    revision: int
    created_at: datetime
    cause: RevisionCause
    air: dict[str, AirReport] | None = Field(
        default=None, description="air: the annual report of each parameter, by parameter"
    )
    water: WaterReport | None = None
