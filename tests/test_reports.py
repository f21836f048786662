"""The reports layer's own rules: one coverage object, rounded one way, and one content
negotiation for every CSV-capable endpoint (pure functions, no database)."""

from __future__ import annotations

import pytest

from reports import PERCENT_DIGITS, coverage, coverage_of, wants_csv
from standards.validity import annual_coverage


def test_percent_complete_is_rounded_to_two_decimals():
    assert PERCENT_DIGITS == 2
    assert coverage(365, 324, valid=True).percent_complete == 88.77  # 88.767…
    assert coverage(60, 40, valid=False, reasons=["40 minutes"]).percent_complete == 66.67
    assert coverage(0, 0, valid=False).percent_complete == 0.0


def test_coverage_of_a_validity_rule_keeps_its_counts_and_reasons():
    rule = annual_coverage(dict.fromkeys(range(1, 13), 27), 2025)
    out = coverage_of(rule)
    assert (out.expected, out.observed, out.valid) == (365, 324, True)
    assert out.percent_complete == round(rule.percent_complete, 2) == 88.77
    short = coverage_of(annual_coverage({1: 26}, 2025))
    assert short.valid is False and short.reasons == list(annual_coverage({1: 26}, 2025).reasons)


@pytest.mark.parametrize(
    ("accept", "output_format", "csv"),
    [
        (None, None, False),
        ("", None, False),
        ("*/*", None, False),
        ("text/csv", None, True),
        ("TEXT/CSV", None, True),
        ("application/json, text/csv;q=0.1", None, False),
        ("text/csv;q=0.1, */*", None, False),
        ("text/csv, application/json;q=0.9", None, True),
        ("application/json;q=0.5, text/csv", None, True),
        ("text/csv;q=0.5, application/json;q=0.5", None, False),  # a tie is JSON
        ("text/*;q=0.2, application/*", None, False),
        ("text/*", None, True),
        ("text/csv;q=0", None, False),
        ("text/csv;q=oops", None, False),
        ("text/csv", "json", False),  # ?format= wins
        ("application/json", "csv", True),
    ],
)
def test_csv_only_when_asked_for_or_preferred_by_q_value(accept, output_format, csv):
    assert wants_csv(accept, output_format) is csv
