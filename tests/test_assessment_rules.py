"""standards.assessment: the six statistics, the published rounding, the comprehensive index,
periods so far, the same period and the rest of the year (pure rules, no database)."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from standards.assessment import (
    JUDGED,
    SIX_POLLUTANTS,
    STATISTICS,
    Period,
    change_percent,
    compliant_bound,
    comprehensive_index,
    grade_ii_limit,
    period_coverage,
    period_min_days,
    published,
    published_area_mean,
    rest_of_year,
    same_period_last_year,
    share,
    year_period,
)
from standards.limits import LIMIT_SETS, complies, limit_set_in_force
from standards.targets import NATIONAL_PM25_2027
from standards.validity import annual_coverage

GB3095_2012, TRANSITIONAL, FINAL = LIMIT_SETS


def test_the_six_pollutants_and_their_statistics_follow_hj663():
    keys = {s.key for s in STATISTICS}
    assert keys == {
        "so2_mean",
        "so2_p98",
        "no2_mean",
        "no2_p98",
        "pm10_mean",
        "pm10_p95",
        "pm10_mean_measured",
        "pm10_p95_measured",
        "pm25_mean",
        "pm25_p95",
        "pm25_mean_measured",
        "pm25_p95_measured",
        "co_p95",
        "o3_8h_p90",
    }
    # PM is assessed with the sand-dust hours excluded; as measured it is reported only
    by_key = {s.key: s for s in STATISTICS}
    assert by_key["pm25_mean"].series == "pm25_dust_excluded"
    assert by_key["pm25_mean"].sand_dust == "excluded"
    assert by_key["pm25_mean_measured"].series == "pm25"
    assert by_key["pm25_mean_measured"].sand_dust == "measured"
    assert not by_key["pm25_mean_measured"].judged
    assert by_key["pm25_mean_measured"].limit_period is None
    assert by_key["so2_mean"].sand_dust is None
    assert set(JUDGED) == set(SIX_POLLUTANTS)
    assert {p: (JUDGED[p].key, JUDGED[p].limit_period) for p in SIX_POLLUTANTS} == {
        "so2": ("so2_mean", "annual"),
        "no2": ("no2_mean", "annual"),
        "pm10": ("pm10_mean", "annual"),
        "pm25": ("pm25_mean", "annual"),
        "co": ("co_p95", "24h"),
        "o3": ("o3_8h_p90", "8h"),
    }


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (GB3095_2012, {"so2": 60, "no2": 40, "pm10": 70, "pm25": 35, "co": 4, "o3": 160}),
        (TRANSITIONAL, {"so2": 60, "no2": 40, "pm10": 60, "pm25": 30, "co": 4, "o3": 160}),
        (FINAL, {"so2": 20, "no2": 30, "pm10": 50, "pm25": 25, "co": 4, "o3": 160}),
    ],
)
def test_judged_statistics_pair_with_the_grade_ii_limits_of_the_table(limits, expected):
    assert {p: grade_ii_limit(JUDGED[p], limits) for p in SIX_POLLUTANTS} == expected


@pytest.mark.parametrize(
    ("value", "limit", "meets"),
    [
        (35.4, 35, True),  # published 35
        (35.5, 35, False),  # half to even: 36
        (34.5, 35, True),  # 34
        (35.0, 35, True),
        (35.6, 35, False),
    ],
)
def test_city_annual_mean_is_rounded_to_whole_ug_before_it_is_judged(value, limit, meets):
    shown = published("pm25", value)
    assert shown is not None and (shown <= limit) is meets
    assert complies(value, limit, 0) is meets


@pytest.mark.parametrize(
    ("value", "meets"), [(4.04, True), (4.05, True), (4.15, False), (4.1, False)]
)
def test_co_is_rounded_to_one_decimal_before_it_is_judged(value, meets):
    shown = published("co", value)
    assert shown is not None and (shown <= 4) is meets


@pytest.mark.parametrize(
    ("national", "below_28"),
    [(27.94, True), (27.949, True), (27.95, False), (27.96, False), (28.0, False)],
)
def test_national_mean_is_published_to_one_decimal_before_the_28_target(national, below_28):
    shown = published_area_mean(national)
    assert shown is not None and NATIONAL_PM25_2027.is_met(shown) is below_28


def test_comprehensive_index_sums_statistic_over_limit_and_names_the_largest_term():
    judged = {"so2": 9, "no2": 32, "pm10": 63, "pm25": 38, "co": 1.2, "o3": 180}
    index = comprehensive_index(judged, GB3095_2012)
    expected = 9 / 60 + 32 / 40 + 63 / 70 + 38 / 35 + 1.2 / 4 + 180 / 160
    assert index.value == round(expected, 2)
    assert index.largest == "o3"  # 1.125 > 38/35 = 1.086
    assert math.isclose(sum(index.shares.values()), 100, abs_tol=0.3)
    assert index.terms["pm25"] == round(38 / 35, 3)
    # the same statistics judged by the 2026 transitional limits weigh PM more
    assert comprehensive_index(judged, TRANSITIONAL).largest == "pm25"  # 38/30


def test_comprehensive_index_needs_all_six():
    with pytest.raises(KeyError):
        comprehensive_index({"so2": 9, "no2": 32, "pm10": 63, "pm25": 38, "co": 1.2}, FINAL)


def test_same_period_is_the_same_calendar_days_and_a_leap_day_ends_on_the_28th():
    assert same_period_last_year(Period(date(2026, 1, 1), date(2026, 12, 5))) == Period(
        date(2025, 1, 1), date(2025, 12, 5)
    )
    assert same_period_last_year(Period(date(2028, 1, 1), date(2028, 2, 29))) == Period(
        date(2027, 1, 1), date(2027, 2, 28)
    )
    # a year after a leap year: its same period holds 29 February
    last = same_period_last_year(Period(date(2029, 1, 1), date(2029, 3, 1)))
    assert last == Period(date(2028, 1, 1), date(2028, 3, 1)) and last.days == 61


def test_year_period_is_provisional_only_for_the_current_year():
    today = date(2026, 12, 5)
    assert year_period(2025, today) == (Period(date(2025, 1, 1), date(2025, 12, 31)), False)
    assert year_period(2026, today) == (Period(date(2026, 1, 1), today), True)
    with pytest.raises(ValueError, match="has not begun"):
        year_period(2027, today)


def test_change_percent_is_against_last_year():
    assert change_percent(27.0, 30.0) == -10.0
    assert change_percent(33.0, 30.0) == 10.0
    assert change_percent(1.0, 0.0) is None
    assert change_percent(None, 30.0) is None


def test_good_day_share_is_one_decimal():
    assert share(2, 3) == 66.7
    assert share(0, 0) is None


@given(st.lists(st.integers(min_value=0, max_value=31), min_size=12, max_size=12))
def test_a_whole_year_period_is_judged_exactly_as_the_annual_rule(days):
    months = {
        m: min(d, (date(2024, m % 12 + 1, 1) - date(2024, m, 1)).days if m < 12 else 31)
        for m, d in zip(range(1, 13), days, strict=True)
    }
    whole = period_coverage(months, Period(date(2024, 1, 1), date(2024, 12, 31)))
    annual = annual_coverage(months, 2024)
    assert (whole.valid, whole.reasons, whole.observed) == (
        annual.valid,
        annual.reasons,
        annual.observed,
    )


def test_a_year_so_far_needs_its_share_of_324_days_and_every_whole_month():
    period = Period(date(2026, 1, 1), date(2026, 3, 10))  # 69 days
    assert period_min_days(period) == math.ceil(324 * 69 / 365) == 62
    full = {1: 31, 2: 28, 3: 10}
    assert period_coverage(full, period).valid
    short = {1: 27, 2: 25, 3: 9}  # 61 days: one short
    found = period_coverage(short, period)
    assert not found.valid and found.reasons == ("61 valid days in the 69 days so far (62 needed)",)
    assert period_coverage({1: 31, 2: 28, 3: 10}, period).observed == 69
    # a whole month below its rule fails even with days enough; the partial month has none
    found = period_coverage({1: 26, 2: 28, 3: 10}, Period(date(2026, 1, 1), date(2026, 3, 10)))
    assert found.reasons[0] == "January has 26 valid days (27 needed)"
    assert period_coverage({1: 31, 2: 28, 3: 3}, period).valid


@pytest.mark.parametrize(
    ("target", "decimals", "comparator", "bound", "inclusive"),
    [
        (28.0, 1, "<", 27.95, False),  # 27.95 is published 28.0
        (30.0, 0, "<=", 30.5, True),  # 30.5 is published 30 (half to even)
        (35.0, 0, "<=", 35.5, False),  # 35.5 is published 36
    ],
)
def test_compliant_bound(target, decimals, comparator, bound, inclusive):
    assert compliant_bound(target, decimals, comparator) == (bound, inclusive)


def test_rest_of_year_is_what_the_remaining_days_must_average():
    period = Period(date(2026, 1, 1), date(2026, 9, 30))  # 273 days, 92 left
    rest = rest_of_year(29.0, period, 28.0, 1, "<")
    expected = (27.95 * 365 - 29.0 * 273) / 92
    assert rest.days_left == 92 and not rest.inclusive and rest.reachable
    assert rest.bound == math.floor(expected * 10) / 10
    # a year mean of the days so far plus the rest at the bound lands on the bound
    assert math.isclose((29.0 * 273 + expected * 92) / 365, 27.95)
    hopeless = rest_of_year(60.0, period, 28.0, 1, "<")
    assert hopeless.bound is not None and hopeless.bound < 0 and not hopeless.reachable
    city = rest_of_year(31.0, period, 30.0, 0, "<=")
    assert city.inclusive and city.bound == math.floor((30.5 * 365 - 31 * 273) / 92 * 10) / 10
    assert (
        rest_of_year(25.0, Period(date(2026, 1, 1), date(2026, 12, 31)), 28.0, 1, "<").bound is None
    )


def test_limit_set_of_a_year_so_far_is_the_one_in_force_at_its_end():
    assert limit_set_in_force(date(2026, 2, 28)) is GB3095_2012
    assert limit_set_in_force(date(2026, 3, 1)) is TRANSITIONAL
