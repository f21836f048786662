"""The O3 daily maximum 8-hour mean the aggregation stage keeps as parameter 'o3_8h'
(STANDARDS.md §3a, 0009_assessment.sql): its windows, its validity, and the yearly 90th
percentile of its days, against independent computations (pandas, numpy's linear percentile
= HJ 663)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest

from storage.writer import prepare_connection, write_batch
from tests.support import settle

BEIJING = ZoneInfo("Asia/Shanghai")
STATION = "110000-A001"
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
DAY = date(2026, 6, 10)  # GB 3095-2026 transitional: Grade II 8-hour limit 160

Hours = list[float | None]


def write_day(database_url: str, station_id: str, day: date, hours: Hours) -> None:
    """One O3 reading at each local hour of ``day`` that has a value (None: no reading)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    rows = [
        (station_id, "o3", midnight + timedelta(hours=h), value, RECEIVED)
        for h, value in enumerate(hours)
        if value is not None
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, rows)


def kept_day(database_url: str, day: date = DAY, station_id: str = STATION) -> tuple | None:
    """(mean, min, max, valid_hours, hours, valid) of the station's 'o3_8h' day."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT mean, min, max, valid_hours, hours, valid FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'o3_8h' AND day = %s",
            (station_id, day),
        ).fetchone()


def missing_first(hours: int, value: float) -> Hours:
    """A day of ``value`` without data in its first ``hours`` hours: 3 or more missing hours
    of 8 spoil a window, so windows 00–08 … (hours − 3) are invalid."""
    return [None] * hours + [value] * (24 - hours)


def test_a_day_with_14_valid_windows_is_valid_and_with_13_is_not(database_url):
    write_day(database_url, STATION, DAY, missing_first(5, 100.0))  # windows 0–2 invalid
    write_day(database_url, STATION, DAY + timedelta(days=1), missing_first(6, 100.0))
    settle(database_url)
    assert kept_day(database_url) == (100.0, 100.0, 100.0, 14, 17, True)
    # 13 valid windows and a maximum within the limit: kept, not valid
    assert kept_day(database_url, DAY + timedelta(days=1)) == (100.0, 100.0, 100.0, 13, 17, False)


def test_13_valid_windows_count_when_the_maximum_exceeds_the_8_hour_limit(database_url):
    write_day(database_url, STATION, DAY, missing_first(6, 161.0))
    write_day(database_url, STATION, DAY + timedelta(days=1), missing_first(6, 160.0))
    settle(database_url)
    assert kept_day(database_url)[3:] == (13, 17, True)
    # at the limit is not above it (GB 3095: "≤ limit" complies)
    assert kept_day(database_url, DAY + timedelta(days=1))[3:] == (13, 17, False)


def test_a_window_needs_6_valid_hours_and_its_maximum_is_of_valid_windows(database_url):
    # data at 00–05 only: window 00–08 has 6 hours, 01–09 has 5; windows 00 … 05 hold data
    write_day(database_url, STATION, DAY, [300.0] * 6 + [None] * 18)
    # data at 00–04 only: no window has 6 hours
    write_day(database_url, STATION, DAY + timedelta(days=1), [300.0] * 5 + [None] * 19)
    # 50 all day but 400 at 13:00 and nothing at 09, 12, 16: window 09–17 has 5 valid hours
    # ((4·50 + 400)/5 = 120) and does not count; the largest valid one is (5·50 + 400)/6
    third: Hours = [50.0] * 24
    third[13] = 400.0
    for hour in (9, 12, 16):
        third[hour] = None
    write_day(database_url, STATION, DAY + timedelta(days=2), third)
    settle(database_url)
    # one valid window of 300, above the limit: a valid day
    assert kept_day(database_url) == (300.0, 300.0, 300.0, 1, 6, True)
    assert kept_day(database_url, DAY + timedelta(days=1)) == (None, None, None, 0, 5, False)
    mean, low, high, valid_windows, windows, valid = kept_day(database_url, DAY + timedelta(days=2))
    assert mean == high == pytest.approx(650 / 6)
    assert low == pytest.approx(50.0)  # 13–21 … 16–24 without the 400
    assert (valid_windows, windows, valid) == (16, 17, True)


def test_windows_lie_inside_the_local_day(database_url):
    # 50 until 19:00, 300 from 20:00 to 03:00 the next day: the best window inside the day
    # is 16–24, (4·50 + 4·300)/8 = 175; 20–04 (300) crosses midnight and is no window of it
    write_day(database_url, STATION, DAY, [50.0] * 20 + [300.0] * 4)
    write_day(database_url, STATION, DAY + timedelta(days=1), [300.0] * 4 + [50.0] * 20)
    settle(database_url)
    assert kept_day(database_url)[0] == 175.0
    assert kept_day(database_url, DAY + timedelta(days=1))[0] == 175.0  # 00–08


def test_the_o3_8h_twin_follows_its_o3_day(database_url):
    """A late reading of one hour recomputes the day's twin (the queue names 'o3' only)."""
    write_day(database_url, STATION, DAY, missing_first(6, 100.0))
    settle(database_url)
    assert kept_day(database_url)[3:] == (13, 17, False)
    write_day(database_url, STATION, DAY, [None] * 5 + [100.0] + [None] * 18)  # 05:00, late
    settle(database_url)
    assert kept_day(database_url)[3:] == (14, 17, True)


def _daily_max_8h(hours: pd.Series) -> float | None:
    """HJ 663 by pandas: the 17 8-hour means ending 07:00 … 23:00 (hour starts), each with
    >= 6 values; None unless >= 14 are valid or the largest is above 160."""
    windows = hours.rolling(8, min_periods=6).mean().iloc[7:]
    valid = windows.dropna()
    if valid.empty or (len(valid) < 14 and valid.max() <= 160):
        return None
    return float(valid.max())


def test_yearly_90th_percentile_of_o3_8h_equals_an_independent_computation(database_url):
    stations = ["110000-A001", "110000-A002"]
    first = date(2025, 5, 1)
    rng = np.random.default_rng(15)
    kept: dict[str, dict[date, float]] = {station: {} for station in stations}
    for station in stations:
        for offset in range(40):
            day = first + timedelta(days=offset)
            base = rng.uniform(40, 200)
            hours: Hours = [
                float(round(base + 60 * np.sin((h - 6) / 24 * 2 * np.pi), 1)) for h in range(24)
            ]
            for h in rng.choice(24, size=int(rng.integers(0, 9)), replace=False):
                hours[int(h)] = None  # some days lose enough hours to lose windows
            write_day(database_url, station, day, hours)
            value = _daily_max_8h(pd.Series(hours, dtype="float64"))
            if value is not None:
                kept[station][day] = value
    settle(database_url)
    with psycopg.connect(database_url) as conn:
        station_rows = dict(
            (row[0], row[1:])
            for row in conn.execute(
                "SELECT station_id, percentile, valid_days, days_over_limit FROM station_yearly"
                " WHERE parameter = 'o3_8h' AND year = 2025"
            )
        )
        city = conn.execute(
            "SELECT percentile, valid_days, days_over_limit FROM city_yearly"
            " WHERE parameter = 'o3_8h' AND year = 2025 AND city_code = '110000'"
        ).fetchone()
        o3_means = conn.execute(
            "SELECT percentile FROM station_yearly WHERE parameter = 'o3' AND year = 2025"
        ).fetchall()
    for station in stations:
        values = list(kept[station].values())
        assert 20 < len(values) < 40  # the rule dropped some days, kept most
        percentile, valid_days, over = station_rows[station]
        assert percentile == pytest.approx(float(np.percentile(values, 90)), abs=1e-9)
        assert valid_days == len(values)
        assert over == sum(1 for v in values if v > 160)
    city_days = pd.DataFrame(kept).mean(axis=1, skipna=True)  # HJ 663: mean of the stations
    assert city is not None
    assert city[0] == pytest.approx(float(np.percentile(city_days, 90)), abs=1e-9)
    assert city[1:] == (len(city_days), int((city_days > 160).sum()))
    # the daily means of the O3 hours get no percentile: O3's is of the daily maximum 8-hour
    assert o3_means and all(row[0] is None for row in o3_means)
