"""Fuzzing of the ingest path, the bounded part (the full run: ``python -m bench.fuzz``).

Generated and mutated payloads of every shape go through the parser and the validator; none
may raise, and each must end as reading rows or dead letters with a reason. A sample goes on
through the batch writer into the test database, where every message is found again; and a
few thousand, the edges among them, go through the whole pipeline (broker, ingest worker,
TimescaleDB), where each is accounted for against the validator run in process.
"""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from ingest.validate import Outcome
from standards.parameters import CATALOGUE
from storage.writer import prepare_connection, write_batch
from tests.fuzz_support import (
    AIR,
    HEAVY_PAYLOADS,
    LAKE,
    PLAUSIBLE_LIMITS,
    RAW_PAYLOADS,
    RIVER,
    Corpus,
    Tally,
    account,
    check_message,
    documents,
    draw,
    edge_messages,
    encode,
    fuzz_validator,
    messages,
    mutated,
    oracle,
    plan_corpus,
    readings_topic,
    run_through_pipeline,
    summary,
)
from tests.support import count, wait_until_consuming

FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VALIDATOR = fuzz_validator()


@pytest.mark.parametrize("station_id", [AIR, LAKE])
def test_hostile_raw_payloads_each_end_as_rows_or_dead_letters(station_id):
    tally = Tally()
    for payload in RAW_PAYLOADS + HEAVY_PAYLOADS:
        check_message(VALIDATOR, f"stations/{station_id}/readings", payload, tally)
    assert tally.payloads == len(RAW_PAYLOADS) + len(HEAVY_PAYLOADS)
    assert not tally.exceptions
    # nesting, encodings, NaN and 1e400 are malformed JSON; 256 KiB + 1 bytes is too large
    assert tally.dead_letters["malformed_json"] >= 30
    assert tally.dead_letters["payload_too_large"] >= 2


@settings(FUZZ_SETTINGS, max_examples=1500)
@given(messages)
def test_generated_messages_end_as_rows_or_dead_letters(message):
    check_message(VALIDATOR, *message)


@settings(FUZZ_SETTINGS, max_examples=500)
@given(mutated())
def test_mutated_payloads_end_as_rows_or_dead_letters(payload):
    check_message(VALIDATOR, f"stations/{AIR}/readings", payload)


@settings(FUZZ_SETTINGS, max_examples=500)
@given(documents)
def test_every_payload_shape_on_a_water_station_ends_as_rows_or_dead_letters(document):
    check_message(VALIDATOR, f"stations/{LAKE}/readings", encode(document))


def fuzz_sample(size: int) -> list[tuple[str, bytes]]:
    """``size`` distinct generated messages (hypothesis driven as a generator)."""
    sample: dict[tuple[str, bytes], None] = {}

    def take(message: tuple[str, bytes]) -> bool:
        if message in sample:
            return False
        sample[message] = None
        return True

    draw(messages, size, take, seed=None)
    return list(sample)


def test_fuzzed_sample_is_stored_or_dead_lettered_in_the_database(database_url):
    sample = fuzz_sample(300)
    outcomes = [check_message(VALIDATOR, topic, payload) for topic, payload in sample]
    readings = [row for outcome in outcomes for row in outcome.readings]
    dead_letters = [dead for outcome in outcomes for dead in outcome.dead_letters]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        result = write_batch(conn, readings, dead_letters)
    assert result.inserted + result.duplicates == len(readings)
    assert count(database_url, "SELECT count(*) FROM readings") == result.inserted
    assert count(database_url, "SELECT count(*) FROM dead_letters") == len(
        {dead.fingerprint for dead in dead_letters}
    )
    # each published message is found again: as a stored reading or as a dead letter
    with psycopg.connect(database_url) as conn:
        stored = set(conn.execute("SELECT station_id, parameter, ts FROM readings").fetchall())
        fingerprints = {
            bytes(row[0]) for row in conn.execute("SELECT fingerprint FROM dead_letters")
        }
    for (topic, payload), outcome in zip(sample, outcomes, strict=True):
        kept = {row[:3] for row in outcome.readings} & stored
        lettered = {dead.fingerprint for dead in outcome.dead_letters} & fingerprints
        assert kept or lettered, f"{topic[:60]!r} {payload[:100]!r} was lost"
    assert result.inserted > 0 and dead_letters, "the sample holds both kinds"


def test_a_value_at_a_plausible_limit_is_stored_and_one_step_beyond_is_dead_lettered():
    for name, (low, high, above, below) in PLAUSIBLE_LIMITS.items():
        topic = readings_topic(AIR if CATALOGUE[name].medium == "air" else RIVER)

        def outcome(value: float, name: str = name, topic: str = topic) -> Outcome:
            document = {"ts": "2026-03-01T08:00:00+08:00", name: value}
            return check_message(VALIDATOR, topic, encode(document))

        for value in (low, high):
            assert (name, value) in {(row[1], row[3]) for row in outcome(value).readings}
        for value in (above, below):
            rejected = outcome(value)
            assert name not in {row[1] for row in rejected.readings}, (name, value)
            if name == "water_class":
                reason = "invalid_water_class"
            elif value < 0 and not CATALOGUE[name].may_be_negative:
                reason = "negative_value"
            else:
                reason = "out_of_range"
            assert [d.reason for d in rejected.dead_letters] == [reason], (name, value)


def test_the_accounting_finds_a_lost_message_and_a_reading_no_message_explains(database_url):
    corpus = Corpus(timedelta(minutes=15))
    for message in edge_messages()[:80]:
        corpus.offer(message)
    outcomes = [
        oracle(corpus.validator, message.topic, message.payload, corpus.earliest)
        for message in corpus.messages
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(
            conn,
            [row for outcome in outcomes for row in outcome.readings],
            [dead for outcome in outcomes for dead in outcome.dead_letters],
        )
    whole = account(database_url, corpus, {})
    assert whole.problems == []
    assert whole.stored_readings == whole.expected_readings > 20
    assert whole.dead_letter_rows == whole.expected_dead_letters > 20
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM readings WHERE ts = (SELECT min(ts) FROM readings)")
        conn.execute("DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters)")
        conn.execute(
            "INSERT INTO readings (station_id, parameter, ts, value, received_at)"
            " VALUES (%s, 'pm25', '2026-06-30T00:00:00Z', 1, now())",
            (AIR,),
        )
    broken = account(database_url, corpus, {})
    assert (broken.lost, broken.unexpected, broken.duplicates) == (2, 1, 0)
    # the raw rows were changed behind the writer's back (nothing queued): the derived levels
    # no longer match a recomputation, and the accounting says so
    assert any("level differs from readings" in problem for problem in broken.problems)


# The fixed corpus (~670 edge and raw messages) and generated ones: ~10 s on 2 cores
PIPELINE_PAYLOADS = 3000


def test_fuzzed_messages_through_the_worker_are_each_stored_or_dead_lettered_once(
    database_url, publisher, make_worker
):
    seed = random.randrange(2**32)
    corpus = plan_corpus(PIPELINE_PAYLOADS, seed, horizon=timedelta(minutes=15), heavy=False)
    worker = make_worker("fuzz-ingest").start()
    wait_until_consuming(database_url, publisher)
    accounting = run_through_pipeline(database_url, publisher, worker, corpus)
    report = f"seed {seed}\n{summary(accounting, corpus)}"
    print(report)
    assert not accounting.problems, report
    assert accounting.payloads == len(corpus.messages) == PIPELINE_PAYLOADS
    assert (accounting.lost, accounting.duplicates, accounting.unexpected) == (0, 0, 0), report
    assert accounting.stored_readings == accounting.expected_readings > 1000, report
    assert accounting.dead_letter_rows == accounting.expected_dead_letters + len(
        accounting.storage_rejected
    ), report
    assert accounting.refused_by_broker == 0, report
    assert accounting.edge_readings[0] == accounting.edge_readings[1] > 50, report
    assert accounting.hourly_rows > 0 and accounting.worker_runs == 1, report
