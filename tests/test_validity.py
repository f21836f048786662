"""GB 3095 Table 4 validity, the coverage object and the HJ 663 percentile.

Thresholds are typed from STANDARDS.md §2 and §3, not imported from ``standards.validity``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from standards.validity import (
    ANNUAL_PERCENTILE,
    Coverage,
    annual_coverage,
    daily_mean_is_valid,
    hourly_value_is_valid,
    monthly_coverage,
    monthly_mean_is_valid,
    monthly_min_days,
    o3_8h_mean_is_valid,
    percentile,
)

DAYS_IN_MONTH = dict(enumerate((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1))


def full_year(year: int) -> dict[int, int]:
    days = dict(DAYS_IN_MONTH)
    if year % 4 == 0:
        days[2] = 29
    return days


def test_an_hour_needs_45_minutes_of_data():
    assert hourly_value_is_valid(45) is True
    assert hourly_value_is_valid(44.9) is False
    assert hourly_value_is_valid(60) is True


def test_a_daily_mean_needs_20_hourly_values():
    assert daily_mean_is_valid(19) is False
    assert daily_mean_is_valid(20) is True
    assert daily_mean_is_valid(24) is True


def test_an_o3_8_hour_mean_needs_6_hourly_values():
    assert o3_8h_mean_is_valid(5) is False
    assert o3_8h_mean_is_valid(6) is True


@pytest.mark.parametrize("month", [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
def test_a_month_other_than_february_needs_27_days(month):
    assert monthly_min_days(2025, month) == 27
    assert monthly_mean_is_valid(26, 2025, month) is False
    assert monthly_mean_is_valid(27, 2025, month) is True


@pytest.mark.parametrize("year", [2025, 2028])
def test_february_needs_25_days_in_common_and_leap_years(year):
    assert monthly_min_days(year, 2) == 25
    assert monthly_mean_is_valid(24, year, 2) is False
    assert monthly_mean_is_valid(25, year, 2) is True


@pytest.mark.parametrize("month", [0, 13])
def test_a_month_outside_1_to_12_is_refused(month):
    with pytest.raises(ValueError, match="month"):
        monthly_min_days(2025, month)


def test_monthly_coverage_of_a_valid_march():
    assert monthly_coverage(27, 2025, 3) == Coverage(
        expected=31,
        observed=27,
        percent_complete=pytest.approx(87.0968, abs=1e-4),
        valid=True,
        reasons=(),
    )


def test_monthly_coverage_of_a_short_february_in_a_leap_year_says_why():
    coverage = monthly_coverage(24, 2028, 2)
    assert coverage.expected == 29
    assert coverage.observed == 24
    assert coverage.valid is False
    assert coverage.reasons == ("February has 24 valid days (25 needed)",)


def test_monthly_coverage_refuses_more_valid_days_than_the_month_has():
    with pytest.raises(ValueError, match="February 2025"):
        monthly_coverage(29, 2025, 2)


def test_a_complete_year_is_valid_and_fully_covered():
    coverage = annual_coverage(full_year(2025), 2025)
    assert coverage == Coverage(365, 365, 100.0, True, ())


def test_a_leap_year_expects_366_days():
    coverage = annual_coverage(full_year(2028), 2028)
    assert (coverage.expected, coverage.observed, coverage.valid) == (366, 366, True)


def test_324_valid_days_with_every_month_valid_make_a_valid_year():
    # 27 days in each of 12 months = 324
    coverage = annual_coverage(dict.fromkeys(range(1, 13), 27), 2025)
    assert coverage.observed == 324
    assert coverage.valid is True
    assert coverage.percent_complete == pytest.approx(100 * 324 / 365)


def test_323_valid_days_make_the_year_invalid_even_with_every_month_valid():
    days = dict.fromkeys(range(1, 13), 27)
    days[2] = 26  # February still valid (25 needed)
    coverage = annual_coverage(days, 2025)
    assert coverage.observed == 323
    assert coverage.valid is False
    assert coverage.reasons == ("323 valid days in the year (324 needed)",)


@pytest.mark.parametrize("year", [2025, 2028])
def test_february_with_25_valid_days_keeps_the_year_valid_and_24_does_not(year):
    days = full_year(year)
    days[2] = 25
    assert annual_coverage(days, year).valid is True
    days[2] = 24
    coverage = annual_coverage(days, year)
    assert coverage.valid is False
    assert coverage.reasons == ("February has 24 valid days (25 needed)",)


def test_330_valid_days_with_march_at_24_is_invalid_and_names_march():
    days = dict.fromkeys(range(1, 13), 28)
    days[2] = 26
    days[3] = 24
    coverage = annual_coverage(days, 2025)
    assert coverage.observed == 330
    assert coverage.valid is False
    assert coverage.reasons == ("March has 24 valid days (27 needed)",)


def test_every_failing_month_is_listed_in_calendar_order_before_the_yearly_shortfall():
    days = full_year(2025)
    days[11] = 1
    days[2] = 24
    days[7] = 26
    coverage = annual_coverage(days, 2025)
    assert coverage.observed == 365 - 29 - 4 - 5
    assert coverage.reasons == (
        "February has 24 valid days (25 needed)",
        "July has 26 valid days (27 needed)",
        "November has 1 valid day (27 needed)",
    )
    days[1] = 20
    assert annual_coverage(days, 2025).reasons == (
        "January has 20 valid days (27 needed)",
        "February has 24 valid days (25 needed)",
        "July has 26 valid days (27 needed)",
        "November has 1 valid day (27 needed)",
        "316 valid days in the year (324 needed)",
    )


def test_months_missing_from_the_mapping_count_as_no_valid_days():
    days = full_year(2025)
    del days[12]
    coverage = annual_coverage(days, 2025)
    assert coverage.observed == 334
    assert coverage.reasons == ("December has 0 valid days (27 needed)",)


def test_an_empty_year_lists_every_month_and_the_yearly_shortfall():
    coverage = annual_coverage({}, 2025)
    assert coverage.observed == 0
    assert coverage.percent_complete == 0.0
    assert len(coverage.reasons) == 13
    assert coverage.reasons[-1] == "0 valid days in the year (324 needed)"


def test_annual_coverage_refuses_a_month_number_outside_1_to_12():
    with pytest.raises(ValueError, match="month"):
        annual_coverage({13: 30}, 2025)


def test_hj_663_percentile_example_is_6_5():
    assert percentile([3, 4, 8, 2, 5, 4], 90) == 6.5


def test_the_percentile_of_one_value_is_that_value():
    assert percentile([42.0], 95) == 42.0


def test_the_0th_and_100th_percentiles_are_the_minimum_and_maximum():
    assert percentile([3, 4, 8, 2, 5, 4], 0) == 2
    assert percentile([3, 4, 8, 2, 5, 4], 100) == 8


def test_the_percentile_of_no_values_is_refused():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 95)


@pytest.mark.parametrize("p", [-1, 100.5])
def test_a_percentile_outside_0_to_100_is_refused(p):
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0, 2.0], p)


def test_nan_values_must_be_excluded_before_the_percentile():
    with pytest.raises(ValueError, match="NaN"):
        percentile([1.0, math.nan, 3.0], 95)


@given(
    values=st.lists(
        st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=1, max_size=366
    ),
    p=st.sampled_from([90.0, 95.0, 98.0]) | st.floats(min_value=0, max_value=100),
)
def test_the_percentile_equals_numpys_default_linear_method(values, p):
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)), abs=1e-9)


def test_annual_percentiles_follow_hj_663():
    assert dict(ANNUAL_PERCENTILE) == {
        "pm25": ("24h", 95),
        "pm10": ("24h", 95),
        "so2": ("24h", 98),
        "no2": ("24h", 98),
        "co": ("24h", 95),
        "o3": ("8h", 90),
    }
