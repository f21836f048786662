"""Compliance reports as they leave the service (CLI, REST API): pydantic models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class CoverageOut(BaseModel):
    """How much data stands behind an aggregate (HJ 663 validity)."""

    expected: int = Field(description="values the period should have (e.g. days in the year)")
    observed: int = Field(description="valid values it has")
    percent_complete: float
    valid: bool
    reasons: list[str] = Field(default_factory=list, description="why it is not valid")
    removed_by_review_hours: int = Field(
        default=0, description="hours with data an operator's review took out of the figure"
    )


class AirAnnual(BaseModel):
    """One station's, city's or the nation's annual statistics for one pollutant."""

    level: Literal["station", "city", "national"]
    id: str
    name: str
    city_code: str | None = None
    province: str | None = None
    parameter: str
    unit: str
    annual_mean: float | None
    valid_days: int
    percentile: float | None = Field(description="HJ 663 percentile of the daily values")
    percentile_rank: float = Field(description="e.g. 95 for PM2.5")
    days_over_24h_limit: int | None
    annual_limit: float | None = Field(description="Grade II annual limit in force")
    meets_grade_ii: bool | None = Field(description="annual mean within the Grade II limit")
    gap_to_2027_target: float | None = Field(
        description="annual mean minus 28 µg/m³ (national PM2.5 target for 2027); > 0 = above"
    )
    gap_to_2035_target: float | None = Field(description="annual mean minus 25 µg/m³ (2035)")
    annual_mean_measured: float | None = Field(
        default=None,
        description="PM10/PM2.5: the annual mean as measured, sand-dust hours included "
        "(reported only; annual_mean excludes them and is what is judged)",
    )
    stations: int | None = Field(default=None, description="stations behind a city value")
    cities: int | None = Field(default=None, description="cities behind the national value")
    coverage: CoverageOut


class AirReport(BaseModel):
    year: int
    as_of: datetime = Field(
        description="every reading committed before this instant is reflected (the "
        "aggregation stage's progress)"
    )
    period_start: date
    period_end: date
    parameter: str
    unit: str
    standard: str = Field(description="GB 3095 version whose limits were applied")
    daily_limit_standards: list[str] = Field(
        description="versions whose 24-hour limits applied to the days of the year"
    )
    annual_limit: float | None
    sand_dust: Literal["excluded"] | None = Field(
        default=None,
        description="'excluded': PM10/PM2.5 figures leave out the hours of recorded sand-dust "
        "events (national assessment rule), as every judgement here does; annual_mean_measured "
        "gives them as measured",
    )
    national: AirAnnual
    cities_assessed: int
    cities_meeting_grade_ii: int
    share_cities_meeting_grade_ii: float | None
    meets_2027_target: bool | None = Field(description="national PM2.5 below 28 µg/m³")
    meets_2035_target: bool | None = Field(description="national PM2.5 below 25 µg/m³")
    cities: list[AirAnnual]
    stations: list[AirAnnual]


class WaterSection(BaseModel):
    station_id: str
    name: str
    basin: str | None
    waterbody: str | None
    water_class: int | None = Field(description="1..5 = Class I..V, 6 = worse than Class V")
    class_name: str | None
    deciding_parameters: list[str]
    method: Literal["parameters", "reported_class", "none"]
    months_with_data: int
    annual_means: dict[str, float]


class BasinGrade(BaseModel):
    basin: str
    sections: int
    excellent_share: float | None
    worse_than_v_share: float | None
    grade: str | None = Field(description="excellent … heavily polluted (≥ 5 sections)")
    water_class: int | None = Field(
        description="fewer than 5 sections: single-factor class of the averaged items"
    )
    method: Literal["share", "averaged_items"]


class WaterReport(BaseModel):
    year: int
    as_of: datetime = Field(
        description="every reading committed before this instant is reflected (the "
        "aggregation stage's progress)"
    )
    standard: str
    sections_assessed: int
    distribution: dict[str, int] = Field(description="sections per class I..V, worse than V")
    excellent_share: float | None = Field(description="Class I–III share, %")
    excellent_share_target: float
    meets_target: bool | None
    worse_than_v_share: float | None
    annual_class_rule: str
    basins: list[BasinGrade]
    sections: list[WaterSection]


class AirTrendPoint(BaseModel):
    year: int
    national_annual_mean: float | None
    national_valid: bool
    share_cities_meeting_grade_ii: float | None
    standard: str
    annual_limit: float | None


class WaterTrendPoint(BaseModel):
    year: int
    excellent_share: float | None
    worse_than_v_share: float | None
    sections_assessed: int


class AirCompliance(BaseModel):
    """Annual air reports of the years asked for, and their trend when there are several."""

    reports: list[AirReport] = Field(description="one report per year, oldest first")
    trend: list[AirTrendPoint] = Field(
        description="one point per year when a range (to > year) was asked; empty otherwise"
    )


class WaterCompliance(BaseModel):
    """Annual surface-water reports of the years asked for, and their trend."""

    reports: list[WaterReport] = Field(description="one report per year, oldest first")
    trend: list[WaterTrendPoint] = Field(
        description="one point per year when a range (to > year) was asked; empty otherwise"
    )
