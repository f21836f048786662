"""Automatic quality flags of a station's hourly values: what a monitoring centre's data
reviewer looks at first — a value that does not move, a sudden jump, PM2.5 above PM10, a
value beyond what the analyser measures, a run of zeros.

A flag is a code and a sentence naming the numbers. Flags are properties of a station's
hours (the hourly means of readings_hourly), computed when read and never stored: they flag,
never drop, and change no figure until a person acts on them. A reading carries the flags of
its UTC hour.

Look-back and look-ahead: ``stuck`` and ``zero_run`` flag every hour of a long enough run,
``spike`` compares an hour with the hours before it. To judge the hours of [start, end)
exactly, pass ``hour_flags`` the hours of [start - lookback_hours, end + lookahead_hours) and
keep the flags of the range; given that window, a run reaching its edge is said to last "at
least" the hours seen. Runs are of consecutive clock hours: a missing hour ends one.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from standards.parameters import CATALOGUE

# --- codes and their sentences ------------------------------------------------------------

STUCK = "stuck"
SPIKE = "spike"
PM25_ABOVE_PM10 = "pm25_above_pm10"
OUT_OF_RANGE = "out_of_range"
ZERO_RUN = "zero_run"
# The order flags of one hour are listed in.
FLAG_CODES = (OUT_OF_RANGE, STUCK, ZERO_RUN, SPIKE, PM25_ABOVE_PM10)

MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        OUT_OF_RANGE: "{value} {unit} is outside the plausible range {low}–{high} {unit} ({basis})",
        STUCK: "the same value {value} {unit} for {hours} consecutive hours "
        "(threshold {threshold})",
        ZERO_RUN: "{parameter} zero for {hours} consecutive hours (threshold {threshold}): a "
        "dead sensor or a zero written for missing data",
        SPIKE: "{value} {unit} is {ratio} times the median {median} {unit} of the previous "
        "{window} hours (threshold {factor} times and at least {floor} {unit} above it)",
        PM25_ABOVE_PM10: "PM2.5 {pm25} ug/m3 is above PM10 {pm10} ug/m3 in the same hour "
        "(PM2.5 is part of PM10)",
    }
)

# --- data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityRange:
    """Hourly values a parameter plausibly takes, in its stored unit (bounds inclusive).

    Narrower than standards.parameters.PLAUSIBLE, which dead-letters what no instrument can
    report: a value outside this range is stored, averaged and only flagged for a person to
    confirm (a real sand-dust storm, a spill) or invalidate (a fault)."""

    low: float
    high: float
    basis: str


# Air in µg/m³ (CO mg/m³), water in mg/L. Analyser ranges converted at 25 °C, 1 atm
# (GB 3095-2012 amendment 1, 2018).
QUALITY_RANGES: Mapping[str, QualityRange] = MappingProxyType(
    {
        # HJ 653-2013 certifies PM analysers over 0-1,000 µg/m³
        "pm25": QualityRange(0, 1_000, "the HJ 653-2013 analyser measurement range"),
        # sand-dust storms bring hourly PM10 beyond 1,000 (near 10,000 in March 2021)
        "pm10": QualityRange(0, 2_000, "twice the HJ 653-2013 range, for sand dust"),
        # HJ 654-2013 gas analysers: 0-500 nmol/mol (SO2, NO2, O3), CO 0-50 µmol/mol
        "so2": QualityRange(0, 1_310, "the HJ 654-2013 analyser range 500 nmol/mol"),
        "no2": QualityRange(0, 940, "the HJ 654-2013 analyser range 500 nmol/mol"),
        "o3": QualityRange(0, 980, "the HJ 654-2013 analyser range 500 nmol/mol"),
        "co": QualityRange(0, 57, "the HJ 654-2013 analyser range 50 µmol/mol"),
        # natural waters lie within pH 4-10; beyond 3-12 only mine drainage or a caustic spill
        "ph": QualityRange(3, 12, "natural and polluted surface water"),
        # liquid surface water; above 40 °C only a thermal discharge
        "water_temp": QualityRange(-1, 40, "liquid surface water without thermal discharge"),
        # saturation is 14.6 mg/L at 0 °C; algal blooms supersaturate to about 20
        "do": QualityRange(0, 20, "saturation at 0 °C with algal supersaturation"),
        # about seven times the GB 3838-2002 Class V limits (15, 40, 10, 2.0, 0.4, 2.0)
        "codmn": QualityRange(0, 100, "about seven times the GB 3838-2002 Class V limit"),
        "cod": QualityRange(0, 300, "about seven times the GB 3838-2002 Class V limit"),
        "bod5": QualityRange(0, 70, "about seven times the GB 3838-2002 Class V limit"),
        "nh3_n": QualityRange(0, 15, "about seven times the GB 3838-2002 Class V limit"),
        "tp": QualityRange(0, 3, "about seven times the GB 3838-2002 Class V limit"),
        "tn": QualityRange(0, 15, "about seven times the GB 3838-2002 Class V limit"),
    }
)

# A jump is a spike only when it is also at least this far above the median, in the stored
# unit: one GB 3095-2012 Grade II 24-hour limit (O3: the 8-hour limit) for air, one GB
# 3838-2002 Class III limit for water, so that a clean site's 2 → 9 µg/m³ is not a spike.
SPIKE_FLOORS: Mapping[str, float] = MappingProxyType(
    {
        "pm25": 75,
        "pm10": 150,
        "so2": 150,
        "no2": 80,
        "co": 4,
        "o3": 160,
        "codmn": 6,
        "cod": 20,
        "bod5": 4,
        "nh3_n": 1.0,
        "tp": 0.2,
        "tn": 1.0,
    }
)

# Ambient PM, NO2 and CO never fall to a true zero for hours (background NO2 stays above
# 1 µg/m³, CO above 0.1 mg/m³); SO2 and O3 may read zero (clean sites below detection,
# night-time O3 titrated by NO), and so may water items below their detection limits.
ZERO_IMPLAUSIBLE: frozenset[str] = frozenset({"pm25", "pm10", "no2", "co"})

# A section's water class stays the same for weeks: no stuck flag for it.
STUCK_EXEMPT: frozenset[str] = frozenset({"water_class"})

# Hourly means are compared to this many decimals of their unit: equal values within float
# summation noise. The stored values carry the station's own resolution (integer µg/m³ from
# a beta gauge), so rounding to the published precision would only add clean-air repeats.
COMPARISON_DECIMALS = 6

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class QualityThresholds:
    """When an hour is flagged. Defaults are what a monitoring centre's review expects;
    core.settings overrides the counts and the factor (AIRWATER_QUALITY_*)."""

    # half a day of one repeated hourly mean: a frozen analyser or a logger repeating its
    # last value; stable air at low resolution repeats for a few hours, not twelve
    stuck_hours: int = 12
    # an hour above 4 times the median of the previous 24 hours' values ...
    spike_factor: float = 4.0
    spike_window_hours: int = 24
    # ... judged only when at least this many of those hours have a value
    spike_min_hours: int = 12
    # six hours of zeros: a dead sensor or a zero written for "no data"
    zero_run_hours: int = 6
    # the tables, shared read-only (hash=False: a mapping has no hash)
    ranges: Mapping[str, QualityRange] = field(default_factory=lambda: QUALITY_RANGES, hash=False)
    spike_floors: Mapping[str, float] = field(default_factory=lambda: SPIKE_FLOORS, hash=False)
    zero_implausible: frozenset[str] = ZERO_IMPLAUSIBLE
    stuck_exempt: frozenset[str] = STUCK_EXEMPT

    def __post_init__(self) -> None:
        if self.stuck_hours < 2 or self.zero_run_hours < 2:
            raise ValueError("a stuck or zero run needs at least 2 hours")
        if not self.spike_factor > 1:
            raise ValueError("the spike factor must be above 1")
        if not 1 <= self.spike_min_hours <= self.spike_window_hours:
            raise ValueError("spike_min_hours must lie between 1 and spike_window_hours")

    @property
    def lookback_hours(self) -> int:
        """Hours before a range the flags of its first hour depend on."""
        return max(self.spike_window_hours, self.stuck_hours - 1, self.zero_run_hours - 1)

    @property
    def lookahead_hours(self) -> int:
        """Hours after a range the flags of its last hour depend on (a run going on)."""
        return max(self.stuck_hours, self.zero_run_hours) - 1


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class QualityFlag:
    """One flag of an hour: a code of FLAG_CODES and a sentence naming the numbers."""

    code: str
    message: str


# (parameter, UTC hour start, hourly mean in the stored unit)
Hour = tuple[str, datetime, float]
FlagsByHour = dict[tuple[str, datetime], list[QualityFlag]]
# [start, end) of the hours fetched
Window = tuple[datetime, datetime]

# PM2.5 is judged against PM10 of the same hour: asking for either needs both.
PAIRED: Mapping[str, str] = MappingProxyType({"pm25": "pm10", "pm10": "pm25"})


def parameters_judged_with(parameters: Iterable[str]) -> set[str]:
    """``parameters`` and the ones their flags are judged against (PM2.5 with PM10)."""
    wanted = set(parameters)
    return wanted | {PAIRED[p] for p in wanted if p in PAIRED}


# --- rules -------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A value as a message names it: four significant digits."""
    return str(float(f"{value:.4g}"))


def _unit(parameter: str) -> str:
    known = CATALOGUE.get(parameter)
    return known.unit if known else ""


def _same(value: float) -> float:
    return round(value, COMPARISON_DECIMALS)


def _constant_runs(series: Sequence[tuple[datetime, float]]) -> Iterator[list[datetime]]:
    """The runs of consecutive clock hours with the same value (a single hour is a run)."""
    run: list[datetime] = []
    previous: float | None = None
    for bucket, value in series:
        if run and bucket - run[-1] == HOUR and _same(value) == previous:
            run.append(bucket)
            continue
        if run:
            yield run
        run, previous = [bucket], _same(value)
    if run:
        yield run


def _out_of_range(
    parameter: str, series: Sequence[tuple[datetime, float]], limits: QualityRange
) -> Iterator[tuple[datetime, QualityFlag]]:
    unit = _unit(parameter)
    for bucket, value in series:
        if not limits.low <= value <= limits.high:
            message = MESSAGES[OUT_OF_RANGE].format(
                value=_number(value),
                unit=unit,
                low=_number(limits.low),
                high=_number(limits.high),
                basis=limits.basis,
            )
            yield bucket, QualityFlag(OUT_OF_RANGE, message)


def _run_length(run: Sequence[datetime], window: Window | None) -> str:
    """The hours of a run; "at least" those when it may go on beyond the hours fetched."""
    clipped = window is not None and (run[0] - HOUR < window[0] or run[-1] + HOUR >= window[1])
    return f"at least {len(run)}" if clipped else str(len(run))


def _stuck(
    parameter: str,
    series: Sequence[tuple[datetime, float]],
    threshold: int,
    window: Window | None,
) -> Iterator[tuple[datetime, QualityFlag]]:
    values = dict(series)
    for run in _constant_runs(series):
        if len(run) >= threshold:
            message = MESSAGES[STUCK].format(
                value=_number(values[run[0]]),
                unit=_unit(parameter),
                hours=_run_length(run, window),
                threshold=threshold,
            )
            yield from ((bucket, QualityFlag(STUCK, message)) for bucket in run)


def _zero_runs(
    parameter: str,
    series: Sequence[tuple[datetime, float]],
    threshold: int,
    window: Window | None,
) -> Iterator[tuple[datetime, QualityFlag]]:
    values = dict(series)
    for run in _constant_runs(series):
        if len(run) >= threshold and _same(values[run[0]]) == 0:
            message = MESSAGES[ZERO_RUN].format(
                hours=_run_length(run, window), threshold=threshold, parameter=parameter
            )
            yield from ((bucket, QualityFlag(ZERO_RUN, message)) for bucket in run)


def _spikes(
    parameter: str,
    series: Sequence[tuple[datetime, float]],
    floor: float,
    thresholds: QualityThresholds,
) -> Iterator[tuple[datetime, QualityFlag]]:
    """An hour above ``spike_factor`` times the median of the values of the previous
    ``spike_window_hours`` clock hours and at least ``floor`` above it."""
    window = timedelta(hours=thresholds.spike_window_hours)
    first = 0
    for i, (bucket, value) in enumerate(series):
        while series[first][0] < bucket - window:
            first += 1
        recent = [v for _, v in series[first:i]]
        if len(recent) < thresholds.spike_min_hours:
            continue
        median = statistics.median(recent)
        factor = _number(thresholds.spike_factor)
        if value > thresholds.spike_factor * median and value - median >= floor:
            message = MESSAGES[SPIKE].format(
                value=_number(value),
                unit=_unit(parameter),
                ratio=_number(value / median) if median > 0 else f"more than {factor}",
                median=_number(median),
                window=thresholds.spike_window_hours,
                factor=factor,
                floor=_number(floor),
            )
            yield bucket, QualityFlag(SPIKE, message)


def _pm25_above_pm10(
    pm25: Sequence[tuple[datetime, float]], pm10: Sequence[tuple[datetime, float]]
) -> Iterator[tuple[datetime, QualityFlag]]:
    coarse = dict(pm10)
    for bucket, fine in pm25:
        if bucket in coarse and _same(fine) > _same(coarse[bucket]):
            message = MESSAGES[PM25_ABOVE_PM10].format(
                pm25=_number(fine), pm10=_number(coarse[bucket])
            )
            yield bucket, QualityFlag(PM25_ABOVE_PM10, message)


def hour_flags(
    hours: Iterable[Hour],
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    window: Window | None = None,
) -> FlagsByHour:
    """The flags of each flagged hour of ``hours`` ((parameter, UTC hour start, mean) of one
    station, any order), keyed by (parameter, hour start), in FLAG_CODES order. Hours
    without a flag are absent; a non-finite mean is never judged. ``window``, the [start,
    end) the hours were fetched for, lets a run reaching its edge say "at least" N hours."""
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for parameter, bucket, mean in hours:
        if mean is not None and math.isfinite(mean):
            series[parameter].append((bucket, mean))
    found: FlagsByHour = defaultdict(list)
    for parameter, values in series.items():
        values.sort()
        limits = thresholds.ranges.get(parameter)
        flagged = [] if limits is None else list(_out_of_range(parameter, values, limits))
        if parameter not in thresholds.stuck_exempt:
            flagged += _stuck(parameter, values, thresholds.stuck_hours, window)
        if parameter in thresholds.zero_implausible:
            flagged += _zero_runs(parameter, values, thresholds.zero_run_hours, window)
        floor = thresholds.spike_floors.get(parameter)
        if floor is not None:
            flagged += _spikes(parameter, values, floor, thresholds)
        for bucket, flag in flagged:
            found[parameter, bucket].append(flag)
    for bucket, flag in _pm25_above_pm10(series.get("pm25", []), series.get("pm10", [])):
        for parameter in ("pm25", "pm10"):
            found[parameter, bucket].append(flag)
    order = {code: i for i, code in enumerate(FLAG_CODES)}
    return {key: sorted(flags, key=lambda f: order[f.code]) for key, flags in found.items()}
