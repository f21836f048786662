"""The coverage object every aggregate carries: how much data stands behind it."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.reports import CoverageOut
from standards.validity import Coverage

# percent_complete is rounded half-to-even to 2 decimals (88.767… → 88.77), everywhere:
# hourly, daily, monthly and annual series, the annual reports and the national value.
PERCENT_DIGITS = 2


def coverage(
    expected: int,
    observed: int,
    valid: bool,
    reasons: Sequence[str] = (),
    reviewed_hours: int = 0,
) -> CoverageOut:
    """``observed`` of ``expected`` values (days, hours, minutes, stations or cities) with
    their share in percent (0 when nothing is expected), whether the aggregate is valid and,
    one sentence each, why not (or what was left out): also "N hours removed by review" when
    an operator's review took ``reviewed_hours`` hours with data out."""
    percent = round(100 * observed / expected, PERCENT_DIGITS) if expected else 0.0
    said = list(reasons)
    if reviewed_hours:
        said.append(f"{reviewed_hours} hour{'s' if reviewed_hours != 1 else ''} removed by review")
    return CoverageOut(
        expected=expected,
        observed=observed,
        percent_complete=percent,
        valid=valid,
        reasons=said,
        removed_by_review_hours=reviewed_hours,
    )


def coverage_of(rule: Coverage, reviewed_hours: int = 0) -> CoverageOut:
    """The coverage of a GB 3095 Table 4 validity check (standards.validity)."""
    return coverage(rule.expected, rule.observed, rule.valid, rule.reasons, reviewed_hours)
