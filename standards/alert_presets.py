"""Ready-made alert rules taken from the standards, selectable by name, and the threshold
rules that take a limit from the standard in force on the day instead of a number."""

from __future__ import annotations

from dataclasses import dataclass

# GB 3095 Grade II 24-hour limit of the subscription's parameter, in the set in force that day
GB3095_24H_GRADE_II = "gb3095_24h_grade_ii"


@dataclass(frozen=True)
class Preset:
    """A rule ready to subscribe to: what is watched (target, parameter) and the condition."""

    name: str
    description: str
    target: str
    parameter: str | None
    comparator: str
    threshold: float | None
    threshold_rule: str | None
    clear_threshold: float | None = None
    for_minutes: int = 0


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "pm25_24h_grade_ii",
            "Daily PM2.5 mean over the GB 3095 Grade II 24-hour limit in force that day "
            "(75 µg/m³ under GB 3095-2012, 60 under 2026 transitional, 50 final)",
            "daily_mean",
            "pm25",
            ">",
            None,
            GB3095_24H_GRADE_II,
        ),
        Preset(
            "pm10_24h_grade_ii",
            "Daily PM10 mean over the GB 3095 Grade II 24-hour limit in force that day",
            "daily_mean",
            "pm10",
            ">",
            None,
            GB3095_24H_GRADE_II,
        ),
        Preset(
            "aqi_heavily_polluted",
            "Daily AQI (HJ 633, version in force) of 201 or more: heavily polluted or worse",
            "daily_aqi",
            None,
            ">=",
            201,
            None,
        ),
        Preset(
            "water_worse_than_iii",
            "Water section worse than Class III (GB 3838-2002): Class IV, V or worse than V",
            "water_class",
            "water_class",
            ">",
            3,
            None,
        ),
        Preset(
            "pm25_hourly_75",
            "Hourly PM2.5 mean over 75 µg/m³",
            "hourly_mean",
            "pm25",
            ">",
            75,
            None,
        ),
        Preset(
            "station_silent_1h",
            "No reading from the station for an hour",
            "silence",
            None,
            ">",
            None,
            None,
            for_minutes=60,
        ),
    )
}

# the threshold rules the evaluator knows, with the target each one is defined for
THRESHOLD_RULE_TARGETS: dict[str, str] = {
    p.threshold_rule: p.target for p in PRESETS.values() if p.threshold_rule is not None
}
