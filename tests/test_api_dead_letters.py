"""/v1/dead-letters: newest first, filters, keyset pagination, payload encoding, repeats
counted, admin only."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from storage.writer import DeadLetter, write_batch

BEIJING = "110000-A001"
START = datetime(2026, 3, 1, tzinfo=UTC)


def letter(
    i: int,
    reason: str,
    received_at: datetime,
    station_id: str | None = BEIJING,
    source: str = "mqtt",
    payload: bytes | None = None,
) -> DeadLetter:
    topic = f"stations/{station_id}/readings"
    return DeadLetter(
        topic if source == "mqtt" else f"http:{topic}",
        station_id,
        payload if payload is not None else b'{"n": %d}' % i,
        reason,
        f"letter {i}",
        received_at,
        source,
    )


@pytest.fixture()
def letters(database_url) -> list[DeadLetter]:
    """30 letters: 10 of them received in the same microsecond, three reasons, two
    stations, both sources, one payload that is not UTF-8."""
    made = []
    for i in range(30):
        received_at = START + timedelta(minutes=i) if i >= 10 else START + timedelta(hours=1)
        made.append(
            letter(
                i,
                ("malformed_json", "negative_value", "unknown_station")[i % 3],
                received_at,
                station_id="330000-X999" if i % 3 == 2 else BEIJING,
                source="http" if i % 5 == 0 else "mqtt",
                payload=b"\xff\x00binary" if i == 7 else None,
            )
        )
    with psycopg.connect(database_url) as conn:
        write_batch(conn, [], made)
    return made


def page_through(client, params: dict, limit: int) -> list[dict]:
    seen, cursor = [], None
    while True:
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/dead-letters", params=query)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= limit
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


def order_key(item: dict) -> tuple[datetime, int]:
    return datetime.fromisoformat(item["received_at"]), item["id"]


def test_pages_newest_first_without_gaps_or_repeats(admin, letters):
    everything = admin.get("/v1/dead-letters", params={"limit": 1000}).json()
    assert everything["next_cursor"] is None
    assert len(everything["items"]) == 30
    for limit in (1, 4, 7, 30):
        seen = page_through(admin, {}, limit)
        assert [s["id"] for s in seen] == [s["id"] for s in everything["items"]]
    keys = [order_key(s) for s in everything["items"]]
    assert keys == sorted(keys, reverse=True)
    assert len({s["id"] for s in everything["items"]}) == 30
    # the ten letters of the same microsecond come in id order, newest id first
    tied = [s["id"] for s in everything["items"] if order_key(s)[0] == START + timedelta(hours=1)]
    assert len(tied) == 10 and tied == sorted(tied, reverse=True)


def test_reason_filter_with_pagination(admin, letters):
    negative = page_through(admin, {"reason": "negative_value"}, 3)
    assert len(negative) == 10 and {s["reason"] for s in negative} == {"negative_value"}
    two = admin.get(
        "/v1/dead-letters", params={"reason": ["negative_value", "unknown_station"]}
    ).json()["items"]
    assert len(two) == 20 and {s["reason"] for s in two} == {"negative_value", "unknown_station"}
    assert admin.get("/v1/dead-letters", params={"reason": "timestamp_future"}).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_station_source_and_time_filters(admin, letters):
    unknown = admin.get("/v1/dead-letters", params={"station_id": "330000-X999"}).json()["items"]
    assert len(unknown) == 10 and {s["station_id"] for s in unknown} == {"330000-X999"}
    http = admin.get("/v1/dead-letters", params={"source": "http"}).json()["items"]
    assert len(http) == 6
    assert all(s["topic"].startswith("http:stations/") for s in http)
    since = START + timedelta(minutes=25)
    recent = admin.get("/v1/dead-letters", params={"since": since.isoformat()}).json()["items"]
    # minutes 25..29 and the ten letters of minute 60
    assert len(recent) == 15
    window = admin.get(
        "/v1/dead-letters",
        params={
            "since": since.isoformat(),
            "until": (START + timedelta(minutes=28)).isoformat(),
        },
    ).json()["items"]
    assert [s["detail"] for s in window] == ["letter 27", "letter 26", "letter 25"]
    both = admin.get(
        "/v1/dead-letters", params={"reason": "malformed_json", "source": "http"}
    ).json()["items"]
    assert sorted(s["detail"] for s in both) == ["letter 0", "letter 15"]


def test_payload_is_text_when_utf8_else_base64(admin, letters):
    items = {
        s["detail"]: s for s in admin.get("/v1/dead-letters", params={"limit": 100}).json()["items"]
    }
    text = items["letter 3"]
    assert (text["payload"], text["encoding"], text["payload_bytes"]) == ('{"n": 3}', "utf-8", 8)
    binary = items["letter 7"]
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == b"\xff\x00binary"
    assert binary["payload_bytes"] == 8
    assert datetime.fromisoformat(text["received_at"]) == START + timedelta(minutes=60)
    assert datetime.fromisoformat(text["received_at"]).utcoffset() is not None
    assert text["occurrences"] == 1
    assert text["first_seen"] == text["last_seen"] == text["received_at"]


def test_http_ingest_rejection_is_listed_with_source_http(admin, database_url):
    response = admin.post(
        "/v1/readings",
        params={"station_id": BEIJING},
        content=b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": -3}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    items = admin.get("/v1/dead-letters", params={"source": "http"}).json()["items"]
    assert [(s["reason"], s["topic"], s["station_id"]) for s in items] == [
        ("negative_value", f"http:stations/{BEIJING}/readings", BEIJING)
    ]


def test_repeats_are_counted_and_keep_the_letter_in_its_place(admin, letters, database_url):
    before = [
        s["id"] for s in admin.get("/v1/dead-letters", params={"limit": 1000}).json()["items"]
    ]
    later = START + timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        # letter 3 twice more, letter 4 once more, received a day later
        write_batch(conn, [], [replace(letters[3], received_at=later)] * 2)
        write_batch(conn, [], [replace(letters[4], received_at=later - timedelta(hours=1))])
    everything = admin.get("/v1/dead-letters", params={"limit": 1000}).json()["items"]
    assert [s["id"] for s in everything] == before  # ordered by first arrival still
    by_detail = {s["detail"]: s for s in everything}
    three, four = by_detail["letter 3"], by_detail["letter 4"]
    assert (three["occurrences"], four["occurrences"]) == (3, 2)
    assert three["first_seen"] == three["received_at"]
    assert datetime.fromisoformat(three["first_seen"]) == START + timedelta(hours=1)
    assert datetime.fromisoformat(three["last_seen"]) == later
    assert datetime.fromisoformat(four["last_seen"]) == later - timedelta(hours=1)
    assert sum(s["occurrences"] for s in everything) == 33

    repeated = admin.get("/v1/dead-letters", params={"min_occurrences": 2}).json()["items"]
    assert [(s["detail"], s["occurrences"]) for s in repeated] == [("letter 4", 2), ("letter 3", 3)]
    assert page_through(admin, {"min_occurrences": 3}, 1) == [three]
    assert admin.get("/v1/dead-letters", params={"min_occurrences": 4}).json()["items"] == []


def test_identical_readings_rejected_in_one_post_are_one_letter_counting_each(admin):
    reading = {"ts": "2026-03-01T08:00:00+08:00", "pm25": -3}
    body = json.dumps({"readings": [reading] * 4 + [{**reading, "pm25": -5}]}).encode()
    for _ in range(2):
        response = admin.post(
            "/v1/readings",
            params={"station_id": BEIJING},
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert len(response.json()["rejected"]) == 5
    items = admin.get("/v1/dead-letters", params={"source": "http"}).json()["items"]
    assert sorted((s["detail"], s["occurrences"]) for s in items) == [
        ("pm25 = -3 at 2026-03-01T08:00:00+08:00 is negative", 8),
        ("pm25 = -5 at 2026-03-01T08:00:00+08:00 is negative", 2),
    ]
    for item in items:
        assert item["payload"] == body.decode()
        first_seen, last_seen = (
            datetime.fromisoformat(item[k]) for k in ("first_seen", "last_seen")
        )
        assert item["first_seen"] == item["received_at"] and first_seen < last_seen


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"cursor": "%%%"}, 400, None),
        ({"cursor": "WzEsMl0"}, 400, None),  # [1, 2]: a list of the right length, wrong types
        ({"cursor": "WyJub3QgYSB0aW1lIiwgMV0"}, 400, None),  # ["not a time", 1]
        ({"reason": "bad_reason"}, 422, "query.reason.0"),
        ({"since": "2026-03-01T00:00:00"}, 422, "query.since"),  # no offset
        ({"since": "yesterday"}, 422, "query.since"),
        ({"source": "smtp"}, 422, "query.source"),
        ({"station_id": "bad id"}, 422, "query.station_id"),
        ({"limit": 0}, 422, "query.limit"),
        ({"limit": 1001}, 422, "query.limit"),
        ({"min_occurrences": 0}, 422, "query.min_occurrences"),
    ],
)
def test_bad_parameters_are_problems(admin, database_url, params, status, field):
    response = admin.get("/v1/dead-letters", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is None:
        assert response.json()["type"] == "/problems/invalid-cursor"
    else:
        assert [p["name"] for p in response.json()["invalid_params"]] == [field]


def test_401_without_key_403_for_read_and_ingest_keys(api, make_key, database_url):
    assert api.get("/v1/dead-letters").status_code == 401
    assert (
        api.get("/v1/dead-letters", headers={"Authorization": "Bearer aw_kbad_x"}).status_code
        == 401
    )
    for scope in ("read", "ingest"):
        denied = api.get("/v1/dead-letters", headers={"Authorization": f"Bearer {make_key(scope)}"})
        assert denied.status_code == 403
        assert denied.json()["type"] == "/problems/forbidden"
    allowed = api.get("/v1/dead-letters", headers={"Authorization": f"Bearer {make_key('admin')}"})
    assert allowed.status_code == 200
