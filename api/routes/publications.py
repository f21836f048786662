"""/v1/publications: published years. Publishing needs `admin`; reading needs `read`. The
reports as published are also at /v1/compliance/air|water?version=published."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import AdminAccess, Conn, ReadAccess
from api.errors import problem_responses
from reports.publications import (
    KINDS,
    history,
    publications,
    publish,
    published,
)
from reports.review import actor_of_key
from schemas.publications import Publication, PublicationHistory, PublishedFigures, Revision

router = APIRouter(prefix="/v1/publications", tags=["publications"])

# Any string, so that an unknown kind is refused by reports.publications with its reason.
Kind = Annotated[str, Path(max_length=32, description=f"one of {', '.join(KINDS)}")]
Year = Annotated[int, Path(ge=1990, le=2100, description="the calendar year")]
Number = Annotated[int, Path(ge=1, le=1_000_000, description="the revision, 1 = as published")]


@router.post(
    "/{kind}/{year}",
    response_model=Revision,
    status_code=201,
    responses=problem_responses(401, 403, 409, 422),
)
def publish_year(conn: Conn, principal: AdminAccess, kind: Kind, year: Year) -> Revision:
    """Publish a year that has ended (Beijing date): its current annual report (air: PM2.5,
    PM10, SO2 and NO2; water: every section) becomes revision 1 and is kept as it is. A later
    change that would alter a figure adds a revision with the difference (the aggregation
    stage checks every `AIRWATER_PUBLICATION_CHECK_S`). Already published: 409; a year in
    progress or not begun, or an unknown kind: 422; changes to the year still queued for the
    aggregation stage: 409."""
    actor = actor_of_key(conn, principal.key_id if principal else None)
    return publish(conn, kind, year, actor)


@router.get("", response_model=list[Publication], responses=problem_responses(401, 403))
def list_publications(conn: Conn, _: ReadAccess) -> list[Publication]:
    """Every published (kind, year), with its latest revision."""
    return publications(conn)


@router.get(
    "/{kind}/{year}",
    response_model=PublicationHistory,
    responses=problem_responses(401, 403, 404, 422),
)
def revisions_of_year(conn: Conn, _: ReadAccess, kind: Kind, year: Year) -> PublicationHistory:
    """The revisions of a published year, first first: when, why (publish or revision), by
    whom, and every value each changed ({path, published, current})."""
    return history(conn, kind, year)


@router.get(
    "/{kind}/{year}/revisions/{revision}",
    response_model=PublishedFigures,
    responses=problem_responses(401, 403, 404, 422),
)
def figures_of_revision(
    conn: Conn, _: ReadAccess, kind: Kind, year: Year, revision: Number
) -> PublishedFigures:
    """The figures of a year as that revision published them."""
    return published(conn, kind, year, revision)
