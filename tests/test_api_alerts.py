"""/v1/alerts: subscriptions (CRUD, presets, validation, owner isolation), the event history
and the server-sent event stream, against the real database."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from prometheus_client import REGISTRY

from api import create_app
from api.auth import Principal
from api.routes.alerts import GAP_GRACE_S, EventFilter, OutboxFollower
from standards.alert_presets import PRESETS
from tests.conftest import ADMIN_KEY

DONGSI, TIANTAN, HONGKOU = "110000-A001", "110000-A002", "310000-A001"
T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture(autouse=True)
def no_alerts(database_url: str) -> str:
    """Every test starts without subscriptions or events."""
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE alert_subscriptions CASCADE")
    return database_url


@pytest.fixture()
def key_a(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read')}"}


@pytest.fixture()
def key_b(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read')}"}


def rule(**fields: Any) -> dict[str, Any]:
    """A valid subscription body: Dongsi's hourly PM2.5 over 75, on the live stream."""
    body: dict[str, Any] = {
        "name": "Dongsi PM2.5",
        "target": "hourly_mean",
        "parameter": "pm25",
        "scope": "station",
        "scope_values": [DONGSI],
        "threshold": 75,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def create(client, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/alerts/subscriptions", json=rule(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def insert_events(database_url: str, subscription_id: int, count: int, **fields: Any) -> list[int]:
    """Alert events appended to the outbox directly; returns their ids in order."""
    ids = []
    with psycopg.connect(database_url) as conn:
        for i in range(count):
            row = conn.execute(
                "INSERT INTO alert_events (subscription_id, station_id, kind, target, parameter,"
                " value, threshold, observed_at, channel, created_at)"
                " VALUES (%s, %s, %s, 'hourly_mean', 'pm25', %s, 75, %s, 'stream', %s)"
                " RETURNING event_id",
                (
                    subscription_id,
                    fields.get("station_id", DONGSI),
                    fields.get("kind", "firing" if i % 2 == 0 else "resolved"),
                    80.0 + i,
                    T0 + timedelta(hours=i),
                    fields.get("created_at", T0 + timedelta(minutes=i)),
                ),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids


# --- subscriptions ---------------------------------------------------------------------------


def test_create_get_list_patch_delete(api, key_a):
    created = create(api, key_a, clear_threshold=70, for_minutes=30, for_readings=2)
    assert created["owner_key_id"] == key_a["Authorization"].split("_")[1]
    assert created["unit"] == "ug/m3" and created["comparator"] == ">"
    assert created["clear_threshold"] == 70 and created["for_readings"] == 2
    assert created["channel"] == "stream" and created["active"] is True
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
    path = f"/v1/alerts/subscriptions/{created['subscription_id']}"
    assert api.get(path, headers=key_a).json() == created
    listed = api.get("/v1/alerts/subscriptions", headers=key_a).json()
    assert listed == {"items": [created], "next_cursor": None}
    patched = api.patch(path, json={"threshold": 100, "active": False}, headers=key_a)
    assert patched.status_code == 200, patched.text
    assert patched.json()["threshold"] == 100 and patched.json()["active"] is False
    assert patched.json()["clear_threshold"] == 70  # kept: still on the good side
    assert api.delete(path, headers=key_a).status_code == 204
    assert api.get(path, headers=key_a).status_code == 404
    assert api.delete(path, headers=key_a).json()["type"] == "/problems/subscription-not-found"


def test_subscriptions_page_without_gaps_or_repeats(admin):
    made = [create(admin, name=f"rule {i}")["subscription_id"] for i in range(7)]
    for limit in (1, 3, 7):
        seen, cursor = [], None
        while True:
            params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = admin.get("/v1/alerts/subscriptions", params=params).json()
            seen += [s["subscription_id"] for s in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made
    assert admin.get("/v1/alerts/subscriptions", params={"cursor": "WyJ4Il0"}).status_code == 400


def test_presets_are_listed_with_their_rule(api, key_a):
    listed = {p["name"]: p for p in api.get("/v1/alerts/presets", headers=key_a).json()}
    assert set(listed) == set(PRESETS)
    assert listed["pm25_24h_grade_ii"]["threshold_rule"] == "gb3095_24h_grade_ii"
    assert listed["aqi_heavily_polluted"] == {
        "name": "aqi_heavily_polluted",
        "description": PRESETS["aqi_heavily_polluted"].description,
        "target": "daily_aqi",
        "parameter": None,
        "unit": "AQI",
        "comparator": ">=",
        "threshold": 201,
        "threshold_rule": None,
        "clear_threshold": None,
        "for_minutes": 0,
    }


def test_preset_fills_the_rule_and_explicit_fields_override_it(api, key_a):
    grade_ii = create(
        api, key_a, target=None, parameter=None, threshold=None, preset="pm25_24h_grade_ii"
    )
    assert grade_ii["preset"] == "pm25_24h_grade_ii"
    assert (grade_ii["target"], grade_ii["parameter"]) == ("daily_mean", "pm25")
    assert grade_ii["threshold"] is None
    assert grade_ii["threshold_rule"] == "gb3095_24h_grade_ii"
    # an explicit threshold replaces the preset's rule; for_minutes overrides too
    tighter = create(
        api,
        key_a,
        target=None,
        parameter=None,
        threshold=50,
        for_minutes=120,
        preset="pm25_24h_grade_ii",
    )
    assert (tighter["threshold"], tighter["threshold_rule"]) == (50, None)
    assert tighter["for_minutes"] == 120 and tighter["target"] == "daily_mean"
    water = create(
        api,
        key_a,
        target=None,
        parameter=None,
        threshold=None,
        preset="water_worse_than_iii",
        scope="province",
        scope_values=["Jiangsu"],
    )
    assert (water["target"], water["parameter"], water["threshold"]) == (
        "water_class",
        "water_class",
        3,
    )
    silent = create(
        api,
        key_a,
        target=None,
        parameter=None,
        threshold=None,
        preset="station_silent_1h",
        scope="all",
        scope_values=None,
    )
    assert (silent["target"], silent["parameter"], silent["for_minutes"]) == ("silence", None, 60)
    assert silent["scope_values"] == []


def test_silence_defaults_to_an_hour(api, key_a):
    silent = create(api, key_a, target="silence", parameter=None, threshold=None)
    assert silent["for_minutes"] == 60 and silent["threshold"] is None
    assert silent["unit"] is None


def test_city_scope_takes_city_codes(api, key_a):
    city = create(api, key_a, scope="city", scope_values=["110000", "310000", "110000"])
    assert city["scope_values"] == ["110000", "310000"]  # duplicates dropped, order kept
    by_name = api.post(
        "/v1/alerts/subscriptions",
        json=rule(scope="city", scope_values=["Beijing"]),
        headers=key_a,
    )
    assert by_name.status_code == 422
    assert "110000" in by_name.json()["invalid_params"][0]["reason"]


def test_key_sees_and_changes_only_its_own_subscriptions(api, key_a, key_b):
    mine = create(api, key_a, name="A's")
    theirs = create(api, key_b, name="B's")
    own_path = f"/v1/alerts/subscriptions/{mine['subscription_id']}"
    other_path = f"/v1/alerts/subscriptions/{theirs['subscription_id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "stolen"}), ("DELETE", None)):
        response = api.request(method, other_path, json=body, headers=key_a)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["type"] == "/problems/subscription-not-found"
    listed = api.get("/v1/alerts/subscriptions", headers=key_a).json()["items"]
    assert [s["name"] for s in listed] == ["A's"]
    assert api.get(other_path, headers=key_b).json()["name"] == "B's"  # untouched
    # an admin sees and manages every subscription
    everything = api.get("/v1/alerts/subscriptions", headers=ADMIN).json()["items"]
    assert {s["name"] for s in everything} == {"A's", "B's"}
    assert api.patch(own_path, json={"name": "by admin"}, headers=ADMIN).status_code == 200
    assert api.get(own_path, headers=key_a).json()["name"] == "by admin"
    assert api.delete(other_path, headers=ADMIN).status_code == 204
    assert api.get(other_path, headers=key_b).status_code == 404


def test_bootstrap_admin_subscription_has_no_owner(admin):
    assert create(admin)["owner_key_id"] is None


ROUTES = [
    ("GET", "/v1/alerts/presets", None),
    ("GET", "/v1/alerts/subscriptions", None),
    ("POST", "/v1/alerts/subscriptions", rule()),
    ("GET", "/v1/alerts/subscriptions/1", None),
    ("PATCH", "/v1/alerts/subscriptions/1", {"name": "x"}),
    ("DELETE", "/v1/alerts/subscriptions/1", None),
    ("GET", "/v1/alerts", None),
    ("GET", "/v1/alerts/stream?timeout_s=0.1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_401_without_key_403_without_read_scope(api, make_key, method, path, body):
    anonymous = api.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    bad = api.request(method, path, json=body, headers={"Authorization": "Bearer aw_kbad_x"})
    assert bad.status_code == 401
    ingest_only = {"Authorization": f"Bearer {make_key('ingest')}"}
    denied = api.request(method, path, json=body, headers=ingest_only)
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES[1:])
def test_public_read_does_not_open_alerts_without_a_key(api_settings, api, method, path, body):
    api_settings.public_read = True
    assert api.request(method, path, json=body).status_code == 401


BAD_RULES = [
    ({"clear_threshold": 80}, "clear_threshold"),  # > 75: clears below, 80 is above
    ({"comparator": "<", "threshold": 5, "clear_threshold": 4}, "clear_threshold"),
    ({"comparator": "=="}, "comparator"),
    ({"threshold": None}, "threshold"),
    ({"threshold": 75, "threshold_rule": "gb3095_24h_grade_ii"}, "threshold_rule"),
    ({"threshold": None, "threshold_rule": "gb3095_24h_grade_ii"}, "threshold_rule"),  # hourly
    (
        {
            "target": "daily_mean",
            "parameter": "o3",
            "threshold": None,
            "threshold_rule": "gb3095_24h_grade_ii",
        },
        "threshold_rule",
    ),
    ({"threshold_rule": "made_up", "threshold": None}, "threshold_rule"),
    ({"target": "hourly_mean", "parameter": None}, "parameter"),
    ({"parameter": "pm2.5x"}, "parameter"),
    ({"target": "daily_aqi"}, "parameter"),
    ({"target": "water_class", "parameter": "pm25", "threshold": 3}, "parameter"),
    ({"target": "water_class", "parameter": None, "threshold": 7}, "threshold"),
    ({"target": "silence", "parameter": None}, "threshold"),
    ({"target": "silence", "parameter": None, "threshold": None, "for_minutes": 0}, "for_minutes"),
    ({"target": "rainfall"}, "target"),
    ({"target": None, "parameter": None}, "target"),
    ({"preset": "no_such_preset"}, "preset"),
    ({"for_minutes": -1}, "for_minutes"),
    ({"for_readings": 0}, "for_readings"),
    ({"scope": "station", "scope_values": [DONGSI, TIANTAN]}, "scope_values"),
    ({"scope": "stations", "scope_values": []}, "scope_values"),
    ({"scope": "stations", "scope_values": [DONGSI, "440100-A999"]}, "scope_values"),
    ({"scope": "city", "scope_values": None}, "scope_values"),
    ({"scope": "province", "scope_values": ["Atlantis"]}, "scope_values"),
    ({"scope": "all", "scope_values": [DONGSI]}, "scope_values"),
    ({"scope": "district"}, "scope"),
    ({"channel": "webhook", "webhook_url": "https://93.184.216.34/hook"}, "webhook_secret"),
    (
        {"channel": "webhook", "webhook_url": "https://93.184.216.34/h", "webhook_secret": "short"},
        "webhook_secret",
    ),
    ({"channel": "webhook", "webhook_secret": SECRET}, "webhook_url"),
    (
        {"channel": "webhook", "webhook_url": "ftp://93.184.216.34/h", "webhook_secret": SECRET},
        "webhook_url",
    ),
    ({"channel": "webhook", "webhook_url": "not a url", "webhook_secret": SECRET}, "webhook_url"),
    (
        {"channel": "webhook", "webhook_url": "http://127.0.0.1:8080/h", "webhook_secret": SECRET},
        "webhook_url",
    ),
    (
        {"channel": "webhook", "webhook_url": "http://10.1.2.3/h", "webhook_secret": SECRET},
        "webhook_url",
    ),
    (
        {"channel": "webhook", "webhook_url": "http://169.254.169.254/", "webhook_secret": SECRET},
        "webhook_url",
    ),
    (
        {"channel": "webhook", "webhook_url": "http://localhost/h", "webhook_secret": SECRET},
        "webhook_url",
    ),
    ({"channel": "mqtt", "mqtt_topic": "stations/x/alerts"}, "mqtt_topic"),
    ({"channel": "mqtt", "mqtt_topic": "alerts/#"}, "mqtt_topic"),
    ({"channel": "mqtt", "mqtt_topic": "alerts/+/pm25"}, "mqtt_topic"),
    ({"mqtt_topic": "alerts/beijing"}, "mqtt_topic"),  # channel stream
    ({"webhook_secret": SECRET}, "webhook_secret"),  # channel stream
    ({"name": None}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"owner_key_id": "kdeadbeef"}, "owner_key_id"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_RULES)
def test_invalid_subscription_is_a_422_naming_the_field(api, key_a, fields, field):
    response = api.post("/v1/alerts/subscriptions", json=rule(**fields), headers=key_a)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "/problems/validation-error"
    assert f"body.{field}" in [p["name"] for p in problem["invalid_params"]], problem
    assert api.get("/v1/alerts/subscriptions", headers=key_a).json()["items"] == []


def test_mqtt_subscription_without_a_topic_publishes_to_the_default_topic(api, key_a):
    made = create(api, key_a, channel="mqtt")
    assert (made["channel"], made["mqtt_topic"]) == ("mqtt", None)  # alerts/{kind}/{station_id}
    path = f"/v1/alerts/subscriptions/{made['subscription_id']}"
    own = api.patch(path, json={"mqtt_topic": "alerts/dongsi"}, headers=key_a)
    assert own.status_code == 200, own.text
    assert own.json()["mqtt_topic"] == "alerts/dongsi"
    default_again = api.patch(path, json={"mqtt_topic": None}, headers=key_a)
    assert default_again.status_code == 200, default_again.text
    assert default_again.json()["mqtt_topic"] is None
    to_stream = api.patch(path, json={"channel": "stream"}, headers=key_a).json()
    back = api.patch(path, json={"channel": "mqtt"}, headers=key_a)
    assert (to_stream["mqtt_topic"], back.status_code) == (None, 200)
    assert back.json()["channel"] == "mqtt" and back.json()["mqtt_topic"] is None


def test_non_finite_threshold_is_a_422(api, key_a):
    body = json.dumps(rule()).replace('"threshold": 75', '"threshold": NaN')
    response = api.post(
        "/v1/alerts/subscriptions",
        content=body,
        headers={**key_a, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert [p["name"] for p in response.json()["invalid_params"]] == ["body.threshold"]


def test_webhook_to_loopback_is_accepted_when_the_allow_list_admits_it(
    api_settings, api, key_a, database_url
):
    api_settings.webhook_allow = ["127.0.0.0/8"]
    hook = create(
        api, key_a, channel="webhook", webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET
    )
    assert hook["webhook_url"] == "http://127.0.0.1:9/hook"
    assert hook["webhook_secret_set"] is True
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT webhook_secret FROM alert_subscriptions WHERE subscription_id = %s",
            (hook["subscription_id"],),
        ).fetchone()
    assert stored == (SECRET,)  # the delivery worker signs with it


def test_webhook_secret_is_never_returned(api_settings, api, key_a):
    api_settings.webhook_allow = ["127.0.0.0/8"]
    hook = create(
        api, key_a, channel="webhook", webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET
    )
    path = f"/v1/alerts/subscriptions/{hook['subscription_id']}"
    rotated = "another-secret-0123456789"
    responses = [
        api.get(path, headers=key_a),
        api.get("/v1/alerts/subscriptions", headers=key_a),
        api.patch(path, json={"webhook_secret": rotated}, headers=key_a),
        api.get("/v1/alerts/subscriptions", headers=ADMIN),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert SECRET not in response.text and rotated not in response.text
        assert '"webhook_secret"' not in response.text
    assert responses[2].json()["webhook_secret_set"] is True


def test_patch_clears_fields_that_no_longer_fit_and_checks_the_merged_rule(
    api_settings, api, key_a
):
    api_settings.webhook_allow = ["127.0.0.0/8"]
    made = create(
        api,
        key_a,
        for_minutes=30,
        clear_threshold=70,
        channel="webhook",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=SECRET,
    )
    path = f"/v1/alerts/subscriptions/{made['subscription_id']}"
    # a lower threshold leaves the stored clear threshold on the wrong side: named
    lower = api.patch(path, json={"threshold": 60}, headers=key_a)
    assert lower.status_code == 422
    assert [p["name"] for p in lower.json()["invalid_params"]] == ["body.clear_threshold"]
    assert api.get(path, headers=key_a).json()["threshold"] == 75  # nothing changed
    to_stream = api.patch(path, json={"channel": "stream"}, headers=key_a).json()
    assert to_stream["webhook_url"] is None and to_stream["webhook_secret_set"] is False
    to_mqtt = api.patch(
        path, json={"channel": "mqtt", "mqtt_topic": "alerts/dongsi"}, headers=key_a
    ).json()
    assert to_mqtt["mqtt_topic"] == "alerts/dongsi"
    silent = api.patch(path, json={"target": "silence"}, headers=key_a).json()
    assert (silent["parameter"], silent["threshold"], silent["clear_threshold"]) == (
        None,
        None,
        None,
    )
    assert silent["for_minutes"] == 60  # a breach duration is not a silence length
    everywhere = api.patch(path, json={"scope": "all"}, headers=key_a).json()
    assert everywhere["scope_values"] == []
    back = api.patch(path, json={"target": "daily_mean"}, headers=key_a)
    assert back.status_code == 422  # no parameter, no threshold any more
    assert {p["name"] for p in back.json()["invalid_params"]} == {
        "body.parameter",
        "body.threshold",
    }
    daily = api.patch(
        path, json={"target": "daily_mean", "parameter": "pm10", "threshold": 150}, headers=key_a
    )
    assert daily.status_code == 200, daily.text
    assert daily.json()["for_minutes"] == 0  # the silence length is not carried over
    for field in ("name", "scope", "channel", "for_readings", "active"):
        nulled = api.patch(path, json={field: None}, headers=key_a)
        assert nulled.status_code == 422, field
        assert [p["name"] for p in nulled.json()["invalid_params"]] == [f"body.{field}"]
    assert api.patch(path, json={"scope": "city"}, headers=key_a).status_code == 422


def test_invalid_path_and_patch_values_are_422(api, key_a):
    assert api.get("/v1/alerts/subscriptions/0", headers=key_a).status_code == 422
    huge = api.get(f"/v1/alerts/subscriptions/{2**63}", headers=key_a)
    assert huge.status_code == 422
    made = create(api, key_a)
    path = f"/v1/alerts/subscriptions/{made['subscription_id']}"
    unknown = api.patch(path, json={"subscription_id": 5}, headers=key_a)
    assert unknown.status_code == 422


# --- history ---------------------------------------------------------------------------------


@pytest.fixture()
def history(api, key_a, key_b, no_alerts) -> dict[str, Any]:
    """25 events of A's subscription (two stations) and 5 of B's."""
    sub_a = create(api, key_a, scope="stations", scope_values=[DONGSI, TIANTAN])
    sub_b = create(api, key_b, scope="station", scope_values=[HONGKOU])
    a_ids = insert_events(no_alerts, sub_a["subscription_id"], 15)
    a_ids += insert_events(
        no_alerts,
        sub_a["subscription_id"],
        10,
        station_id=TIANTAN,
        kind="no_data",
        created_at=T0 + timedelta(days=1),
    )
    b_ids = insert_events(no_alerts, sub_b["subscription_id"], 5, station_id=HONGKOU)
    return {"a": sub_a, "b": sub_b, "a_ids": a_ids, "b_ids": b_ids}


def page_through(client, path: str, params: dict, limit: int, headers) -> list[dict]:
    seen, cursor = [], None
    while True:
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        page = client.get(path, params=query, headers=headers)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= limit
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


def test_history_pages_newest_first_without_gaps_or_repeats(api, history):
    everything = sorted(history["a_ids"] + history["b_ids"], reverse=True)
    for limit in (1, 4, 7, 30, 1000):
        seen = page_through(api, "/v1/alerts", {}, limit, ADMIN)
        assert [e["event_id"] for e in seen] == everything


def test_history_event_fields(api, history):
    newest_first = api.get(
        "/v1/alerts", params={"subscription_id": history["a"]["subscription_id"]}, headers=ADMIN
    ).json()["items"]
    oldest = newest_first[-1]
    assert oldest["event_id"] == history["a_ids"][0]
    assert oldest["kind"] == "firing" and oldest["station_id"] == DONGSI
    assert (oldest["target"], oldest["parameter"], oldest["unit"]) == (
        "hourly_mean",
        "pm25",
        "ug/m3",
    )
    assert (oldest["value"], oldest["threshold"]) == (80.0, 75.0)
    assert datetime.fromisoformat(oldest["observed_at"]) == T0
    assert datetime.fromisoformat(oldest["observed_at"]).utcoffset() is not None
    assert datetime.fromisoformat(oldest["created_at"]) == T0
    assert oldest["delivery_state"] == "pending" and oldest["attempts"] == 0
    assert oldest["last_error"] is None and oldest["delivered_at"] is None
    assert len(oldest["idempotency_key"]) == 36


def test_history_filters(api, history):
    def ids(**params: Any) -> list[int]:
        items = page_through(api, "/v1/alerts", params, 4, ADMIN)
        return sorted(e["event_id"] for e in items)

    a_ids, b_ids = history["a_ids"], history["b_ids"]
    assert ids(subscription_id=history["b"]["subscription_id"]) == b_ids
    assert ids(station_id=TIANTAN) == a_ids[15:]
    assert ids(kind="no_data") == a_ids[15:]
    assert ids(kind="resolved", station_id=DONGSI) == a_ids[1:15:2]
    since = (T0 + timedelta(minutes=10)).isoformat()
    until = (T0 + timedelta(hours=1)).isoformat()
    assert ids(since=since, until=until) == a_ids[10:15]
    assert ids(since="2026-03-02T08:00:00+08:00") == a_ids[15:]  # offsets honoured
    naive = api.get("/v1/alerts", params={"since": "2026-03-01T00:00:00"}, headers=ADMIN)
    assert naive.status_code == 422
    assert naive.json()["invalid_params"][0]["name"] == "query.since"
    assert api.get("/v1/alerts", params={"kind": "exploded"}, headers=ADMIN).status_code == 422
    assert api.get("/v1/alerts", params={"cursor": "%%%"}, headers=ADMIN).status_code == 400


def test_history_shows_a_key_only_the_events_of_its_subscriptions(api, history, key_a, key_b):
    mine = page_through(api, "/v1/alerts", {}, 10, key_a)
    assert sorted(e["event_id"] for e in mine) == history["a_ids"]
    theirs = page_through(api, "/v1/alerts", {}, 10, key_b)
    assert sorted(e["event_id"] for e in theirs) == history["b_ids"]
    asked_for_b = {"subscription_id": history["b"]["subscription_id"]}
    assert api.get("/v1/alerts", params=asked_for_b, headers=key_a).json()["items"] == []


# --- stream, bounded (in-process) ------------------------------------------------------------


def parse_sse(text: str) -> list[dict[str, str]]:
    """The events of an SSE body (comment-only blocks dropped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(fields)
    return events


def test_stream_sends_stored_events_in_order_and_resumes_after_last_event_id(api, history):
    response = api.get(
        "/v1/alerts/stream", params={"from_start": True, "max_events": 4}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    first = parse_sse(response.text)
    everything = sorted(history["a_ids"] + history["b_ids"])
    assert [int(e["id"]) for e in first] == everything[:4]
    assert [e["event"] for e in first] == ["firing", "resolved", "firing", "resolved"]
    data = json.loads(first[0]["data"])
    assert data["event_id"] == everything[0] and data["kind"] == "firing"
    assert data["station_id"] == DONGSI and data["value"] == 80.0
    rest = api.get(
        "/v1/alerts/stream",
        params={"max_events": len(everything) - 4, "timeout_s": 10},
        headers={**ADMIN, "Last-Event-ID": first[-1]["id"]},
    )
    assert [int(e["id"]) for e in parse_sse(rest.text)] == everything[4:]
    by_query = api.get(
        "/v1/alerts/stream",
        params={"last_event_id": everything[-3], "max_events": 2, "timeout_s": 10},
        headers=ADMIN,
    )
    assert [int(e["id"]) for e in parse_sse(by_query.text)] == everything[-2:]


def test_stream_without_last_event_id_starts_from_now(api, history):
    response = api.get("/v1/alerts/stream", params={"timeout_s": 0.8}, headers=ADMIN)
    assert response.status_code == 200 and parse_sse(response.text) == []


def test_stream_filters_and_owner(api, history, key_b):
    tiantan = api.get(
        "/v1/alerts/stream",
        params={"from_start": True, "station_id": TIANTAN, "max_events": 10, "timeout_s": 10},
        headers=ADMIN,
    )
    assert [int(e["id"]) for e in parse_sse(tiantan.text)] == history["a_ids"][15:]
    assert {e["event"] for e in parse_sse(tiantan.text)} == {"no_data"}
    since = api.get(
        "/v1/alerts/stream",
        params={"from_start": True, "since": "2026-03-02T00:00:00Z", "max_events": 10},
        headers=ADMIN,
    )
    assert [int(e["id"]) for e in parse_sse(since.text)] == history["a_ids"][15:]
    own = api.get(
        "/v1/alerts/stream",
        params={"from_start": True, "max_events": 5, "timeout_s": 10},
        headers=key_b,
    )
    assert [int(e["id"]) for e in parse_sse(own.text)] == history["b_ids"]


def test_stream_parameters_are_validated(api):
    for params, headers, name in (
        ({"timeout_s": 0}, {}, "query.timeout_s"),
        ({"max_events": 0}, {}, "query.max_events"),
        ({"kind": "boom"}, {}, "query.kind"),
        ({"last_event_id": -1}, {}, "query.last_event_id"),
        ({}, {"Last-Event-ID": "abc"}, "header.Last-Event-ID"),
    ):
        response = api.get("/v1/alerts/stream", params=params, headers={**ADMIN, **headers})
        assert response.status_code == 422, params
        assert response.json()["invalid_params"][0]["name"] == name


# --- an event that commits after a later one --------------------------------------------------


def admin_follower(after: int) -> OutboxFollower:
    return OutboxFollower(after, EventFilter(Principal("test", frozenset({"admin"}))))


def poll_ids(follower: OutboxFollower, pool) -> list[int]:
    events, _ = follower.poll(pool)
    return [e.event_id for e in events]


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_stream_never_passes_over_an_event_that_commits_late(
    api, api_pool, key_a, no_alerts, outcome
):
    sub = create(api, key_a)["subscription_id"]
    (before,) = insert_events(no_alerts, sub, 1)
    follower = admin_follower(before)
    late = psycopg.connect(no_alerts)
    try:
        # id before+1 is taken by a transaction that has not committed yet...
        (late_id,) = late.execute(
            "INSERT INTO alert_events (subscription_id, station_id, kind, target, channel)"
            " VALUES (%s, %s, 'firing', 'hourly_mean', 'stream') RETURNING event_id",
            (sub, DONGSI),
        ).fetchone()
        # ...while id before+2 is committed and visible
        (early_id,) = insert_events(no_alerts, sub, 1)
        assert (late_id, early_id) == (before + 1, before + 2)
        assert poll_ids(follower, api_pool) == []
        time.sleep(GAP_GRACE_S + 0.2)
        assert poll_ids(follower, api_pool) == []  # still open: still waiting
        if outcome == "commit":
            late.commit()
        else:
            late.rollback()
    finally:
        late.close()
    if outcome == "commit":
        assert poll_ids(follower, api_pool) == [late_id, early_id]
    else:
        deadline = time.monotonic() + 10 * GAP_GRACE_S
        got: list[int] = []
        while not got and time.monotonic() < deadline:
            got = poll_ids(follower, api_pool)
            time.sleep(0.1)
        assert got == [early_id]  # the rolled-back id is passed over, once it cannot appear
    assert poll_ids(follower, api_pool) == []


# --- stream, live over HTTP ------------------------------------------------------------------


@pytest.fixture()
def live_api(api_settings, api_pool) -> Iterator[str]:
    """The app served by uvicorn in a thread, for streams a client really disconnects from."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(api_settings, api_pool),
        log_level="warning",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


class SseReader:
    """Reads events off an open text/event-stream response, a block at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_block(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise AssertionError("stream ended")

    def events(self, count: int) -> list[dict[str, str]]:
        got: list[dict[str, str]] = []
        while len(got) < count:
            block = self.next_block()
            if "data" in block:
                got.append(block)
        return got


def streams_open() -> float:
    return REGISTRY.get_sample_value("airwater_alert_streams_open") or 0.0


def wait_for_streams_open(expected: float) -> None:
    deadline = time.monotonic() + 5
    while streams_open() != expected:
        assert time.monotonic() < deadline, f"{streams_open()} streams open"
        time.sleep(0.05)


def test_live_stream_resumes_after_a_disconnect_without_gaps_or_repeats(
    live_api, api, key_a, no_alerts
):
    sub = create(api, key_a)["subscription_id"]
    insert_events(no_alerts, sub, 2)  # before the stream: not sent (it starts from now)
    timeout = httpx.Timeout(10.0)
    baseline = streams_open()
    with httpx.Client(base_url=live_api, headers=key_a, timeout=timeout) as client:
        with client.stream("GET", "/v1/alerts/stream") as response:
            assert response.status_code == 200
            reader = SseReader(response)
            assert "retry" in reader.next_block()  # the stream is open
            wait_for_streams_open(baseline + 1)
            first = insert_events(no_alerts, sub, 3)
            got = reader.events(3)
            assert [int(e["id"]) for e in got] == first
            assert [json.loads(e["data"])["event_id"] for e in got] == first
        # the client has gone: the server stops the stream and returns its resources
        wait_for_streams_open(baseline)
        missed = insert_events(no_alerts, sub, 4)
        resumed = {"Last-Event-ID": got[-1]["id"]}
        with client.stream("GET", "/v1/alerts/stream", headers=resumed) as response:
            reader = SseReader(response)
            again = reader.events(4)
            assert [int(e["id"]) for e in again] == missed
            later = insert_events(no_alerts, sub, 2)
            assert [int(e["id"]) for e in reader.events(2)] == later
    wait_for_streams_open(baseline)


def test_live_stream_sends_keep_alive_comments_when_idle(live_api, key_a, monkeypatch):
    monkeypatch.setattr("fastapi.routing._PING_INTERVAL", 0.2)
    with (
        httpx.Client(base_url=live_api, headers=key_a, timeout=httpx.Timeout(5.0)) as client,
        client.stream("GET", "/v1/alerts/stream", params={"timeout_s": 1.5}) as response,
    ):
        body = response.read().decode()
    assert body.count(": ping") >= 3
    assert parse_sse(body) == []


def test_open_streams_do_not_hold_database_connections(live_api, api_pool, key_a):
    """More streams than the pool has connections, and the API still answers."""
    streams = api_pool.max_size + 2
    limits = httpx.Limits(max_connections=streams + 1)
    with (
        httpx.Client(base_url=live_api, headers=key_a, timeout=10.0, limits=limits) as client,
        contextlib.ExitStack() as opened,
    ):
        readers = [
            SseReader(opened.enter_context(client.stream("GET", "/v1/alerts/stream")))
            for _ in range(streams)
        ]
        for reader in readers:
            assert "retry" in reader.next_block()
        started = time.monotonic()
        assert client.get("/v1/alerts").status_code == 200
        assert time.monotonic() - started < 5
