"""Stored parameter names and SenML unit conversion factors."""

from __future__ import annotations

import pytest

from standards.parameters import (
    ALIASES,
    CATALOGUE,
    PLAUSIBLE,
    canonical_parameter,
    conversion_factor,
    implausible,
)


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("pm25", "pm25"),
        ("PM2.5", "pm25"),
        ("pm2_5", "pm25"),
        ("PM_25", "pm25"),
        (" PM10 ", "pm10"),
        ("CO", "co"),
        ("O3_1h", "o3"),
        ("NH3-N", "nh3_n"),
        ("ammonia_nitrogen", "nh3_n"),
        ("Dissolved_Oxygen", "do"),
        ("COD_Mn", "codmn"),
        ("permanganate_index", "codmn"),
        ("Total_Phosphorus", "tp"),
        ("total_nitrogen", "tn"),
        ("Class", "water_class"),
        ("water_class", "water_class"),
    ],
)
def test_canonical_parameter_maps_names_and_aliases_case_insensitively(name, parameter):
    assert canonical_parameter(name) == parameter


@pytest.mark.parametrize("name", ["", " ", "radon", "pm2.5 ug/m3", "pm", "ts", "readings"])
def test_canonical_parameter_of_an_unknown_name_is_none(name):
    assert canonical_parameter(name) is None


def test_every_stored_parameter_is_its_own_canonical_name():
    assert all(canonical_parameter(name) == name for name in CATALOGUE)


def test_every_alias_points_at_a_stored_parameter():
    assert {canonical_parameter(alias) for alias in ALIASES} <= set(CATALOGUE)


@pytest.mark.parametrize(
    ("unit", "parameter", "factor"),
    [
        ("ug/m3", "pm25", 1.0),
        ("UG/M3", "pm25", 1.0),
        (" ug/m3 ", "pm25", 1.0),
        ("µg/m3", "pm25", 1.0),  # micro sign U+00B5
        ("μg/m3", "pm25", 1.0),  # Greek mu U+03BC
        ("mg/m3", "pm10", 1e3),
        ("g/m3", "so2", 1e6),
        ("kg/m3", "no2", 1e9),
        ("mg/m3", "co", 1.0),
        ("ug/m3", "co", 1e-3),
        ("kg/m3", "co", 1e6),
        ("mg/L", "codmn", 1.0),
        ("g/m3", "nh3_n", 1.0),
        ("ug/L", "hg", 1e-3),
        ("µg/L", "pb", 1e-3),
        ("pH", "ph", 1.0),
        ("/", "ph", 1.0),
        ("Cel", "water_temp", 1.0),
        ("1/L", "fecal_coliform", 1.0),
    ],
)
def test_conversion_factor_turns_the_unit_into_the_stored_unit(unit, parameter, factor):
    assert conversion_factor(unit, CATALOGUE[parameter]) == pytest.approx(factor, rel=1e-15)


def test_stored_units_of_air_and_water_parameters():
    assert CATALOGUE["pm25"].unit == "ug/m3"
    assert CATALOGUE["co"].unit == "mg/m3"
    assert CATALOGUE["codmn"].unit == "mg/L"
    assert CATALOGUE["water_class"].unit == "class"


@pytest.mark.parametrize(
    ("unit", "parameter"),
    [
        ("ppm", "so2"),
        ("ppb", "no2"),
        ("Cel", "pm25"),
        ("%RH", "pm25"),
        ("mg/L", "ph"),
        ("K", "water_temp"),
        ("ug/m3", "water_temp"),
        ("count", "fecal_coliform"),
        ("", "pm25"),
    ],
)
def test_conversion_factor_of_a_unit_that_does_not_fit_is_none(unit, parameter):
    assert conversion_factor(unit, CATALOGUE[parameter]) is None


def test_every_parameter_has_a_plausible_range_with_its_basis():
    assert set(PLAUSIBLE) == set(CATALOGUE)
    for name, bounds in PLAUSIBLE.items():
        assert bounds.low < bounds.high and bounds.basis, name
    # every AQI breakpoint of HJ 633 (the top ones, in the stored units) lies inside
    top_breakpoints = {"pm25": 500, "pm10": 600, "so2": 2620, "no2": 3840, "co": 150, "o3": 1200}
    for name, top in top_breakpoints.items():
        assert PLAUSIBLE[name].high > 2 * top, name


@pytest.mark.parametrize(
    ("parameter", "value", "inside"),
    [
        ("pm25", 0.0, True),
        ("pm25", -0.0, True),
        ("pm25", 1e-9, True),
        ("pm25", 5e-324, False),  # a subnormal: no instrument, and an underflow in SQL
        ("water_temp", -1e-10, False),
        ("pm25", 10_000.0, True),
        ("pm25", 10_000.000001, False),
        ("pm10", 9_985.0, True),  # the sand-dust record
        ("ph", -0.01, False),
        ("water_temp", -5.0, True),
        ("water_temp", -5.01, False),
        ("water_class", 6.0, True),
        ("water_class", 7.0, False),
    ],
)
def test_implausible_names_the_range_a_value_lies_outside(parameter, value, inside):
    assert (implausible(parameter, value) is None) is inside
