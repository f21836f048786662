"""Repeats of one rejection are counted on one dead letter (occurrences, first_seen,
last_seen): through the MQTT worker, in the writer's batches, over a redelivery, and on a
database migrated with letters already in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from storage.migrate import migrate, migration_files
from storage.writer import DeadLetter, ReadingRow, prepare_connection, write_batch
from tests.support import count, wait_for, wait_until_consuming

BEIJING, TIANTAN = "110000-A001", "110000-A002"
TOPIC = f"stations/{BEIJING}/readings"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
NEGATIVE = {"ts": "2026-03-01T08:00:00+08:00", "pm25": -3}
OTHER_NEGATIVE = {"ts": "2026-03-01T08:00:00+08:00", "pm25": -4}

# (reason, payload, occurrences, first_seen, last_seen, received_at) of every letter
_COUNTS = (
    "SELECT reason, payload, occurrences, first_seen, last_seen, received_at"
    " FROM dead_letters ORDER BY payload"
)


def counts(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return [(r[0], bytes(r[1]), *r[2:]) for r in conn.execute(_COUNTS).fetchall()]


def occurrences(database_url: str) -> int:
    return count(database_url, "SELECT coalesce(sum(occurrences), 0) FROM dead_letters")


def letter(payload: bytes, received_at: datetime, detail: str = "pm25 = -3 is negative"):
    return DeadLetter(TOPIC, BEIJING, payload, "negative_value", detail, received_at)


@pytest.fixture()
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        prepare_connection(connection)
        yield connection


# --- through the MQTT worker -----------------------------------------------------------------
def test_25_identical_bad_messages_over_mqtt_are_one_letter_counted_25_times(
    make_worker, publisher, database_url
):
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    # 20 at once (one or a few batches of the worker), then 5 more in later batches
    publisher.publish_all([(BEIJING, NEGATIVE)] * 20 + [(BEIJING, OTHER_NEGATIVE)])
    wait_for(lambda: occurrences(database_url) == 21, what="21 deliveries counted")
    publisher.publish_all([(BEIJING, NEGATIVE)] * 5)
    wait_for(lambda: occurrences(database_url) == 26, what="26 deliveries counted")

    letters = counts(database_url)
    assert [(reason, payload, n) for reason, payload, n, *_ in letters] == [
        ("negative_value", b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": -3}', 25),
        ("negative_value", b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": -4}', 1),
    ]
    (_, _, _, first_seen, last_seen, received_at), other = letters
    # the last five came in a later batch than the first of the twenty
    assert first_seen == received_at < last_seen
    assert other[3] == other[4] == other[5]
    assert count(database_url, "SELECT count(*) FROM readings") == 0


# --- the writer ------------------------------------------------------------------------------
def test_repeats_within_one_batch_are_each_counted(conn, database_url):
    repeated = [letter(b"same", T0 + timedelta(seconds=s)) for s in (3, 1, 2, 1, 5)]
    different = letter(b"other", T0)
    result = write_batch(conn, [], [*repeated, different])
    assert result.dead_letters == 6  # deliveries, as the worker's totals and metrics count
    assert counts(database_url) == [
        ("negative_value", b"other", 1, T0, T0, T0),
        (
            "negative_value",
            b"same",
            5,
            T0 + timedelta(seconds=1),
            T0 + timedelta(seconds=5),
            T0 + timedelta(seconds=1),
        ),
    ]


def test_letters_of_one_batch_get_ids_in_arrival_order(conn, database_url):
    arrived = [letter(b"letter %d" % i, T0) for i in range(20)]
    write_batch(conn, [], [*arrived, arrived[0], arrived[5]])
    with psycopg.connect(database_url) as check:
        stored = [
            bytes(p) for (p,) in check.execute("SELECT payload FROM dead_letters ORDER BY id")
        ]
    assert stored == [d.payload for d in arrived]


def test_a_later_repeat_adds_to_the_count_and_moves_last_seen_only(conn, database_url):
    write_batch(conn, [], [letter(b"same", T0), letter(b"same", T0 + timedelta(minutes=1))])
    letter_id = count(database_url, "SELECT id FROM dead_letters")
    write_batch(conn, [], [letter(b"same", T0 + timedelta(hours=2))] * 3)
    # a repeat received before the last one counted leaves last_seen where it is
    write_batch(conn, [], [letter(b"same", T0 + timedelta(hours=1))])
    assert counts(database_url) == [
        ("negative_value", b"same", 6, T0, T0 + timedelta(hours=2), T0),
    ]
    assert count(database_url, "SELECT id FROM dead_letters") == letter_id


def test_same_payload_with_another_reason_or_detail_is_its_own_letter(conn, database_url):
    write_batch(
        conn,
        [],
        [
            letter(b"same", T0),
            letter(b"same", T0, detail="pm25 = -3 at another time is negative"),
            DeadLetter(TOPIC, BEIJING, b"same", "malformed_json", "not JSON", T0),
            DeadLetter(f"stations/{TIANTAN}/readings", TIANTAN, b"same", "negative_value", "x", T0),
            letter(b"same", T0),
        ],
    )
    assert sorted(n for _, _, n, *_ in counts(database_url)) == [1, 1, 1, 2]


def test_a_redelivered_batch_counts_its_letters_again_and_stores_its_readings_once(
    conn, database_url
):
    """A crash between commit and acknowledgement: the broker delivers the batch again.
    Its readings are duplicates; its dead letters count one more delivery each."""
    readings: list[ReadingRow] = [(BEIJING, "pm25", T0, 35.0, T0)]
    dead = [letter(b"bad", T0)]
    first = write_batch(conn, readings, dead)
    again = write_batch(conn, readings, [letter(b"bad", T0 + timedelta(seconds=30))])
    assert (first.inserted, first.duplicates) == (1, 0)
    assert (again.inserted, again.duplicates) == (0, 1)
    assert count(database_url, "SELECT count(*) FROM readings") == 1
    assert counts(database_url) == [
        ("negative_value", b"bad", 2, T0, T0 + timedelta(seconds=30), T0)
    ]


# --- the migration ---------------------------------------------------------------------------
@pytest.fixture()
def database_of_0010(postgres) -> Iterator[str]:
    """A database with every migration before 0011 applied, dropped afterwards."""
    name = "migrate_0010_dead_letters"
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migration_files():
            if version < "0011":
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
    yield url
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_0011_counts_existing_letters_once_each_and_later_repeats_add_to_them(
    database_of_0010,
):
    old = [letter(b"one", T0), letter(b"two", T0 + timedelta(hours=1))]
    with psycopg.connect(database_of_0010) as conn:
        # as the writer before 0011 stored them
        conn.cursor().executemany(
            "INSERT INTO dead_letters (fingerprint, topic, station_id, payload, reason, detail,"
            " source, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    d.fingerprint,
                    d.topic,
                    d.station_id,
                    d.payload,
                    d.reason,
                    d.detail,
                    d.source,
                    d.received_at,
                )
                for d in old
            ],
        )
        conn.commit()
        assert "0011_dead_letter_counts" in migrate(conn)

    assert counts(database_of_0010) == [
        ("negative_value", b"one", 1, T0, T0, T0),
        ("negative_value", b"two", 1, *[T0 + timedelta(hours=1)] * 3),
    ]
    with psycopg.connect(database_of_0010) as conn:
        write_batch(conn, [], [letter(b"two", T0 + timedelta(hours=5))] * 2)
    assert counts(database_of_0010)[1] == (
        "negative_value",
        b"two",
        3,
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=5),
        T0 + timedelta(hours=1),
    )
