"""POST /v1/readings: HTTP ingest through the MQTT validation and writer, real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tests.test_ingest import BAD_PAYLOADS

BEIJING = "110000-A001"
T0 = "2026-03-01T08:00:00+08:00"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rows(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def stored(database_url: str, station_id: str) -> dict[tuple[str, datetime], float]:
    return {
        (p, ts): v
        for p, ts, v in rows(
            database_url,
            "SELECT parameter, ts, value FROM readings WHERE station_id = %s",
            (station_id,),
        )
    }


def raw(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


@pytest.fixture()
def ingester(api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('ingest')}"
    return api


def post(client, station_id: str, payload: Any, content_type: str = "application/json"):
    return client.post(
        "/v1/readings",
        params={"station_id": station_id},
        content=raw(payload),
        headers={"Content-Type": content_type},
    )


SHAPES = [
    pytest.param(
        BEIJING,
        {"ts": T0, "pm25": 35.2, "pm10": 61.0},
        "application/json",
        {("pm25", utc(T0)): 35.2, ("pm10", utc(T0)): 61.0},
        id="one reading",
    ),
    pytest.param(
        BEIJING,
        {
            "readings": [
                {"ts": "2026-03-01T09:00:00", "pm25": 40},  # naive: the station's timezone
                {"ts": 1772330400, "pm25": 41},  # epoch seconds
                {"ts": "2026-03-01T11:00:00Z", "pm25": 42.5},
            ]
        },
        "application/json",
        {
            ("pm25", utc("2026-03-01T01:00:00Z")): 40.0,
            ("pm25", utc("2026-03-01T02:00:00Z")): 41.0,
            ("pm25", utc("2026-03-01T11:00:00Z")): 42.5,
        },
        id="batch",
    ),
    pytest.param(
        "W-YANGTZE-01",
        {"ts": T0, "water_class": "III"},
        "application/json",
        {("water_class", utc(T0)): 3.0},
        id="water class",
    ),
    pytest.param(
        "W-YANGTZE-01",
        {"ts": T0, "do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08},
        "application/json",
        {
            ("do", utc(T0)): 6.1,
            ("codmn", utc(T0)): 3.2,
            ("nh3_n", utc(T0)): 0.31,
            ("tp", utc(T0)): 0.08,
            ("water_class", utc(T0)): 2.0,  # derived by the single-factor rule
        },
        id="water parameters",
    ),
    pytest.param(
        BEIJING,
        [
            {
                "bn": f"urn:dev:station:{BEIJING}:",
                "bt": 1772323200,
                "n": "pm25",
                "u": "ug/m3",
                "v": 35.2,
            },
            {"n": "pm10", "u": "kg/m3", "v": 6.1e-8},
        ],
        "application/senml+json",
        {
            ("pm25", datetime.fromtimestamp(1772323200, UTC)): 35.2,
            ("pm10", datetime.fromtimestamp(1772323200, UTC)): 61.0,
        },
        id="senml",
    ),
]


@pytest.mark.parametrize(("station_id", "payload", "content_type", "expected"), SHAPES)
def test_each_payload_shape_is_stored(
    ingester, database_url, station_id, payload, content_type, expected
):
    response = post(ingester, station_id, payload, content_type)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], body["duplicates"], body["rejected"]) == (len(expected), 0, [])
    assert body["station_id"] == station_id
    assert datetime.fromisoformat(body["received_at"]).tzinfo is not None
    assert stored(database_url, station_id) == expected


def test_body_without_content_type_is_read_as_json(ingester, database_url):
    response = ingester.post(
        "/v1/readings", params={"station_id": BEIJING}, content=raw({"ts": T0, "pm25": 12})
    )
    assert response.status_code == 200, response.text
    assert stored(database_url, BEIJING) == {("pm25", utc(T0)): 12.0}


def test_posting_the_same_body_twice_stores_once(ingester, database_url):
    payload = {
        "readings": [{"ts": T0, "pm25": 35.0}, {"ts": "2026-03-01T09:00:00+08:00", "pm25": 36.0}]
    }
    first = post(ingester, BEIJING, payload).json()
    again = post(ingester, BEIJING, payload)
    assert again.status_code == 200
    assert (first["stored"], first["duplicates"]) == (2, 0)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)
    changed = post(ingester, BEIJING, {"ts": T0, "pm25": 99.0}).json()
    assert (changed["stored"], changed["duplicates"]) == (0, 1)
    assert stored(database_url, BEIJING)[("pm25", utc(T0))] == 35.0  # the first value wins
    assert rows(
        database_url,
        "SELECT count FROM readings_hourly WHERE station_id = %s AND bucket = %s",
        (BEIJING, utc(T0)),
    ) == [(1,)]


@pytest.mark.parametrize(
    ("station_id", "payload", "reason"), BAD_PAYLOADS, ids=[reason for _, _, reason in BAD_PAYLOADS]
)
def test_every_rejection_reason_is_a_422_and_a_dead_letter_from_http(
    ingester, database_url, station_id, payload, reason
):
    response = post(ingester, station_id, payload)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/payload-rejected"
    assert problem["stored"] == 0 and problem["station_id"] == station_id
    assert {r["reason"] for r in problem["rejected"]} == {reason}
    letters = rows(
        database_url,
        "SELECT topic, station_id, payload, reason, detail, source FROM dead_letters ORDER BY id",
    )
    assert len(letters) == len(problem["rejected"])  # [1, 2, 3]: one per SenML record
    for letter, rejected in zip(letters, problem["rejected"], strict=True):
        topic, letter_station, letter_payload, letter_reason, detail, source = letter
        assert (topic, source) == (f"http:stations/{station_id}/readings", "http")
        assert (letter_station, bytes(letter_payload)) == (station_id, raw(payload))
        assert (letter_reason, detail) == (rejected["reason"], rejected["detail"])
        assert detail, "every dead letter carries a human sentence"
    assert rows(database_url, "SELECT count(*) FROM readings") == [(0,)]


def test_rejected_body_posted_twice_is_one_dead_letter(ingester, database_url):
    for _ in range(2):
        assert post(ingester, BEIJING, b'{"ts": ').status_code == 422
    assert rows(database_url, "SELECT reason FROM dead_letters") == [("malformed_json",)]


def test_bad_reading_in_a_batch_is_listed_and_the_rest_stored(ingester, database_url):
    batch = {
        "readings": [
            {"ts": T0, "pm25": 30, "pm10": -1},
            {"ts": "2026-03-01T09:00:00+08:00", "pm25": 31},
        ]
    }
    response = post(ingester, BEIJING, batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == 2
    assert [r["reason"] for r in body["rejected"]] == ["negative_value"]
    assert sorted(stored(database_url, BEIJING).values()) == [30.0, 31.0]
    assert rows(database_url, "SELECT reason, source FROM dead_letters") == [
        ("negative_value", "http")
    ]


def test_oversized_body_is_413_and_its_head_a_dead_letter(api_settings, ingester, database_url):
    api_settings.max_payload_bytes = 1024
    payload = raw({"readings": [{"ts": 1772323200 + i, "pm25": 1.0} for i in range(100)]})
    assert len(payload) > 1024
    response = post(ingester, BEIJING, payload)
    assert response.status_code == 413
    problem = response.json()
    assert problem["type"] == "/problems/payload-too-large"
    assert [r["reason"] for r in problem["rejected"]] == ["payload_too_large"]
    assert rows(
        database_url, "SELECT reason, source, length(payload), station_id FROM dead_letters"
    ) == [("payload_too_large", "http", 1024, BEIJING)]
    assert rows(database_url, "SELECT count(*) FROM readings") == [(0,)]


def test_oversized_streamed_body_without_length_is_413(api_settings, ingester, database_url):
    api_settings.max_payload_bytes = 1024

    def chunks() -> Iterator[bytes]:
        yield b'{"readings": ['
        for i in range(10_000):  # far more than the limit; reading stops after 1 KiB
            yield b'{"ts": %d, "pm25": 1.0},' % (1772323200 + i)
        yield b"]}"

    response = ingester.post(
        "/v1/readings",
        params={"station_id": BEIJING},
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "more than 1024 bytes" in response.json()["rejected"][0]["detail"]
    assert rows(database_url, "SELECT reason, length(payload) FROM dead_letters") == [
        ("payload_too_large", 1024)
    ]


def test_body_at_the_limit_is_accepted(api_settings, ingester, database_url):
    api_settings.max_payload_bytes = 1024
    payload = raw({"ts": T0, "pm25": 5.0})
    payload = payload[:-1] + b" " * (1024 - len(payload)) + b"}"
    assert len(payload) == 1024
    assert post(ingester, BEIJING, payload).status_code == 200


def test_other_content_type_is_415_and_stores_nothing(ingester, database_url):
    response = post(ingester, BEIJING, {"ts": T0, "pm25": 1}, "text/plain")
    assert response.status_code == 415
    assert response.json()["type"] == "/problems/unsupported-media-type"
    assert rows(database_url, "SELECT count(*) FROM dead_letters") == [(0,)]


@pytest.mark.parametrize(
    "params", [{}, {"station_id": "bad id/with slash"}, {"station_id": "x" * 65}]
)
def test_missing_or_malformed_station_id_is_422_naming_it(ingester, database_url, params):
    response = ingester.post("/v1/readings", params=params, json={"ts": T0, "pm25": 1})
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/validation-error"
    assert [p["name"] for p in response.json()["invalid_params"]] == ["query.station_id"]
    assert rows(database_url, "SELECT count(*) FROM dead_letters") == [(0,)]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"{}",
        b"[]",
        b'"text"',
        b"\xff\xfe\x00",
        b'{"readings": 5}',
        b'{"ts": 1e400, "pm25": 1}',
        b'{"ts": 99999999999999999999, "pm25": 1}',
        b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1e400}',
        b"[" * 5000 + b"]" * 5000,
        b'[{"bn": "x", "bt": "now", "n": "pm25", "v": 1}]',
        b'{"readings": [1, "a", null]}',
    ],
)
def test_garbage_is_never_a_500(ingester, database_url, body):
    response = post(ingester, BEIJING, body)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/payload-rejected"
    assert rows(database_url, "SELECT count(*) FROM dead_letters")[0][0] >= 1


def test_auto_registration_follows_the_setting(api_settings, ingester, database_url):
    api_settings.auto_register_stations = True
    response = post(ingester, "440300-A009", {"ts": T0, "pm25": 20})
    assert response.status_code == 200, response.text
    assert rows(database_url, "SELECT kind FROM stations WHERE station_id = '440300-A009'") == [
        ("air",)
    ]


def test_401_without_key_403_for_read_key_and_nothing_read_before_auth(api, make_key, database_url):
    big = b"x" * 300_000
    assert api.post("/v1/readings", params={"station_id": BEIJING}, content=big).status_code == 401
    reader = {"Authorization": f"Bearer {make_key('read')}"}
    denied = api.post("/v1/readings", params={"station_id": BEIJING}, content=big, headers=reader)
    assert denied.status_code == 403
    assert rows(database_url, "SELECT count(*) FROM dead_letters") == [(0,)]
    admin = {"Authorization": f"Bearer {make_key('admin')}"}
    assert (
        api.post(
            "/v1/readings",
            params={"station_id": BEIJING},
            json={"ts": T0, "pm25": 1},
            headers=admin,
        ).status_code
        == 200
    )


def test_station_registered_through_the_api_can_ingest_at_once(admin, make_key, api):
    token = make_key("ingest")
    body = {"ts": "2026-03-01T08:00:00+08:00", "pm25": 12.0}
    headers = {"Authorization": f"Bearer {token}"}
    first = api.post(
        "/v1/readings", params={"station_id": "440300-A001"}, json=body, headers=headers
    )
    assert first.status_code == 422  # unknown station, dead-lettered
    created = admin.post("/v1/stations", json={"station_id": "440300-A001", "name": "Shenzhen"})
    assert created.status_code == 201
    second = api.post(
        "/v1/readings", params={"station_id": "440300-A001"}, json=body, headers=headers
    )
    assert second.status_code == 200 and second.json()["stored"] == 1
