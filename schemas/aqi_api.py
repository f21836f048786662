"""AQI (HJ 633) responses of the REST API: pydantic models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

AqiPeriod = Literal["hourly", "daily"]
Statistic = Literal[
    "1h_mean",
    "24h_moving_mean",
    "8h_moving_mean",
    "daily_mean",
    "daily_max_8h_mean",
    "daily_max_1h_mean",
]


class Colour(BaseModel):
    """The colour of an AQI category (HJ 633 Appendix A)."""

    rgb: tuple[int, int, int] = Field(examples=[[255, 126, 0]])
    hex: str = Field(examples=["#ff7e00"])


class IaqiOut(BaseModel):
    """One individual AQI (IAQI) of the result."""

    pollutant: str = Field(
        description="so2, no2, pm10, co, o3_1h, o3_8h or pm25", examples=["pm25"]
    )
    iaqi: int | None = Field(description="rounded up; null without a concentration")
    display: str | None = Field(
        description='the IAQI as published: "500+" when beyond the index', examples=["500+"]
    )
    beyond_index: bool = Field(
        description="the concentration is above the top breakpoint, where HJ 633 gives no "
        "index; iaqi is then the top level"
    )
    concentration: float | None = Field(
        description="the concentration the IAQI was computed from (after the version's "
        "rounding and after a substitution rule)"
    )
    unit: str = Field(examples=["ug/m3"])
    breakpoints: str | None = Field(
        description="the HJ 633 breakpoint table used, e.g. pm25_24h", examples=["pm25_24h"]
    )
    rule: str | None = Field(default=None, description="a special rule of the version applied")


class ConcentrationOut(BaseModel):
    """One concentration the version in force reads, and what stands behind it."""

    key: str = Field(description="the AQI input: pm25, pm25_24h, o3_8h, …", examples=["pm25_24h"])
    parameter: str = Field(examples=["pm25"])
    statistic: Statistic
    value: float | None = Field(description="null: no valid value")
    unit: str = Field(examples=["ug/m3"])
    stations: int = Field(description="stations whose valid values were averaged (HJ 663)")
    valid_hours: int | None = Field(
        description="valid hourly values behind the value, summed over the stations"
    )
    valid_windows: int | None = Field(
        default=None,
        description="daily maximum 8-hour mean: 8-hour windows of the day (of 17) with at "
        "least 6 valid hours, summed over the stations",
    )


class Aqi(BaseModel):
    """The AQI of one hour or one day."""

    start: datetime = Field(description="start of the hour or the local day, with offset")
    end: datetime = Field(description="end (exclusive) of the hour or the local day")
    day: date | None = Field(default=None, description="the local calendar day (daily AQI)")
    version: str = Field(
        description="the HJ 633 version applied (in force at the start, Beijing time)",
        examples=["HJ 633-2026"],
    )
    aqi: int
    display: str = Field(description='the AQI as published: "500+" beyond the index')
    beyond_index: bool
    level: int = Field(description="category 1..6 (HJ 633 Table 2)")
    category: str = Field(examples=["Lightly polluted"])
    category_zh: str = Field(examples=["轻度污染"])
    colour: Colour
    primary_pollutants: list[str] | None = Field(
        description="pollutants with the largest IAQI (all of them on a tie); null when the "
        "AQI is 50 or less (HJ 633 §4.3)"
    )
    iaqi: list[IaqiOut]
    missing: list[str] = Field(
        description="pollutants the version requires that had no valid concentration; the "
        "AQI is the maximum of the others"
    )
    concentrations: list[ConcentrationOut]


class AqiNotComputable(BaseModel):
    """An hour or day with concentrations whose AQI cannot be computed: a rule of the version
    replaces an IAQI by another one whose concentration is missing (HJ 633-2012: SO2 1-hour
    above 800 without the 24-hour mean, O3 8-hour above 800 without the 1-hour value), so the
    maximum of the other IAQIs could understate the AQI."""

    start: datetime = Field(description="start of the hour or the local day, with offset")
    end: datetime = Field(description="end (exclusive) of the hour or the local day")
    day: date | None = Field(default=None, description="the local calendar day (daily AQI)")
    version: str = Field(examples=["HJ 633-2012"])
    reason: str = Field(
        description="the rule that could not be applied",
        examples=["HJ 633-2012: o3_8h above 800 → IAQI of o3_1h, and 'o3_1h' is missing"],
    )
    iaqi: list[IaqiOut]
    missing: list[str]
    concentrations: list[ConcentrationOut]


class AqiSubject(BaseModel):
    """Whose AQI: a station, or a city (the mean of its stations, HJ 663)."""

    level: Literal["station", "city"]
    id: str = Field(description="station id or city code", examples=["110000-A001"])
    name: str
    timezone: str = Field(description="the timezone of its days and of the times reported")
    stations: list[str] = Field(description="the air stations whose data may enter")


class AqiLatest(BaseModel):
    subject: AqiSubject
    period: AqiPeriod
    as_of: datetime = Field(
        description="every reading committed before this instant is reflected (the "
        "aggregation stage's progress)"
    )
    latest: Aqi = Field(description="the latest hour (or day) with valid data")
    not_computable: AqiNotComputable | None = Field(
        default=None,
        description="a later hour (or day) with data whose AQI cannot be computed; latest "
        "is then the last one before it with an AQI",
    )


class AqiHistory(BaseModel):
    subject: AqiSubject
    period: AqiPeriod
    start: datetime = Field(description="start of the first hour or day asked for")
    end: datetime = Field(description="end (exclusive) of the last hour or day asked for")
    as_of: datetime = Field(
        description="every reading committed before this instant is reflected (the "
        "aggregation stage's progress)"
    )
    items: list[Aqi] = Field(description="hours or days with valid data, oldest first")
    not_computable: list[AqiNotComputable] = Field(
        default_factory=list,
        description="hours or days with data whose AQI cannot be computed, oldest first",
    )
