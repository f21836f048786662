"""standards.quality: the automatic quality flags of hourly values, their boundaries, their
sentences and the look-around a caller must fetch; pure, in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from standards.quality import (
    DEFAULT_THRESHOLDS,
    OUT_OF_RANGE,
    PM25_ABOVE_PM10,
    SPIKE,
    STUCK,
    ZERO_RUN,
    QualityThresholds,
    hour_flags,
    parameters_judged_with,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def series(parameter: str, values: list[float], start: int = 0) -> list:
    """Consecutive hours from T0 + ``start`` hours."""
    return [(parameter, T0 + (start + i) * HOUR, value) for i, value in enumerate(values)]


def codes(flags, parameter: str, hour: int) -> list[str]:
    return [flag.code for flag in flags.get((parameter, T0 + hour * HOUR), [])]


def flagged_hours(flags, parameter: str, code: str) -> list[int]:
    return sorted(
        int((bucket - T0) / HOUR)
        for (p, bucket), found in flags.items()
        if p == parameter and any(f.code == code for f in found)
    )


# --- stuck --------------------------------------------------------------------------------


def test_eleven_equal_hours_are_not_stuck_twelve_are_every_one_of_them():
    eleven = hour_flags(series("pm25", [40.0, *[35.0] * 11, 41.0]))
    assert flagged_hours(eleven, "pm25", STUCK) == []
    twelve = hour_flags(series("pm25", [40.0, *[35.0] * 12, 41.0]))
    assert flagged_hours(twelve, "pm25", STUCK) == list(range(1, 13))
    [flag] = twelve["pm25", T0 + HOUR]
    assert flag.message == "the same value 35.0 ug/m3 for 12 consecutive hours (threshold 12)"


def test_a_run_reaching_the_fetched_window_lasts_at_least_the_hours_seen():
    hours = series("pm25", [35.0] * 13)
    inside = hour_flags(hours, window=(T0 - HOUR, T0 + 14 * HOUR))
    assert "for 13 consecutive hours" in inside["pm25", T0][0].message
    at_end = hour_flags(hours, window=(T0 - HOUR, T0 + 13 * HOUR))
    assert "for at least 13 consecutive hours" in at_end["pm25", T0][0].message
    at_start = hour_flags(series("co", [0.0] * 6), window=(T0, T0 + 8 * HOUR))
    assert "co zero for at least 6 consecutive hours" in at_start["co", T0][0].message


def test_a_missing_hour_ends_a_stuck_run():
    hours = series("no2", [35.0] * 8) + series("no2", [35.0] * 8, start=9)
    assert flagged_hours(hour_flags(hours), "no2", STUCK) == []


def test_stuck_compares_means_within_float_noise_not_at_published_precision():
    noisy = [35.2 + (1e-12 if i % 2 else 0.0) for i in range(12)]
    assert flagged_hours(hour_flags(series("pm25", noisy)), "pm25", STUCK) == list(range(12))
    # 35.2 and 35.4 are both 35 as published, but a moving value is not stuck
    moving = [35.2, 35.4] * 6
    assert flagged_hours(hour_flags(series("pm25", moving)), "pm25", STUCK) == []


def test_water_class_is_never_stuck():
    assert hour_flags(series("water_class", [3.0] * 48)) == {}


def test_stuck_hours_come_from_the_thresholds():
    three = QualityThresholds(stuck_hours=3)
    flags = hour_flags(series("o3", [80.0, 80.0, 80.0, 81.0]), three)
    assert flagged_hours(flags, "o3", STUCK) == [0, 1, 2]
    assert "for 3 consecutive hours (threshold 3)" in flags["o3", T0][0].message


# --- PM2.5 above PM10 ---------------------------------------------------------------------


def test_pm25_equal_to_pm10_is_not_flagged_above_it_flags_both():
    hours = series("pm25", [50.0, 50.5]) + series("pm10", [50.0, 50.0])
    flags = hour_flags(hours)
    assert codes(flags, "pm25", 0) == [] and codes(flags, "pm10", 0) == []
    assert codes(flags, "pm25", 1) == [PM25_ABOVE_PM10] == codes(flags, "pm10", 1)
    assert flags["pm25", T0 + HOUR][0].message == (
        "PM2.5 50.5 ug/m3 is above PM10 50.0 ug/m3 in the same hour (PM2.5 is part of PM10)"
    )


def test_pm25_without_pm10_in_the_hour_is_not_compared():
    hours = series("pm25", [80.0]) + series("pm10", [60.0], start=1)
    assert hour_flags(hours) == {}


def test_asking_for_pm25_or_pm10_fetches_both():
    assert parameters_judged_with(["pm25"]) == {"pm25", "pm10"}
    assert parameters_judged_with(["pm10", "o3"]) == {"pm10", "pm25", "o3"}
    assert parameters_judged_with(["so2"]) == {"so2"}


# --- out of range -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "inside", "outside"),
    [
        ("pm25", 1000.0, 1000.1),
        ("pm10", 2000.0, 2000.5),
        ("co", 57.0, 57.1),
        ("ph", 3.0, 2.99),
        ("ph", 12.0, 12.01),
        ("do", 20.0, 20.1),
        ("water_temp", -1.0, -1.1),
    ],
)
def test_range_edges_are_inside(parameter, inside, outside):
    assert hour_flags(series(parameter, [inside])) == {}
    flags = hour_flags(series(parameter, [outside]))
    assert codes(flags, parameter, 0) == [OUT_OF_RANGE]


def test_out_of_range_message_names_value_range_and_basis():
    [flag] = hour_flags(series("pm25", [1500.0]))["pm25", T0]
    assert flag.message == (
        "1500.0 ug/m3 is outside the plausible range 0.0–1000.0 ug/m3 "
        "(the HJ 653-2013 analyser measurement range)"
    )


def test_parameter_without_a_range_is_not_range_checked():
    assert hour_flags(series("hg", [900.0])) == {}


# --- zero runs ----------------------------------------------------------------------------


def test_five_zero_hours_pass_six_are_a_zero_run():
    assert hour_flags(series("pm10", [0.0] * 5 + [12.0])) == {}
    flags = hour_flags(series("pm10", [0.0] * 6 + [12.0]))
    assert flagged_hours(flags, "pm10", ZERO_RUN) == list(range(6))
    assert flags["pm10", T0][0].message == (
        "pm10 zero for 6 consecutive hours (threshold 6): a dead sensor or a zero written for "
        "missing data"
    )


def test_zeros_of_so2_and_o3_are_plausible():
    assert hour_flags(series("so2", [0.0] * 8) + series("o3", [0.0] * 8)) == {}


def test_a_long_zero_run_is_both_stuck_and_zero_in_code_order():
    flags = hour_flags(series("co", [0.0] * 12))
    assert codes(flags, "co", 11) == [STUCK, ZERO_RUN]


# --- spikes -------------------------------------------------------------------------------


def test_spike_above_four_times_the_median_and_the_floor():
    flags = hour_flags(series("pm25", [20.0] * 24 + [100.0]))
    assert flagged_hours(flags, "pm25", SPIKE) == [24]
    assert flags["pm25", T0 + 24 * HOUR][0].message == (
        "100.0 ug/m3 is 5.0 times the median 20.0 ug/m3 of the previous 24 hours "
        "(threshold 4.0 times and at least 75.0 ug/m3 above it)"
    )


@pytest.mark.parametrize(
    ("median", "value", "spike"),
    [
        (30.0, 120.0, False),  # exactly 4 times: not above
        (30.0, 120.5, True),
        (20.0, 94.9, False),  # 4.7 times, but 74.9 above the median: under the floor
        (20.0, 95.0, True),  # 75 above: the floor is reached
        (2.0, 60.0, False),  # a clean site's 30-fold jump is small in µg/m³
    ],
)
def test_spike_boundaries(median, value, spike):
    flags = hour_flags(series("pm25", [median] * 24 + [value]))
    assert (flagged_hours(flags, "pm25", SPIKE) == [24]) is spike


def test_spike_median_is_of_the_previous_window_only():
    # a high day long ago does not hide a spike over the last 24 hours
    flags = hour_flags(series("pm10", [900.0] * 5 + [40.0] * 24 + [400.0], start=-5))
    assert flagged_hours(flags, "pm10", SPIKE) == [24]


def test_spike_needs_twelve_recent_values():
    assert hour_flags(series("pm25", [20.0] * 11 + [300.0])) == {}
    assert flagged_hours(hour_flags(series("pm25", [20.0] * 12 + [300.0])), "pm25", SPIKE) == [12]


def test_spike_over_a_median_of_zero_says_so():
    thresholds = QualityThresholds(zero_run_hours=48)
    [flag] = hour_flags(series("no2", [0.0] * 24 + [90.0]), thresholds)["no2", T0 + 24 * HOUR]
    assert flag.message.startswith("90.0 ug/m3 is more than 4.0 times the median 0.0 ug/m3")


# --- thresholds ---------------------------------------------------------------------------


def test_look_around_covers_every_rule():
    assert DEFAULT_THRESHOLDS.lookback_hours == 24
    assert DEFAULT_THRESHOLDS.lookahead_hours == 11
    long_runs = QualityThresholds(stuck_hours=48, zero_run_hours=72)
    assert (long_runs.lookback_hours, long_runs.lookahead_hours) == (71, 71)


@pytest.mark.parametrize(
    "bad",
    [
        {"stuck_hours": 1},
        {"zero_run_hours": 1},
        {"spike_factor": 1.0},
        {"spike_min_hours": 25},
        {"spike_min_hours": 0},
    ],
)
def test_thresholds_refuse_values_that_cannot_judge(bad):
    with pytest.raises(ValueError):
        QualityThresholds(**bad)


def test_settings_defaults_are_the_standards_defaults():
    settings = Settings(_env_file=None)
    assert (
        settings.quality_stuck_hours,
        settings.quality_spike_factor,
        settings.quality_spike_window_hours,
        settings.quality_spike_min_hours,
        settings.quality_zero_run_hours,
    ) == (
        DEFAULT_THRESHOLDS.stuck_hours,
        DEFAULT_THRESHOLDS.spike_factor,
        DEFAULT_THRESHOLDS.spike_window_hours,
        DEFAULT_THRESHOLDS.spike_min_hours,
        DEFAULT_THRESHOLDS.zero_run_hours,
    )


def test_settings_refuse_a_spike_minimum_beyond_its_window():
    with pytest.raises(ValueError, match="SPIKE_MIN_HOURS"):
        Settings(quality_spike_window_hours=6, quality_spike_min_hours=12)


# --- properties ---------------------------------------------------------------------------

values = st.floats(min_value=0, max_value=3000, allow_nan=False)
hourly_series = st.lists(
    st.tuples(st.sampled_from(["pm25", "pm10", "no2", "so2"]), st.integers(0, 120), values),
    max_size=200,
).map(lambda rows: list({(p, h): (p, T0 + h * HOUR, v) for p, h, v in rows}.values()))


@given(hourly_series)
def test_flags_never_change_the_hours_they_judge(hours):
    before = list(hours)
    flags = hour_flags(hours)
    assert hours == before
    assert set(flags) <= {(p, bucket) for p, bucket, _ in hours}
    assert all(found for found in flags.values())


@given(st.lists(values, min_size=1, max_size=100, unique=True))
def test_a_series_of_distinct_values_is_never_stuck(distinct):
    flags = hour_flags(series("no2", distinct))
    assert flagged_hours(flags, "no2", STUCK) == []


runs = st.lists(
    st.tuples(st.sampled_from([0.0, 35.0, 36.0, 200.0, 1200.0]), st.integers(1, 20)),
    min_size=1,
    max_size=15,
).map(lambda pairs: [value for value, length in pairs for _ in range(length)])


@given(runs, st.integers(0, 300), st.integers(0, 300))
def test_range_plus_look_around_judges_like_the_whole_series(chain, a, b):
    # a series of runs (stuck, zero) and jumps (spikes, out of range, PM2.5 above PM10): the
    # flags of [start, end) judged from the range and its look-back and look-ahead equal
    # those judged from everything
    a, b = a % (len(chain) + 1), b % (len(chain) + 1)
    start, end = min(a, b), max(a, b)
    hours = series("pm25", chain) + series("pm10", [300.0] * len(chain))
    everything = hour_flags(hours)
    low = start - DEFAULT_THRESHOLDS.lookback_hours
    high = end + DEFAULT_THRESHOLDS.lookahead_hours
    window = [h for h in hours if low <= (h[1] - T0) / HOUR < high]
    judged = hour_flags(window)

    def in_range(flags):
        return {
            key: [flag.code for flag in found]
            for key, found in flags.items()
            if start <= (key[1] - T0) / HOUR < end
        }

    assert in_range(judged) == in_range(everything)
