"""The national targets (DESIGN.md table; the 2023 Opinions, items 5–7)."""

from __future__ import annotations

import pytest

from standards.targets import (
    TARGETS,
    Target,
    city_pm25_limit,
    city_pm25_target,
    national_pm25_gap,
)

TARGET_BY_METRIC_YEAR = {(t.metric, t.year): t for t in TARGETS}


def test_the_targets_table_holds_the_five_national_targets():
    assert {(t.metric, t.comparator, t.value, t.unit, t.year) for t in TARGETS} == {
        ("national_pm25_annual_mean", "<", 28, "ug/m3", 2027),
        ("national_pm25_annual_mean", "<", 25, "ug/m3", 2035),
        ("surface_water_excellent_share", ">=", 90, "%", 2027),
        ("nearshore_sea_excellent_area_share", ">=", 83, "%", 2027),
        ("groundwater_class_i_iv_share", ">", 80, "%", 2035),
    }


def test_every_target_cites_its_item_of_the_opinions():
    items = {t.metric: t.source.rsplit("item ", 1)[1] for t in TARGETS}
    assert items == {
        "national_pm25_annual_mean": "5",
        "surface_water_excellent_share": "6",
        "nearshore_sea_excellent_area_share": "6",
        "groundwater_class_i_iv_share": "7",
    }


@pytest.mark.parametrize(
    ("year", "measured", "met"),
    [(2027, 27.9, True), (2027, 28.0, False), (2035, 24.9, True), (2035, 25.0, False)],
)
def test_national_pm25_must_be_strictly_below_the_target(year, measured, met):
    assert TARGET_BY_METRIC_YEAR[("national_pm25_annual_mean", year)].is_met(measured) is met


@pytest.mark.parametrize(("measured", "met"), [(89.9, False), (90.0, True), (91.4, True)])
def test_about_90_percent_surface_water_is_met_from_90_0(measured, met):
    assert TARGET_BY_METRIC_YEAR[("surface_water_excellent_share", 2027)].is_met(measured) is met


@pytest.mark.parametrize(("measured", "met"), [(82.9, False), (83.0, True), (85.0, True)])
def test_about_83_percent_nearshore_sea_is_met_from_83_0(measured, met):
    target = TARGET_BY_METRIC_YEAR[("nearshore_sea_excellent_area_share", 2027)]
    assert target.is_met(measured) is met


@pytest.mark.parametrize(("measured", "met"), [(80.0, False), (80.1, True)])
def test_groundwater_must_be_over_80_percent(measured, met):
    assert TARGET_BY_METRIC_YEAR[("groundwater_class_i_iv_share", 2035)].is_met(measured) is met


@pytest.mark.parametrize(
    ("annual_mean", "gap_2027", "gap_2035"),
    [(30.0, 2.0, 5.0), (29.3, 1.3, 4.3), (28.0, 0.0, 3.0), (24.0, -4.0, -1.0)],
)
def test_national_pm25_gap_is_mean_minus_target_per_target_year(annual_mean, gap_2027, gap_2035):
    gap = national_pm25_gap(annual_mean)
    assert set(gap) == {2027, 2035}
    assert gap[2027] == pytest.approx(gap_2027)
    assert gap[2035] == pytest.approx(gap_2035)


@pytest.mark.parametrize(
    ("year", "limit", "standard"),
    [
        (2016, 35, "GB 3095-2012"),
        (2025, 35, "GB 3095-2012"),
        # the 2026 report ends after 2026-03-01: transitional limits
        (2026, 30, "GB 3095-2026 (transitional)"),
        (2030, 30, "GB 3095-2026 (transitional)"),
        (2031, 25, "GB 3095-2026 (final)"),
        (2035, 25, "GB 3095-2026 (final)"),
        (2014, 35, "GB 3095-2012"),
    ],
)
def test_city_pm25_limit_is_the_grade_ii_annual_limit_for_that_years_report(year, limit, standard):
    assert city_pm25_limit(year) == (limit, standard)


@pytest.mark.parametrize(
    ("year", "compliant", "not_compliant"), [(2025, 35.0, 35.1), (2026, 30.0, 30.1)]
)
def test_a_city_meets_its_target_at_the_limit_and_not_above(year, compliant, not_compliant):
    target = city_pm25_target(year)
    assert target.is_met(compliant) is True
    assert target.is_met(not_compliant) is False


def test_city_pm25_target_names_the_standard_and_its_limit():
    target = city_pm25_target(2031)
    assert target == Target(
        name="City PM2.5 meets the Grade II annual limit (GB 3095-2026 (final): 25 µg/m³)",
        metric="city_pm25_annual_mean",
        comparator="<=",
        value=25,
        unit="ug/m3",
        year=2031,
        source=target.source,
    )
    assert target.source.endswith("item 5; GB 3095-2026 (final)")


def test_target_gap_is_measured_minus_target_value():
    surface_water = TARGET_BY_METRIC_YEAR[("surface_water_excellent_share", 2027)]
    assert surface_water.gap(89.4) == pytest.approx(-0.6)
