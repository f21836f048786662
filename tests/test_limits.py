"""GB 3095 limits by version and date, and the compliance comparison.

The limits are typed from STANDARDS.md §1 (GB 3095-2012 and GB 3095-2026 Table 1), not
imported from ``standards.limits``, so that a wrong number in the module fails here.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from standards.limits import (
    LIMIT_SETS,
    complies,
    limit_set_for_period,
    limit_set_in_force,
    round_half_even,
)

V2012 = "GB 3095-2012"
TRANSITIONAL = "GB 3095-2026 (transitional)"
FINAL = "GB 3095-2026 (final)"

# (pollutant, period): 2012 I, 2012 II, 2026 transitional I, II, 2026 final I, II
TABLE_1: dict[tuple[str, str], tuple[float, float, float, float, float, float]] = {
    ("pm25", "annual"): (15, 35, 15, 30, 10, 25),
    ("pm25", "24h"): (35, 75, 35, 60, 25, 50),
    ("pm10", "annual"): (40, 70, 40, 60, 20, 50),
    ("pm10", "24h"): (50, 150, 50, 120, 50, 100),
    ("so2", "annual"): (20, 60, 20, 60, 20, 20),
    ("so2", "24h"): (50, 150, 50, 150, 50, 50),
    ("so2", "1h"): (150, 500, 150, 500, 150, 150),
    ("no2", "annual"): (40, 40, 40, 40, 30, 30),
    ("no2", "24h"): (80, 80, 80, 80, 50, 50),
    ("no2", "1h"): (200, 200, 200, 200, 200, 200),
    ("co", "24h"): (4, 4, 4, 4, 4, 4),
    ("co", "1h"): (10, 10, 10, 10, 10, 10),
    ("o3", "8h"): (100, 160, 100, 160, 100, 160),
    ("o3", "1h"): (160, 200, 160, 200, 160, 200),
}
COLUMNS = [(V2012, 1), (V2012, 2), (TRANSITIONAL, 1), (TRANSITIONAL, 2), (FINAL, 1), (FINAL, 2)]
CASES = [
    (name, grade, pollutant, period, row[column])
    for (pollutant, period), row in TABLE_1.items()
    for column, (name, grade) in enumerate(COLUMNS)
]
LIMIT_SET_BY_NAME = {limit_set.name: limit_set for limit_set in LIMIT_SETS}


@pytest.mark.parametrize(("name", "grade", "pollutant", "period", "expected"), CASES)
def test_every_table_1_limit_matches_the_standard(name, grade, pollutant, period, expected):
    assert LIMIT_SET_BY_NAME[name].limit(pollutant, period, grade) == expected


@pytest.mark.parametrize("name", [V2012, TRANSITIONAL, FINAL])
def test_each_version_holds_exactly_the_table_1_limits(name):
    assert set(LIMIT_SET_BY_NAME[name].limits) == set(TABLE_1)


def test_the_three_versions_are_kept_oldest_first_with_their_dates():
    assert [(s.name, s.in_force_from, s.in_force_to) for s in LIMIT_SETS] == [
        (V2012, date(2016, 1, 1), date(2026, 2, 28)),
        (TRANSITIONAL, date(2026, 3, 1), date(2030, 12, 31)),
        (FINAL, date(2031, 1, 1), None),
    ]


def test_grade_defaults_to_grade_ii():
    assert LIMIT_SET_BY_NAME[V2012].limit("pm25", "annual") == 35


@pytest.mark.parametrize(
    ("pollutant", "period"),
    [("co", "annual"), ("o3", "annual"), ("o3", "24h"), ("pm25", "1h"), ("pm25", "8h")],
)
def test_a_limit_the_table_does_not_have_is_none(pollutant, period):
    for limit_set in LIMIT_SETS:
        assert limit_set.limit(pollutant, period) is None


def test_an_unknown_pollutant_has_no_limit():
    assert LIMIT_SETS[0].limit("benzene", "annual") is None


@pytest.mark.parametrize("grade", [0, 3])
def test_a_grade_other_than_i_or_ii_is_refused(grade):
    with pytest.raises(ValueError, match="grade"):
        LIMIT_SETS[0].limit("pm25", "annual", grade)


def test_the_limit_tables_are_read_only():
    with pytest.raises(TypeError):
        LIMIT_SETS[0].limits[("pm25", "annual")] = (1, 2)


@pytest.mark.parametrize(
    ("on", "name"),
    [
        (date(2016, 1, 1), V2012),
        (date(2026, 2, 28), V2012),
        (date(2026, 3, 1), TRANSITIONAL),
        (date(2030, 12, 31), TRANSITIONAL),
        (date(2031, 1, 1), FINAL),
        (date(2060, 6, 1), FINAL),
    ],
)
def test_limit_set_in_force_changes_on_the_first_day_of_each_version(on, name):
    assert limit_set_in_force(on).name == name


def test_before_2016_the_2012_standard_is_used():
    assert limit_set_in_force(date(2013, 6, 1)).name == V2012


def test_pm25_annual_grade_ii_is_35_then_30_then_25_at_the_switch_dates():
    assert limit_set_in_force(date(2026, 2, 28)).limit("pm25", "annual") == 35
    assert limit_set_in_force(date(2026, 3, 1)).limit("pm25", "annual") == 30
    assert limit_set_in_force(date(2030, 12, 31)).limit("pm25", "annual") == 30
    assert limit_set_in_force(date(2031, 1, 1)).limit("pm25", "annual") == 25


@pytest.mark.parametrize(
    ("start", "end", "name"),
    [
        (date(2025, 1, 1), date(2025, 12, 31), V2012),
        # a 2026 annual report straddles the switch and is judged by the set at its end
        (date(2026, 1, 1), date(2026, 12, 31), TRANSITIONAL),
        (date(2026, 2, 1), date(2026, 2, 28), V2012),
        (date(2026, 2, 28), date(2026, 3, 1), TRANSITIONAL),
        (date(2030, 1, 1), date(2030, 12, 31), TRANSITIONAL),
        (date(2031, 1, 1), date(2031, 12, 31), FINAL),
    ],
)
def test_limit_set_for_period_is_the_set_in_force_on_its_last_day(start, end, name):
    assert limit_set_for_period(start, end).name == name


def test_a_period_ending_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="before it starts"):
        limit_set_for_period(date(2026, 12, 31), date(2026, 1, 1))


def test_35_complies_with_the_2012_pm25_annual_grade_ii_limit_and_35_1_does_not():
    limit = limit_set_in_force(date(2020, 1, 1)).limit("pm25", "annual")
    assert limit == 35
    assert complies(35, limit) is True
    assert complies(35.0, limit) is True
    assert complies(35.1, limit) is False


def test_a_value_is_compared_as_given_without_decimals():
    assert complies(35.04, 35) is False


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (35.04, 0, True),
        (35.5, 0, False),  # half to even: 35.5 → 36
        (34.5, 0, True),  # half to even: 34.5 → 34
        (35.05, 1, True),  # 35.05 → 35.0 (0 is even)
        (35.15, 1, False),
    ],
)
def test_with_decimals_the_value_is_rounded_half_to_even_before_comparison(
    value, decimals, expected
):
    assert complies(value, 35, decimals=decimals) is expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [(2.5, 0, 2.0), (3.5, 0, 4.0), (35.15, 1, 35.2), (35.25, 1, 35.2), (0.125, 2, 0.12)],
)
def test_round_half_even_rounds_the_decimal_digits(value, decimals, expected):
    assert round_half_even(value, decimals) == expected


def test_a_nan_value_cannot_be_judged():
    with pytest.raises(ValueError, match="NaN"):
        complies(math.nan, 35)
