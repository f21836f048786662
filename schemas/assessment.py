"""The six-pollutant assessment and the status of a year as they leave the service (REST API,
dashboard, CLI): pydantic models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.reports import CoverageOut

AreaLevel = Literal["station", "city", "province", "national"]


class StatisticOut(BaseModel):
    """One HJ 663 annual statistic of one pollutant over the period."""

    key: str = Field(
        description="e.g. pm25_mean, pm25_p95, co_p95, o3_8h_p90; pm25_mean_measured: as measured"
    )
    pollutant: str
    sand_dust: Literal["excluded", "measured"] | None = Field(
        default=None,
        description="PM10/PM2.5: 'excluded' — sand-dust hours left out, what targets, "
        "attainment and ranking use (national rule); 'measured' — every hour, reported only",
    )
    statistic: str = Field(description="what is computed, in words")
    value: float | None = Field(description="as computed (3 decimals)")
    published: float | None = Field(
        description="rounded half to even as published (GB/T 8170); what is judged"
    )
    unit: str
    limit: float | None = Field(description="Grade II limit it is judged against; null: reported")
    meets_grade_ii: bool | None = Field(description="null: not judged or not assessed")
    valid_days: int
    coverage: CoverageOut


class IndexOut(BaseModel):
    """The comprehensive air-quality index: Σ statistic ÷ Grade II limit over six pollutants."""

    value: float
    terms: dict[str, float] = Field(description="each pollutant's statistic ÷ limit")
    shares: dict[str, float] = Field(description="each pollutant's share of the index, %")
    largest_contributor: str


class AqiDaysOut(BaseModel):
    """Days by daily AQI (HJ 633 version in force each day)."""

    days: int = Field(description="days with a daily AQI")
    good_days: int = Field(description="AQI ≤ 100")
    heavy_days: int = Field(description="AQI > 200 (heavily polluted or worse)")
    not_computable: int = Field(description="days whose AQI the standard cannot give")
    good_day_share: float | None = Field(description="good days ÷ days with an AQI, %")
    heavy_day_share: float | None = Field(description="heavy days ÷ days with an AQI, %")


class PeriodFigures(BaseModel):
    """Everything assessed over one period (a year, a year so far, or its same period)."""

    start: date
    end: date
    days: int
    statistics: list[StatisticOut]
    attains: bool | None = Field(
        description="all six pollutants meet Grade II; null: not assessed (see not_assessed)"
    )
    not_assessed: list[str] = Field(default_factory=list, description="why attains is null")
    index: IndexOut | None = Field(description="null unless all six statistics are valid")
    aqi_days: AqiDaysOut | None


class RestOfYearOut(BaseModel):
    """What the rest of the year must average (PM2.5) for the year to meet a target."""

    target: str
    days_left: int
    must_average: float | None = Field(description="µg/m³; null when no day is left")
    comparator: Literal["below", "at most"]
    reachable: bool = Field(description="false: the target can no longer be met this year")


class AssessedArea(BaseModel):
    """A station, city, province or the nation over the period and its same period."""

    level: AreaLevel
    id: str
    name: str
    province: str | None = None
    city_code: str | None = None
    stations: int | None = Field(default=None, description="stations behind a city")
    cities: int | None = Field(default=None, description="cities behind a province/nation")
    period: PeriodFigures
    same_period: PeriodFigures | None = Field(
        description="same calendar days of the previous year, same rules (cities and above)"
    )
    change_percent: dict[str, float | None] = Field(
        default_factory=dict,
        description="same-period change in % of each published statistic, the index and "
        "the good-day share",
    )
    rank: int | None = Field(default=None, description="by index among its level, 1 = best")
    rank_in_province: int | None = None
    pm25_rest_of_year: RestOfYearOut | None = None


class AirAssessment(BaseModel):
    year: int
    as_of: datetime = Field(description="every reading committed before this is reflected")
    provisional: bool = Field(description="the year is in progress: figures of the days so far")
    period_start: date
    period_end: date
    same_period_start: date
    same_period_end: date
    standard: str = Field(description="GB 3095 version whose Grade II limits judge the year")
    rules: list[str] = Field(description="how the figures are computed, rounded and judged")
    national: AssessedArea
    cities_assessed: int = Field(description="cities with all six statistics valid")
    cities_attaining: int
    attaining_cities: list[str] = Field(description="city codes attaining all six")
    provinces: list[AssessedArea]
    cities: list[AssessedArea] = Field(description="ranked by index, unranked last")
    stations: list[AssessedArea]


class RankedCity(BaseModel):
    rank: int
    city_code: str
    name: str
    province: str | None
    index: float
    largest_contributor: str
    pm25: float | None


class WaterStatus(BaseModel):
    """Surface water of the period so far: Class I–III share against the same period."""

    months: str = Field(description="months assessed, e.g. January–November")
    sections_assessed: int
    excellent_share: float | None = Field(description="Class I–III share, %")
    same_period_sections_assessed: int
    same_period_excellent_share: float | None
    change_points: float | None = Field(description="percentage points against same period")
    target: float
    meets_target: bool | None


class AirStatus(BaseModel):
    pm25: float | None = Field(description="national PM2.5 mean, µg/m³ (one decimal)")
    pm25_same_period: float | None
    pm25_change_percent: float | None
    pm25_target: float
    pm25_below_target: bool | None
    pm25_rest_of_year: RestOfYearOut | None
    good_day_share: float | None
    good_day_share_same_period: float | None
    heavy_days: int | None = Field(description="heavily polluted city-days")
    heavy_days_same_period: int | None
    cities_assessed: int
    cities_attaining: int
    attaining: list[RankedCity] = Field(description="cities attaining all six, by rank")
    best: list[RankedCity]
    worst: list[RankedCity]


class Status(BaseModel):
    """Where the country stands in a year (so far): the compact view of the front page."""

    year: int
    as_of: datetime
    provisional: bool
    period_start: date
    period_end: date
    same_period_start: date
    same_period_end: date
    air: AirStatus
    water: WaterStatus
