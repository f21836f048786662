"""HJ 633 AQI, versions 2012 and 2026: IAQI, special rules, AQI, categories, version by date.

The breakpoints below are typed from STANDARDS.md §4 (HJ 633-2012 Table 1, HJ 633-2026 Table 3),
not imported from ``standards.aqi``, so that a wrong number in the module fails here.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from standards.aqi import (
    AQI_VERSIONS,
    CONCENTRATION_ROUNDING,
    HJ633_2012,
    HJ633_2026,
    AqiInputError,
    AqiVersion,
    aqi_category,
    aqi_version_in_force,
    daily_aqi,
    hourly_aqi,
    iaqi,
)

LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)

SAME_IN_BOTH: dict[str, tuple[float, ...]] = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 160, 215, 265, 800),
}
TABLE_2012: dict[str, tuple[float, ...]] = {
    "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    **SAME_IN_BOTH,
}
TABLE_2026: dict[str, tuple[float, ...]] = {
    "pm25_24h": (0, 35, 60, 115, 150, 250, 350, 500),
    "pm10_24h": (0, 50, 120, 250, 350, 420, 500, 600),
    **SAME_IN_BOTH,
}
TABLES = {"HJ 633-2012": TABLE_2012, "HJ 633-2026": TABLE_2026}
VERSIONS = {"HJ 633-2012": HJ633_2012, "HJ 633-2026": HJ633_2026}

BEIJING_MIDNIGHT_MARCH_1 = datetime(2026, 3, 1, 0, 0)
EXCELLENT, GOOD, LIGHTLY = "Excellent", "Good", "Lightly polluted"
MODERATELY, HEAVILY, SEVERELY = "Moderately polluted", "Heavily polluted", "Severely polluted"


def _rows() -> list[tuple[str, str, int]]:
    """(version name, breakpoint key, column index) for every breakpoint of every table."""
    return [
        (name, key, i)
        for name, table in TABLES.items()
        for key, breakpoints in table.items()
        for i in range(len(breakpoints))
    ]


ROWS = _rows()
ROW_IDS = [f"{name[-4:]}-{key}-{LEVELS[i]}" for name, key, i in ROWS]


def _step_above(name: str, key: str) -> Fraction:
    """A step above a breakpoint that survives the version's rounding: 0.01 in 2012; in 2026
    the smallest rounded step (CO 0.1 mg/m³, the rest 1 µg/m³)."""
    if name == "HJ 633-2012":
        return Fraction(1, 100)
    return Fraction(1, 10) if key.startswith("co_") else Fraction(1)


# --- the breakpoint tables --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TABLES))
def test_version_breakpoints_equal_the_standard_table(name: str) -> None:
    assert dict(VERSIONS[name].breakpoints) == TABLES[name]


@pytest.mark.parametrize("key", ["pm25_24h", "pm10_24h"])
def test_only_the_iaqi_100_pm_breakpoint_differs_between_versions(key: str) -> None:
    old, new = HJ633_2012.breakpoints[key], HJ633_2026.breakpoints[key]
    assert [i for i in range(len(old)) if old[i] != new[i]] == [2]
    assert (old[2], new[2]) == ({"pm25_24h": 75, "pm10_24h": 150}[key], TABLE_2026[key][2])


@pytest.mark.parametrize(("name", "key", "index"), ROWS, ids=ROW_IDS)
def test_concentration_at_a_breakpoint_gives_exactly_its_level(
    name: str, key: str, index: int
) -> None:
    found = iaqi(key, float(TABLES[name][key][index]), VERSIONS[name])
    assert (found.value, found.beyond_index) == (LEVELS[index], False)


@pytest.mark.parametrize(("name", "key", "index"), ROWS, ids=ROW_IDS)
def test_concentration_just_above_a_breakpoint_rounds_up_into_the_next_segment(
    name: str, key: str, index: int
) -> None:
    breakpoints = TABLES[name][key]
    step = _step_above(name, key)
    concentration = Fraction(breakpoints[index]) + step
    found = iaqi(key, float(concentration), VERSIONS[name])
    if index == len(breakpoints) - 1:
        assert (found.value, found.beyond_index) == (LEVELS[index], True)
        return
    bp_span = Fraction(breakpoints[index + 1]) - Fraction(breakpoints[index])
    slope = (LEVELS[index + 1] - LEVELS[index]) / bp_span
    expected = LEVELS[index] + math.ceil(slope * step)
    assert (found.value, found.beyond_index) == (expected, False)
    if name == "HJ 633-2012":
        assert found.value == LEVELS[index] + 1


@pytest.mark.parametrize(
    ("concentration", "expected"),
    [(35, 50), (35.1, 51), (75, 100), (75.1, 101), (60, 82), (115, 150), (500, 500)],
)
def test_pm25_iaqi_2012_uses_exact_arithmetic(concentration: float, expected: int) -> None:
    # 35.1: 50/40 * 0.1 + 50 = 50.125 → 51; 60: 50/40 * 25 + 50 = 81.25 → 82
    assert iaqi("pm25_24h", concentration, HJ633_2012).value == expected


@pytest.mark.parametrize(
    ("key", "concentration", "iaqi_2012", "iaqi_2026"),
    [
        ("pm25_24h", 60, 82, 100),  # 2026: 60 is the IAQI-100 point
        ("pm25_24h", 75, 100, 114),  # 2026: 50/55 * 15 + 100 = 113.6 → 114
        ("pm10_24h", 120, 85, 100),  # 2012: 50/100 * 70 + 50 = 85
        ("pm10_24h", 150, 100, 112),  # 2026: 50/130 * 30 + 100 = 111.5 → 112
    ],
)
def test_pm_iaqi_differs_between_versions_on_the_changed_row(
    key: str, concentration: float, iaqi_2012: int, iaqi_2026: int
) -> None:
    assert iaqi(key, concentration, HJ633_2012).value == iaqi_2012
    assert iaqi(key, concentration, HJ633_2026).value == iaqi_2026


def test_iaqi_without_concentration_is_none() -> None:
    assert iaqi("no2_1h", math.nan, HJ633_2012).value is None
    assert iaqi("no2_1h", None, HJ633_2026).value is None


@pytest.mark.parametrize("concentration", [-0.1, math.inf])
def test_negative_or_infinite_concentration_is_refused(concentration: float) -> None:
    with pytest.raises(AqiInputError):
        iaqi("pm25_24h", concentration, HJ633_2012)


def test_unknown_breakpoint_table_is_refused() -> None:
    with pytest.raises(AqiInputError, match=r"pm2\.5"):
        iaqi("pm2.5", 10, HJ633_2012)


# --- beyond the index ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "concentration", "top_level"),
    [("pm25_24h", 600, 500), ("co_1h", 150.1, 500), ("so2_1h", 900, 200), ("o3_8h", 801, 300)],
)
@pytest.mark.parametrize("version", AQI_VERSIONS, ids=lambda v: v.name)
def test_concentration_above_the_top_breakpoint_is_the_top_level_beyond_index(
    version: AqiVersion, key: str, concentration: float, top_level: int
) -> None:
    found = iaqi(key, concentration, version)
    assert (found.value, found.beyond_index, str(found)) == (top_level, True, f"{top_level}+")


def test_aqi_beyond_index_is_reported_as_500_plus_severely_polluted() -> None:
    result = daily_aqi({"pm25": 650, "pm10": 100}, date(2025, 1, 1))
    assert (result.aqi, result.beyond_index, str(result)) == (500, True, "500+")
    assert (result.category, result.primary_pollutants) == (SEVERELY, ("pm25",))


def test_aqi_at_the_top_breakpoint_is_500_not_beyond_index() -> None:
    result = daily_aqi({"pm25": 500}, date(2025, 1, 1))
    assert (result.aqi, result.beyond_index, str(result)) == (500, False, "500")


# --- special rules ------------------------------------------------------------------------------


def test_2012_so2_1h_above_800_uses_the_24h_so2_iaqi() -> None:
    # 24-hour SO2 200: 50/325 * 50 + 100 = 107.7 → 108
    result = hourly_aqi({"so2": 900, "so2_24h": 200}, datetime(2025, 1, 1, 10))
    so2 = result.iaqi["so2"]
    assert (so2.value, so2.beyond_index, so2.breakpoints) == (108, False, "so2_24h")
    assert so2.rule is not None and "so2_24h" in so2.rule
    assert (result.aqi, result.primary_pollutants) == (108, ("so2",))


def test_2012_so2_1h_above_800_without_24h_mean_is_not_computable() -> None:
    # the NO2 IAQI alone (50) would understate an SO2 whose IAQI is unknown
    result = hourly_aqi({"so2": 900, "no2": 100}, datetime(2025, 1, 1, 10))
    assert result.iaqi["so2"].value is None
    assert "so2" in result.missing
    assert (result.aqi, result.category, result.primary_pollutants) == (None, None, ())
    assert result.not_computable is not None
    assert "so2_1h above 800" in result.not_computable
    assert "'so2_24h' is missing" in result.not_computable
    assert str(result) == "—"


def test_2012_o3_8h_above_800_without_1h_value_is_not_computable() -> None:
    # PM2.5 100 alone would give 132; the O3 IAQI is that of the missing 1-hour maximum
    result = daily_aqi({"o3_8h": 850, "pm25": 100}, date(2025, 7, 1))
    assert result.aqi is None and result.iaqi["o3_8h"].value is None
    assert result.not_computable is not None
    assert "o3_8h above 800" in result.not_computable
    hourly = hourly_aqi({"o3_8h": 850, "no2": 100}, datetime(2025, 7, 1, 15))
    assert hourly.aqi is None and hourly.not_computable is not None


def test_a_missing_pollutant_without_a_rule_leaves_the_aqi_computable() -> None:
    result = daily_aqi({"o3_8h": 700, "pm25": 100}, date(2025, 7, 1))
    # 700 on 265…800 → 200 + 100·435/535 = 281.3 → 282; o3_1h missing
    assert (result.aqi, result.not_computable) == (282, None)
    assert "o3_1h" in result.missing
    # 2026: O3 8-hour above 800 is IAQI 300, no substitute needed
    assert daily_aqi({"o3_8h": 850}, date(2026, 7, 1)).not_computable is None


def test_2012_so2_1h_at_800_is_200_from_the_table() -> None:
    result = hourly_aqi({"so2": 800, "so2_24h": 10}, datetime(2025, 1, 1, 10))
    assert (result.aqi, result.iaqi["so2"].rule) == (200, None)


def test_2026_so2_1h_above_800_is_iaqi_200() -> None:
    result = hourly_aqi({"so2": 900, "so2_24h": 10}, datetime(2026, 3, 1, 10))
    so2 = result.iaqi["so2"]
    assert (so2.value, so2.beyond_index, so2.breakpoints) == (200, False, "so2_1h")
    assert so2.rule is not None
    assert (result.aqi, result.beyond_index, result.category) == (200, False, MODERATELY)


def test_2012_o3_8h_above_800_uses_the_1h_o3_iaqi() -> None:
    # 1-hour O3 900: 100/200 * 100 + 300 = 350
    result = daily_aqi({"o3_8h": 900, "o3_1h": 900}, date(2025, 7, 1))
    o3_8h = result.iaqi["o3_8h"]
    assert (o3_8h.value, o3_8h.beyond_index, o3_8h.breakpoints) == (350, False, "o3_1h")
    assert result.aqi == 350
    # one O3 IAQI counted once: the 8-hour value is the 1-hour one
    assert result.primary_pollutants == ("o3_1h",)


def test_2012_o3_8h_above_800_in_the_hourly_aqi_uses_the_1h_o3_iaqi() -> None:
    result = hourly_aqi({"o3": 400, "o3_8h": 850}, datetime(2025, 7, 1, 15))
    assert (result.iaqi["o3_8h"].value, result.aqi) == (200, 200)


def test_2026_o3_8h_above_800_is_iaqi_300() -> None:
    result = daily_aqi({"o3_8h": 900, "o3_1h": 1100}, date(2026, 7, 1))
    o3_8h = result.iaqi["o3_8h"]
    assert (o3_8h.value, o3_8h.beyond_index, o3_8h.rule is not None) == (300, False, True)
    assert (result.aqi, result.primary_pollutants, result.category) == (300, ("o3_8h",), HEAVILY)


# --- AQI, primary pollutant, category ------------------------------------------------------------


def test_aqi_is_the_maximum_iaqi() -> None:
    # 2012 daily: PM10 100 → 75, NO2 60 → 75, CO 3 → 75, PM2.5 50 → 50/40*15+50 = 68.75 → 69
    result = daily_aqi({"pm10": 100, "no2": 60, "co": 3, "pm25": 50}, date(2025, 1, 1))
    assert {p: i.value for p, i in result.iaqi.items() if i.value is not None} == {
        "pm10": 75,
        "no2": 75,
        "co": 75,
        "pm25": 69,
    }
    assert result.aqi == 75


def test_tied_iaqis_are_all_primary_pollutants() -> None:
    result = daily_aqi({"pm10": 100, "no2": 60, "co": 3, "pm25": 50}, date(2025, 1, 1))
    assert result.primary_pollutants == ("no2", "pm10", "co")


def test_primary_pollutant_only_when_aqi_above_50() -> None:
    at_50 = daily_aqi({"pm25": 35, "pm10": 50}, date(2025, 1, 1))
    at_51 = daily_aqi({"pm25": 35.1, "pm10": 50}, date(2025, 1, 1))
    assert (at_50.aqi, at_50.primary_pollutants, at_50.category) == (50, (), EXCELLENT)
    assert (at_51.aqi, at_51.primary_pollutants, at_51.category) == (51, ("pm25",), GOOD)


@pytest.mark.parametrize(
    ("aqi", "category", "colour"),
    [
        (0, EXCELLENT, (0, 228, 0)),
        (50, EXCELLENT, (0, 228, 0)),
        (51, GOOD, (255, 255, 0)),
        (100, GOOD, (255, 255, 0)),
        (101, LIGHTLY, (255, 126, 0)),
        (150, LIGHTLY, (255, 126, 0)),
        (151, MODERATELY, (255, 0, 0)),
        (200, MODERATELY, (255, 0, 0)),
        (201, HEAVILY, (153, 0, 76)),
        (300, HEAVILY, (153, 0, 76)),
        (301, SEVERELY, (126, 0, 35)),
        (500, SEVERELY, (126, 0, 35)),
    ],
)
@pytest.mark.parametrize("version", AQI_VERSIONS, ids=lambda v: v.name)
def test_category_and_colour_change_at_the_aqi_boundaries(
    version: AqiVersion, aqi: int, category: str, colour: tuple[int, int, int]
) -> None:
    found = aqi_category(aqi, version)
    assert (found.name, found.colour) == (category, colour)


@pytest.mark.parametrize(
    ("so2_24h", "aqi", "category"),
    [
        (50, 50, EXCELLENT),
        (51, 51, GOOD),
        (150, 100, GOOD),
        (156.5, 101, LIGHTLY),  # 50/325 * 6.5 + 100 = 101
        (475, 150, LIGHTLY),
        (478.25, 151, MODERATELY),  # 50/325 * 3.25 + 150 = 150.5 → 151
        (800, 200, MODERATELY),
        (808, 201, HEAVILY),  # 100/800 * 8 + 200 = 201
        (1600, 300, HEAVILY),
        (1605, 301, SEVERELY),  # 100/500 * 5 + 300 = 301
    ],
)
def test_daily_result_category_follows_the_aqi_at_boundaries(
    so2_24h: float, aqi: int, category: str
) -> None:
    result = daily_aqi({"so2": so2_24h}, date(2025, 1, 1))
    assert (result.aqi, result.category) == (aqi, category)


def test_no_concentrations_give_no_aqi() -> None:
    result = hourly_aqi({"pm25": math.nan}, datetime(2026, 5, 1, 8))
    assert (result.aqi, result.category, result.colour, result.primary_pollutants) == (
        None,
        None,
        None,
        (),
    )
    assert set(result.missing) == {"so2", "no2", "pm10", "co", "o3_1h", "pm25"}


def test_missing_pollutants_are_listed_and_the_aqi_uses_the_others() -> None:
    result = daily_aqi({"pm25": 80, "o3_8h": 100}, date(2026, 6, 1))
    assert result.missing == ("so2", "no2", "pm10", "co")
    assert result.aqi == 119  # 2026: 50/55 * 20 + 100 = 118.2 → 119


def test_unknown_input_key_is_refused() -> None:
    with pytest.raises(AqiInputError, match=r"pm2\.5"):
        hourly_aqi({"pm2.5": 10}, datetime(2025, 1, 1))
    with pytest.raises(AqiInputError, match="o3"):
        daily_aqi({"o3": 10}, date(2025, 1, 1))


# --- version by date ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 2, 28, 23, 0), HJ633_2012),
        (datetime(2026, 2, 28, 23, 59, 59), HJ633_2012),
        (BEIJING_MIDNIGHT_MARCH_1, HJ633_2026),
        (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), HJ633_2026),  # 00:00 Beijing
        (datetime(2026, 2, 28, 15, 59, tzinfo=UTC), HJ633_2012),  # 23:59 Beijing
        (datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=9))), HJ633_2026),
        (date(2026, 2, 28), HJ633_2012),
        (date(2026, 3, 1), HJ633_2026),
        (date(2016, 1, 1), HJ633_2012),
        (date(2015, 12, 31), HJ633_2012),  # before HJ 633-2012: still 2012
        (date(2040, 1, 1), HJ633_2026),
    ],
)
def test_version_in_force_is_chosen_by_beijing_time(
    at: datetime | date, expected: AqiVersion
) -> None:
    assert aqi_version_in_force(at) is expected


def test_version_dates_are_the_standards_in_force_periods() -> None:
    assert (HJ633_2012.name, HJ633_2012.in_force_from, HJ633_2012.in_force_to) == (
        "HJ 633-2012",
        date(2016, 1, 1),
        date(2026, 2, 28),
    )
    assert (HJ633_2026.name, HJ633_2026.in_force_from, HJ633_2026.in_force_to) == (
        "HJ 633-2026",
        date(2026, 3, 1),
        None,
    )


def test_hourly_aqi_across_the_switch_uses_each_hours_version() -> None:
    readings = {"pm25": 60, "pm25_24h": 60}
    before = hourly_aqi(readings, datetime(2026, 2, 28, 23))
    after = hourly_aqi(readings, datetime(2026, 2, 28, 16, tzinfo=UTC))
    assert (before.version, before.aqi) == ("HJ 633-2012", 82)
    assert (after.version, after.aqi) == ("HJ 633-2026", 100)


# --- 2026 concentration rounding ----------------------------------------------------------------


def test_concentration_rounding_defaults_to_round_half_even() -> None:
    assert CONCENTRATION_ROUNDING == ROUND_HALF_EVEN
    assert HJ633_2026.concentration_rounding == ROUND_HALF_EVEN


@pytest.mark.parametrize(
    ("key", "concentration", "rounded", "expected"),
    [
        ("pm25_24h", 60.4, 60, 100),
        ("pm25_24h", 60.5, 60, 100),  # half to even
        ("pm25_24h", 61.5, 62, 102),  # 50/55 * 2 + 100 = 101.8 → 102
        ("pm25_24h", 34.6, 35, 50),
        ("so2_1h", 150.5, 150, 50),
        ("no2_1h", 100.49, 100, 50),
        ("o3_8h", 100.5, 100, 50),
        ("co_1h", 5.04, 5.0, 50),
        ("co_1h", 5.05, 5.0, 50),  # half to even, on the decimal 5.05, not the float
        ("co_1h", 5.15, 5.2, 52),  # 50/5 * 0.2 + 50 = 52
    ],
)
def test_2026_rounds_the_concentration_before_the_iaqi(
    key: str, concentration: float, rounded: float, expected: int
) -> None:
    found = iaqi(key, concentration, HJ633_2026)
    assert (found.concentration, found.value) == (rounded, expected)


def test_2012_does_not_round_the_concentration() -> None:
    found = iaqi("pm25_24h", 75.4, HJ633_2012)
    assert (found.concentration, found.value) == (75.4, 101)


def test_another_rounding_mode_is_a_replaced_version() -> None:
    half_up = dataclasses.replace(HJ633_2026, concentration_rounding=ROUND_HALF_UP)
    assert iaqi("pm25_24h", 60.5, half_up).value == 101  # 61: 50/55 + 100 = 100.9 → 101
    versions = (HJ633_2012, half_up)
    assert daily_aqi({"pm25": 60.5}, date(2026, 3, 2), versions=versions).aqi == 101
    assert daily_aqi({"pm25": 60.5}, date(2026, 3, 2)).aqi == 100


# --- hourly vs daily ----------------------------------------------------------------------------


def test_2012_daily_aqi_includes_the_o3_daily_max_1h() -> None:
    result = daily_aqi({"o3_1h": 300, "o3_8h": 100}, date(2025, 7, 1))
    assert (result.aqi, result.primary_pollutants) == (150, ("o3_1h",))
    assert set(result.iaqi) == {"so2", "no2", "pm10", "co", "o3_1h", "o3_8h", "pm25"}


def test_2026_daily_aqi_ignores_the_o3_daily_max_1h() -> None:
    result = daily_aqi({"o3_1h": 300, "o3_8h": 100}, date(2026, 7, 1))
    assert (result.aqi, result.primary_pollutants) == (50, ())
    assert "o3_1h" not in result.iaqi


def test_daily_aqi_uses_24h_tables_for_so2_no2_co() -> None:
    # as 1-hour values the same numbers give 50 and 50; on the 24-hour tables
    # NO2 100: 50/100 * 20 + 100 = 110, CO 5: 50/10 * 1 + 100 = 105
    result = daily_aqi({"no2": 100, "co": 5}, date(2025, 1, 1))
    assert (result.iaqi["no2"].value, result.iaqi["co"].value) == (110, 105)


def test_2012_hourly_aqi_uses_the_24h_moving_average_of_pm() -> None:
    result = hourly_aqi({"pm25": 200, "pm25_24h": 35, "pm10": 400}, datetime(2025, 1, 1, 9))
    assert (result.iaqi["pm25"].value, result.iaqi["pm25"].concentration) == (50, 35)
    assert result.iaqi["pm10"].value is None
    assert result.aqi == 50


def test_2026_hourly_aqi_puts_1h_pm_on_the_24h_breakpoints() -> None:
    result = hourly_aqi({"pm25": 60, "pm25_24h": 200, "pm10": 120}, datetime(2026, 4, 1, 9))
    pm25, pm10 = result.iaqi["pm25"], result.iaqi["pm10"]
    assert (pm25.value, pm25.concentration, pm25.breakpoints) == (100, 60, "pm25_24h")
    assert (pm10.value, pm10.breakpoints) == (100, "pm10_24h")
    assert result.primary_pollutants == ("pm10", "pm25")


def test_hourly_aqi_uses_1h_tables_for_gases() -> None:
    for at in (datetime(2025, 1, 1, 9), datetime(2026, 4, 1, 9)):
        result = hourly_aqi({"so2": 150, "no2": 100, "co": 5, "o3": 160}, at)
        assert {p: result.iaqi[p].value for p in ("so2", "no2", "co", "o3_1h")} == dict.fromkeys(
            ("so2", "no2", "co", "o3_1h"), 50
        )


def test_2012_hourly_aqi_includes_the_o3_8h_moving_average_when_given() -> None:
    result = hourly_aqi({"o3": 100, "o3_8h": 160}, datetime(2025, 7, 1, 15))
    assert (result.aqi, result.primary_pollutants) == (100, ("o3_8h",))
    without = hourly_aqi({"o3": 100}, datetime(2025, 7, 1, 15))
    assert "o3_8h" not in without.iaqi and "o3_8h" not in without.missing


def test_2026_hourly_aqi_ignores_the_o3_8h_moving_average() -> None:
    result = hourly_aqi({"o3": 100, "o3_8h": 160}, datetime(2026, 7, 1, 15))
    assert (result.aqi, "o3_8h" in result.iaqi) == (32, False)


# --- properties ---------------------------------------------------------------------------------

keys_and_versions = st.tuples(st.sampled_from(sorted(TABLE_2012)), st.sampled_from(list(TABLES)))


@settings(max_examples=300, deadline=None, database=None)
@given(
    key_version=keys_and_versions,
    low=st.floats(min_value=0, max_value=4000, allow_nan=False),
    high=st.floats(min_value=0, max_value=4000, allow_nan=False),
)
def test_iaqi_is_monotonic_non_decreasing_in_concentration(
    key_version: tuple[str, str], low: float, high: float
) -> None:
    key, name = key_version
    low, high = min(low, high), max(low, high)
    version = VERSIONS[name]
    low_value, high_value = iaqi(key, low, version).value, iaqi(key, high, version).value
    assert low_value is not None and high_value is not None
    assert low_value <= high_value


@settings(max_examples=300, deadline=None, database=None)
@given(
    row=st.sampled_from(ROWS),
    # at most 0.01: the steepest segment (CO 1-hour, 10 IAQI per mg/m³) then moves < 1
    tiny=st.floats(min_value=5e-324, max_value=0.01, allow_nan=False, allow_subnormal=True),
)
def test_iaqi_is_continuous_across_every_breakpoint(row: tuple[str, str, int], tiny: float) -> None:
    name, key, index = row
    version, bp, level = VERSIONS[name], TABLES[name][key][index], LEVELS[index]
    assert iaqi(key, float(bp), version).value == level
    above = iaqi(key, bp + tiny, version).value
    assert above is not None and level <= above <= level + 1
    if bp > 0:
        below = iaqi(key, bp - tiny, version).value
        assert below is not None and below <= level
