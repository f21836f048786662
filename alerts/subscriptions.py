"""A subscription's effective rule: a preset and the fields a caller sent, applied to the
defaults of a new subscription or to the stored one, with every problem between fields named.

Rules that involve one field only are the validators of schemas.alerts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from schemas.stations import STATION_ID_PATTERN
from standards.alert_presets import PRESETS, THRESHOLD_RULE_TARGETS
from standards.limits import limit_set_in_force

NOT_NULL_FIELDS = frozenset(
    {"name", "target", "scope", "scope_values", "comparator", "for_readings", "channel", "active"}
)
CREATE_DEFAULTS: dict[str, Any] = {
    "name": None,
    "preset": None,
    "target": None,
    "parameter": None,
    "scope": None,
    "scope_values": [],
    "comparator": ">",
    "threshold": None,
    "threshold_rule": None,
    "clear_threshold": None,
    "for_minutes": None,
    "for_readings": 1,
    "channel": "stream",
    "webhook_url": None,
    "webhook_secret": None,
    "mqtt_topic": None,
    "active": True,
}
# the fields of each channel: cleared when a subscription moves to another channel
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": ("webhook_url", "webhook_secret"),
    "mqtt": ("mqtt_topic",),
    "stream": (),
}
# those a channel cannot do without: an MQTT subscription without a topic publishes to
# DEFAULT_MQTT_TOPIC (README)
CHANNEL_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": ("webhook_url", "webhook_secret"),
    "mqtt": (),
    "stream": (),
}
DEFAULT_MQTT_TOPIC = "alerts/{kind}/{station_id}"
SILENCE_DEFAULT_MINUTES = 60
Problems = list[tuple[str, str]]
WATER_CLASSES = (1, 6)  # Class I..V, 6 = worse than Class V


def _has_24h_grade_ii_limit(parameter: str | None) -> bool:
    return (
        parameter is not None
        and limit_set_in_force(date.today()).limit(parameter, "24h", 2) is not None
    )


def resolve_rule(base: dict[str, Any], sent: dict[str, Any]) -> tuple[dict[str, Any], Problems]:
    """The subscription that results from ``sent`` (the fields a caller sent) applied to
    ``base`` (CREATE_DEFAULTS, or the stored subscription for a PATCH), and every problem as
    (field, reason).

    A preset fills its fields first; fields sent override it. A field that was not sent and no
    longer fits a changed target, scope or channel is cleared (or defaulted); a field that was
    sent and does not fit is a problem."""
    rule = dict(base)
    problems: Problems = []
    if sent.get("preset") is not None:
        preset = PRESETS[sent["preset"]]
        rule.update(
            target=preset.target,
            parameter=preset.parameter,
            comparator=preset.comparator,
            threshold=preset.threshold,
            threshold_rule=preset.threshold_rule,
            clear_threshold=preset.clear_threshold,
            for_minutes=preset.for_minutes,
        )
    rule.update(sent)

    def given(field: str) -> bool:
        return field in sent and sent[field] is not None

    for field in NOT_NULL_FIELDS & sent.keys():
        if sent[field] is None:
            problems.append((field, "may not be null"))
            rule[field] = base[field]
    target = rule["target"]
    if target is None:
        problems.append(("target", "required unless a preset is given"))
    else:
        problems += _resolve_what(rule, target, given)
        if (
            base["target"] is not None
            and (base["target"] == "silence") != (target == "silence")
            and not given("for_minutes")
            and not given("preset")
        ):
            # a silence length is not a breach duration: the new kind starts at its default
            rule["for_minutes"] = None
        problems += _resolve_condition(rule, target, given)
    problems += _resolve_where(rule, base, given)
    problems += _resolve_how(rule, given)
    return rule, problems


def _resolve_what(rule: dict[str, Any], target: str, given: Callable[[str], bool]) -> Problems:
    if target in ("daily_aqi", "silence"):
        rule["parameter"] = None
        return [("parameter", f"a {target} rule has no parameter")] if given("parameter") else []
    if target == "water_class":
        if given("parameter") and rule["parameter"] != "water_class":
            return [("parameter", "a water_class rule watches parameter water_class")]
        rule["parameter"] = "water_class"
        return []
    if rule["parameter"] is None:
        return [("parameter", f"required for target {target}")]
    return []


def _resolve_condition(rule: dict[str, Any], target: str, given: Callable[[str], bool]) -> Problems:
    problems: Problems = []
    if target == "silence":
        for field in ("threshold", "threshold_rule", "clear_threshold"):
            if given(field):
                problems.append(
                    (field, "a silence rule has no threshold: for_minutes is the silence length")
                )
            rule[field] = None
        if rule["for_minutes"] is None:
            rule["for_minutes"] = SILENCE_DEFAULT_MINUTES
        elif rule["for_minutes"] < 1:
            problems.append(("for_minutes", "the silence length must be at least 1 minute"))
        return problems
    if rule["for_minutes"] is None:
        rule["for_minutes"] = 0
    if given("threshold") and given("threshold_rule"):
        problems.append(("threshold_rule", "give threshold or threshold_rule, not both"))
    elif given("threshold"):
        rule["threshold_rule"] = None
    elif given("threshold_rule"):
        rule["threshold"] = None
    threshold, threshold_rule = rule["threshold"], rule["threshold_rule"]
    if threshold is None and threshold_rule is None:
        problems.append(("threshold", "required (or threshold_rule, or a preset)"))
    if threshold_rule is not None:
        if THRESHOLD_RULE_TARGETS[threshold_rule] != target:
            problems.append(
                (
                    "threshold_rule",
                    f"{threshold_rule} is defined for target "
                    f"{THRESHOLD_RULE_TARGETS[threshold_rule]}, not {target}",
                )
            )
        elif not _has_24h_grade_ii_limit(rule["parameter"]):
            problems.append(
                (
                    "threshold_rule",
                    f"GB 3095 has no 24-hour limit for {rule['parameter']}; give a threshold",
                )
            )
    if target == "water_class" and threshold is not None:
        low, high = WATER_CLASSES
        if not low <= threshold <= high:
            problems.append(
                ("threshold", f"a water class is {low}..{high} (Class I..V, 6 = worse than V)")
            )
    clear = rule["clear_threshold"]
    if clear is not None:
        comparator = rule["comparator"]
        if threshold is None:
            problems.append(("clear_threshold", "needs a numeric threshold"))
        elif comparator in (">", ">=") and clear > threshold:
            problems.append(
                (
                    "clear_threshold",
                    f"must be at most the threshold ({threshold:g}) for comparator "
                    f"{comparator}: an alert clears on the low side",
                )
            )
        elif comparator in ("<", "<=") and clear < threshold:
            problems.append(
                (
                    "clear_threshold",
                    f"must be at least the threshold ({threshold:g}) for comparator "
                    f"{comparator}: an alert clears on the high side",
                )
            )
    return problems


def _resolve_where(
    rule: dict[str, Any], base: dict[str, Any], given: Callable[[str], bool]
) -> Problems:
    scope, values = rule["scope"], rule["scope_values"]
    if scope is None:
        return []  # the create model requires it; a PATCH keeps the stored one
    if scope == "all":
        rule["scope_values"] = []
        return (
            [("scope_values", "must be empty for scope all")]
            if given("scope_values") and values
            else []
        )
    if not values:
        return [("scope_values", f"at least one value for scope {scope}")]
    if scope != base["scope"] and not given("scope_values"):
        return [("scope_values", f"send the values of the new scope {scope}")]
    rule["scope_values"] = values = list(dict.fromkeys(values))
    if scope == "station" and len(values) != 1:
        return [("scope_values", "exactly one station id for scope station (stations: several)")]
    if scope in ("station", "stations"):
        bad = [v for v in values if not re.fullmatch(STATION_ID_PATTERN, v)]
        if bad:
            return [("scope_values", f"not station ids: {', '.join(map(repr, bad[:10]))}")]
    return []


def _resolve_how(rule: dict[str, Any], given: Callable[[str], bool]) -> Problems:
    problems: Problems = []
    channel = rule["channel"]
    own = CHANNEL_FIELDS[channel]
    for other_channel, fields in CHANNEL_FIELDS.items():
        for field in fields:
            if field in own:
                continue
            if given(field):
                problems.append((field, f"only for channel {other_channel}"))
            rule[field] = None
    problems += [
        (field, f"required for channel {channel}")
        for field in CHANNEL_REQUIRED_FIELDS[channel]
        if rule[field] is None
    ]
    return problems
