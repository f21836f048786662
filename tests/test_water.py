"""GB 3838-2002 single-factor water class and the parsing of reported classes.

The limits below are typed from STANDARDS.md §5 (GB 3838-2002 Table 1), not imported from
``standards.water``, so that a wrong number in the module fails here.
"""

from __future__ import annotations

import math

import pytest

from standards.water import (
    WORSE_THAN_V,
    WaterClass,
    item_class,
    median_class,
    parse_water_class,
    water_class,
)

# GB 3838-2002 Table 1 upper limits for Class I..V (mg/L; fecal coliform per L).
TABLE_1_UPPER: dict[str, tuple[float, float, float, float, float]] = {
    "codmn": (2, 4, 6, 10, 15),
    "cod": (15, 15, 20, 30, 40),
    "bod5": (3, 3, 4, 6, 10),
    "nh3_n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "cu": (0.01, 1.0, 1.0, 1.0, 1.0),
    "zn": (0.05, 1.0, 1.0, 2.0, 2.0),
    "fluoride": (1.0, 1.0, 1.0, 1.5, 1.5),
    "se": (0.01, 0.01, 0.01, 0.02, 0.02),
    "as": (0.05, 0.05, 0.05, 0.1, 0.1),
    "hg": (0.00005, 0.00005, 0.0001, 0.001, 0.001),
    "cd": (0.001, 0.005, 0.005, 0.005, 0.01),
    "cr6": (0.01, 0.05, 0.05, 0.05, 0.1),
    "pb": (0.01, 0.01, 0.05, 0.05, 0.1),
    "cn": (0.005, 0.05, 0.2, 0.2, 0.2),
    "phenol": (0.002, 0.002, 0.005, 0.01, 0.1),
    "petroleum": (0.05, 0.05, 0.05, 0.5, 1.0),
    "las": (0.2, 0.2, 0.2, 0.3, 0.3),
    "sulfide": (0.05, 0.1, 0.2, 0.5, 1.0),
}
TABLE_1_FECAL_COLIFORM = (200, 2000, 10000, 20000, 40000)
TABLE_1_TP_RIVER = (0.02, 0.1, 0.2, 0.3, 0.4)
TABLE_1_TP_LAKE = (0.01, 0.025, 0.05, 0.1, 0.2)
TABLE_1_TN_LAKE = (0.2, 0.5, 1.0, 1.5, 2.0)
TABLE_1_DO_LOWER = (7.5, 6, 5, 3, 2)


def _upper_limit_cases(
    item: str, limits: tuple[float, ...], waterbody: str
) -> list[tuple[str, str, float, int]]:
    """(item, waterbody, value, expected class) at and just above every limit of a row.

    At a limit the class is the best one whose limit is that number (COD 15 is Class I,
    since Classes I and II share 15); just above it, the next class with a higher limit,
    or worse than V above the Class V limit.
    """
    cases = []
    for limit in limits:
        at_limit = limits.index(limit) + 1
        higher = [i + 1 for i, other in enumerate(limits) if other > limit]
        above_limit = higher[0] if higher else WORSE_THAN_V
        cases.append((item, waterbody, float(limit), at_limit))
        cases.append((item, waterbody, math.nextafter(limit, math.inf), above_limit))
    return cases


UPPER_LIMIT_CASES = [
    case
    for item, limits in TABLE_1_UPPER.items()
    for waterbody in ("river", "lake")
    for case in _upper_limit_cases(item, limits, waterbody)
]
TP_CASES = _upper_limit_cases("tp", TABLE_1_TP_RIVER, "river") + _upper_limit_cases(
    "tp", TABLE_1_TP_LAKE, "lake"
)
TN_LAKE_CASES = _upper_limit_cases("tn", TABLE_1_TN_LAKE, "lake")
FECAL_COLIFORM_CASES = _upper_limit_cases("fecal_coliform", TABLE_1_FECAL_COLIFORM, "river")


def _case_id(case: tuple[str, str, float, int]) -> str:
    item, waterbody, value, expected = case
    return f"{item}-{waterbody}-{value!r}-class{expected}"


def test_table_1_in_this_test_has_every_assessed_item():
    # 18 upper-limit rows + pH + DO + TP; TN and fecal coliform are not assessed by default
    assert len(TABLE_1_UPPER) == 18
    assert len(UPPER_LIMIT_CASES) == 18 * 2 * 5 * 2


@pytest.mark.parametrize("case", UPPER_LIMIT_CASES + TP_CASES, ids=_case_id)
def test_assessed_item_at_and_just_above_each_limit_gets_table_1_class(case):
    item, waterbody, value, expected = case
    assert item_class(item, value, waterbody) == expected
    result = water_class({item: value}, waterbody)
    assert result == WaterClass(expected, (item,))


@pytest.mark.parametrize("case", TN_LAKE_CASES, ids=_case_id)
def test_lake_total_nitrogen_at_and_just_above_each_limit_when_included(case):
    item, _, value, expected = case
    assert item_class(item, value, "lake") == expected
    assert water_class({item: value}, "lake", include_total_nitrogen=True) == WaterClass(
        expected, (item,)
    )


@pytest.mark.parametrize("case", FECAL_COLIFORM_CASES, ids=_case_id)
def test_fecal_coliform_item_class_follows_table_1(case):
    item, _, value, expected = case
    assert item_class(item, value) == expected


@pytest.mark.parametrize(
    ("item", "value", "expected"),
    [
        ("nh3_n", 0.5, 2),
        ("nh3_n", 0.51, 3),
        ("nh3_n", 0.15, 1),
        ("nh3_n", 2.0, 5),
        ("nh3_n", 2.01, WORSE_THAN_V),
        ("codmn", 15, 5),
        ("codmn", 15.1, WORSE_THAN_V),
        ("cod", 15, 1),
        ("cod", 15.01, 3),
        ("hg", 0.0001, 3),
        ("hg", 0.00011, 4),
        ("cd", 0.005, 2),
        ("cd", 0.0051, 5),
    ],
)
def test_hand_picked_values_get_the_class_a_reader_of_table_1_expects(item, value, expected):
    assert item_class(item, value) == expected


def test_ammonia_at_class_ii_limit_is_class_ii():
    assert water_class({"nh3_n": 0.5}) == WaterClass(2, ("nh3_n",))


def test_ammonia_slightly_above_class_ii_limit_is_class_iii():
    assert water_class({"nh3_n": 0.5001}).water_class == 3


def test_cod_at_15_is_class_i_because_classes_i_and_ii_share_the_limit():
    assert water_class({"cod": 15}).water_class == 1


def test_zero_concentration_is_class_i():
    assert water_class({"nh3_n": 0.0, "hg": 0.0}) == WaterClass(1, ("hg", "nh3_n"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7.5, 1),
        (7.49, 2),
        (12.0, 1),
        (6.0, 2),
        (5.99, 3),
        (5.0, 3),
        (4.99, 4),
        (3.0, 4),
        (2.99, 5),
        (2.0, 5),
        (1.99, WORSE_THAN_V),
        (0.0, WORSE_THAN_V),
    ],
)
def test_dissolved_oxygen_is_a_lower_limit(value, expected):
    assert water_class({"do": value}) == WaterClass(expected, ("do",))


@pytest.mark.parametrize("position", range(5))
def test_dissolved_oxygen_at_each_limit_and_just_below(position):
    limit = TABLE_1_DO_LOWER[position]
    assert item_class("do", float(limit)) == position + 1
    just_below = math.nextafter(limit, -math.inf)
    assert item_class("do", just_below) == (position + 2 if position < 4 else WORSE_THAN_V)


@pytest.mark.parametrize(
    ("ph", "expected"),
    [(6.0, 1), (7.2, 1), (9.0, 1), (5.99, WORSE_THAN_V), (9.01, WORSE_THAN_V), (0.0, 6)],
)
def test_ph_outside_6_to_9_is_worse_than_v(ph, expected):
    assert water_class({"ph": ph}) == WaterClass(expected, ("ph",))


def test_ph_inside_range_does_not_worsen_the_class():
    assert water_class({"ph": 7.5, "codmn": 5.0}) == WaterClass(3, ("codmn",))


def test_ph_outside_range_makes_an_otherwise_class_i_section_worse_than_v():
    result = water_class({"ph": 9.5, "codmn": 1.0, "do": 8.0})
    assert result == WaterClass(WORSE_THAN_V, ("ph",))
    assert result.name == "worse than V"


@pytest.mark.parametrize(
    ("waterbody", "expected"),
    [("river", 2), ("lake", 3)],
)
def test_total_phosphorus_0_05_is_class_ii_in_a_river_and_iii_in_a_lake(waterbody, expected):
    assert water_class({"tp": 0.05}, waterbody) == WaterClass(expected, ("tp",))


def test_total_phosphorus_0_2_is_class_iii_in_a_river_and_v_in_a_lake():
    assert water_class({"tp": 0.2}, "river").water_class == 3
    assert water_class({"tp": 0.2}, "lake").water_class == 5


def test_waterbody_defaults_to_river():
    assert water_class({"tp": 0.1}).water_class == 2


def test_water_temperature_total_nitrogen_and_fecal_coliform_do_not_decide_the_class():
    values = {"water_temp": 31.0, "tn": 25.0, "fecal_coliform": 1_000_000.0, "codmn": 3.0}
    assert water_class(values) == WaterClass(2, ("codmn",))
    assert water_class(values, "lake") == WaterClass(2, ("codmn",))


def test_only_excluded_items_give_no_class():
    assert water_class({"water_temp": 20.0, "tn": 1.0, "fecal_coliform": 50.0}) is None


def test_no_values_give_no_class():
    assert water_class({}) is None


def test_items_outside_table_1_are_ignored():
    assert water_class({"pm25": 500.0, "water_class": 6.0, "nh3_n": 0.1}) == WaterClass(
        1, ("nh3_n",)
    )
    assert water_class({"pm25": 500.0}) is None


def test_nan_values_are_ignored():
    assert water_class({"codmn": math.nan, "nh3_n": 0.8}) == WaterClass(3, ("nh3_n",))
    assert water_class({"codmn": math.nan}) is None


def test_lake_total_nitrogen_counts_only_when_included():
    values = {"tn": 1.2, "codmn": 3.0}
    assert water_class(values, "lake") == WaterClass(2, ("codmn",))
    assert water_class(values, "lake", include_total_nitrogen=True) == WaterClass(4, ("tn",))


def test_river_total_nitrogen_never_counts_even_when_included():
    values = {"tn": 5.0, "codmn": 3.0}
    assert water_class(values, "river", include_total_nitrogen=True) == WaterClass(2, ("codmn",))


def test_total_nitrogen_has_no_river_class():
    assert item_class("tn", 0.1, "river") is None
    assert item_class("tn", 0.1, "lake") == 1


def test_item_class_of_an_unclassified_item_is_none():
    assert item_class("water_temp", 20.0) is None
    assert item_class("pm25", 20.0) is None


def test_worst_item_decides_the_class():
    values = {"do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08}  # DESIGN.md example
    assert water_class(values) == WaterClass(2, ("codmn", "do", "nh3_n", "tp"))
    values["nh3_n"] = 1.2
    assert water_class(values) == WaterClass(4, ("nh3_n",))


def test_deciding_items_list_every_item_tied_at_the_worst_class_in_name_order():
    values = {"tp": 0.05, "nh3_n": 0.8, "codmn": 5.0, "do": 5.5}
    assert water_class(values) == WaterClass(3, ("codmn", "do", "nh3_n"))


def test_deciding_items_tied_at_worse_than_v():
    values = {"ph": 10.0, "do": 1.0, "cod": 41.0, "nh3_n": 0.1}
    assert water_class(values) == WaterClass(WORSE_THAN_V, ("cod", "do", "ph"))


@pytest.mark.parametrize(
    ("water_class_number", "name"),
    [(1, "I"), (2, "II"), (3, "III"), (4, "IV"), (5, "V"), (6, "worse than V")],
)
def test_water_class_name(water_class_number, name):
    assert WaterClass(water_class_number, ()).name == name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1),
        (3, 3),
        (6, 6),
        (3.0, 3),
        ("3", 3),
        (" 5 ", 5),
        ("I", 1),
        ("II", 2),
        ("III", 3),
        ("IV", 4),
        ("V", 5),
        ("iii", 3),
        ("Ⅰ", 1),
        ("Ⅱ", 2),
        ("Ⅲ", 3),
        ("Ⅳ", 4),
        ("Ⅴ", 5),
        ("ⅲ", 3),
        ("Class III", 3),
        ("class iv", 4),
        ("CLASS Ⅱ", 2),
        ("Class 2", 2),
        ("Ⅲ类", 3),
        ("III类", 3),
        ("劣V", 6),
        ("劣Ⅴ", 6),
        ("劣v", 6),
        ("劣Ⅴ类", 6),
        ("worse than V", 6),
        ("Worse Than V", 6),
        ("V+", 6),
        (">V", 6),
    ],
)
def test_parse_water_class_accepts_numbers_roman_and_chinese_spellings(raw, expected):
    assert parse_water_class(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        0,
        7,
        -3,
        2.5,
        0.0,
        6.5,
        math.nan,
        math.inf,
        10**400,
        True,
        False,
        None,
        "",
        "   ",
        "0",
        "7",
        "VII",
        "IIII",
        "Class",
        "2.5",
        "³",
        "9" * 5000,
        "劣",
        "good",
        [3],
        {"class": 3},
    ],
    ids=lambda raw: repr(raw)[:16],
)
def test_parse_water_class_rejects_what_names_no_class(raw):
    assert parse_water_class(raw) is None


@pytest.mark.parametrize(
    ("monthly_classes", "expected"),
    [
        ([3], 3),
        ([2, 4, 3], 3),
        ([4, 4, 3, 2, 2, 3, 3, 4, 5, 3, 3, 2], 3),  # 2,2,2,3,3,3 | 3,3,4,4,4,5
        ([2, 3], 3),  # between II and III: the worse
        ([1, 1, 6, 6], 6),
        ([2, 2, 2, 5, 5, 5], 5),
        ([1, 2, 2, 2, 5, 5, 5], 2),
        ([3.0, 4.0, 4.0], 4),  # classes as stored (double precision)
    ],
)
def test_median_class_is_the_worse_middle_class(monthly_classes, expected):
    assert median_class(monthly_classes) == expected


def test_median_class_of_no_month_is_refused():
    with pytest.raises(ValueError):
        median_class([])
