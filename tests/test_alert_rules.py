"""The alert state machine: fire once, resolve once, no flapping, durations, late data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.rules import AlertState, Rule, step

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def run(rule: Rule, values: list[float], minutes_apart: int = 60) -> list[str]:
    state, events = AlertState(), []
    for i, value in enumerate(values):
        state, event = step(state, rule, T0 + timedelta(minutes=i * minutes_apart), value)
        if event:
            events.append(f"{i}:{event}")
    return events


def test_breach_fires_once_and_resolves_once():
    assert run(Rule(">", 75), [50, 80, 90, 100, 60, 50]) == ["1:firing", "4:resolved"]


def test_value_at_the_threshold_is_not_a_breach_for_greater_than():
    assert run(Rule(">", 75), [75, 75.1, 75]) == ["1:firing", "2:resolved"]
    assert run(Rule(">=", 201), [200, 201]) == ["1:firing"]


def test_noise_around_the_limit_does_not_flap_with_a_clear_threshold():
    noisy = [74, 76, 74.5, 75.5, 74, 76, 73, 76, 74.9, 69.9, 74, 76]
    assert run(Rule(">", 75), noisy) == [
        "1:firing",
        "2:resolved",
        "3:firing",
        "4:resolved",
        "5:firing",
        "6:resolved",
        "7:firing",
        "8:resolved",
        "11:firing",
    ]
    # with hysteresis: it stays firing until the value is back to 70 or below
    assert run(Rule(">", 75, clear_threshold=70), noisy) == ["1:firing", "9:resolved", "11:firing"]


def test_for_readings_needs_consecutive_breaches():
    rule = Rule(">", 75, for_readings=3)
    assert run(rule, [80, 80, 70, 80, 80, 80, 60]) == ["5:firing", "6:resolved"]


def test_for_minutes_needs_the_breach_to_last():
    rule = Rule(">", 75, for_minutes=30)
    # readings every 10 minutes: the breach starting at 1 has lasted 30 minutes at 4
    assert run(rule, [70, 80, 80, 80, 80, 80], minutes_apart=10) == ["4:firing"]


def test_lower_limit_rules_work_the_other_way():
    # dissolved oxygen below 5 mg/L, clear above 5.5
    assert run(Rule("<", 5, clear_threshold=5.5), [6, 4.9, 5.2, 5.6]) == ["1:firing", "3:resolved"]


def test_late_value_is_ignored_and_same_time_is_re_evaluated():
    rule = Rule(">", 75)
    state, event = step(AlertState(), rule, T0 + timedelta(hours=2), 80)
    assert event == "firing"
    state, event = step(state, rule, T0, 10)  # older than the newest seen
    assert (state.state, event) == ("firing", None)
    # an hourly mean of the same hour updated by a later reading
    state, event = step(state, rule, T0 + timedelta(hours=2), 60)
    assert (state.state, event) == ("ok", "resolved")
