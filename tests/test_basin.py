"""River and basin evaluation: class shares, the ≥ 5-section grade and the few-section class."""

from __future__ import annotations

import math

import pytest

from standards.water import (
    WORSE_THAN_V,
    WaterClass,
    basin_class_few_sections,
    basin_grade,
    excellent_share,
    worse_than_v_share,
)


def sections(counts: dict[int, int]) -> list[int]:
    """Section classes from {class: number of sections}."""
    return [cls for cls, n in counts.items() for _ in range(n)]


def test_excellent_share_counts_class_i_to_iii():
    assert excellent_share([1, 2, 3, 4, 5, 6, 3, 3]) == 62.5


def test_worse_than_v_share_counts_only_class_6():
    assert worse_than_v_share([1, 5, 6, 6]) == 50.0


def test_shares_of_nine_in_ten_are_exactly_90():
    assert excellent_share(sections({3: 9, 4: 1})) == 90.0
    assert worse_than_v_share(sections({3: 9, 6: 1})) == 10.0


def test_shares_of_no_sections_are_refused():
    with pytest.raises(ValueError, match="no sections"):
        excellent_share([])
    with pytest.raises(ValueError, match="no sections"):
        worse_than_v_share([])


@pytest.mark.parametrize("bad", [0, 7])
def test_a_class_outside_1_to_6_is_refused(bad):
    with pytest.raises(ValueError, match=r"1\.\.6"):
        excellent_share([1, bad])
    with pytest.raises(ValueError, match=r"1\.\.6"):
        basin_grade([1, 1, 1, 1, bad])


@pytest.mark.parametrize(
    ("counts", "grade"),
    [
        ({1: 5}, "excellent"),
        # exactly 90 % Class I–III is excellent
        ({3: 9, 4: 1}, "excellent"),
        ({3: 89, 4: 11}, "good"),
        # exactly 75 % is good
        ({2: 15, 5: 5}, "good"),
        ({2: 74, 4: 26}, "lightly polluted"),
        ({2: 74, 4: 7, 6: 19}, "lightly polluted"),
        # exactly 20 % worse than V is moderately polluted
        ({2: 70, 4: 10, 6: 20}, "moderately polluted"),
        ({2: 50, 5: 11, 6: 39}, "moderately polluted"),
        # exactly 40 % worse than V is heavily polluted
        ({2: 3, 6: 2}, "heavily polluted"),
        ({6: 5}, "heavily polluted"),
    ],
)
def test_basin_grade_boundaries(counts, grade):
    assert basin_grade(sections(counts)) == grade


def test_basin_grade_uses_shares_from_exactly_5_sections():
    assert basin_grade([3, 3, 3, 3, 4]) == "good"  # 80 %


def test_basin_grade_with_fewer_than_5_sections_is_none():
    assert basin_grade([1, 1, 1, 1]) is None
    assert basin_grade([]) is None


def test_few_sections_average_each_item_then_take_the_worst_class():
    # NH3-N mean 0.6 → Class III; CODMn mean 5 → Class III; DO mean 6.5 → Class II
    result = basin_class_few_sections(
        [
            {"nh3_n": 0.2, "codmn": 3.0, "do": 7.0},
            {"nh3_n": 1.0, "codmn": 7.0, "do": 6.0},
        ]
    )
    assert result == WaterClass(3, ("codmn", "nh3_n"))


def test_few_sections_mean_hides_one_bad_section():
    # one section alone is Class V for NH3-N (1.8), the mean (0.9) is Class III
    result = basin_class_few_sections([{"nh3_n": 0.1}, {"nh3_n": 0.8}, {"nh3_n": 1.8}])
    assert result == WaterClass(3, ("nh3_n",))


def test_few_sections_average_an_item_over_the_sections_that_measured_it():
    result = basin_class_few_sections([{"tp": 0.3, "cod": 12.0}, {"tp": math.nan}, {"tp": 0.1}])
    # TP mean (0.3 + 0.1) / 2 = 0.2 → Class III for a river; COD 12 → Class I
    assert result == WaterClass(3, ("tp",))


def test_few_sections_use_the_lake_limits_for_a_lake():
    # TP mean 0.2 is Class III in a river, Class V in a lake
    result = basin_class_few_sections([{"tp": 0.15}, {"tp": 0.25}], "lake")
    assert result == WaterClass(5, ("tp",))


def test_few_sections_worse_than_v_mean():
    result = basin_class_few_sections([{"nh3_n": 2.5}, {"nh3_n": 3.5}])
    assert result == WaterClass(WORSE_THAN_V, ("nh3_n",))


def test_few_sections_with_nothing_assessed_is_none():
    assert basin_class_few_sections([]) is None
    assert basin_class_few_sections([{"water_temp": 12.0}]) is None
