"""Fuzzing of the ingest path, the bounded part (the full run: ``python -m bench.fuzz``).

Generated and mutated payloads of every shape go through the parser and the validator; none
may raise, and each must end as reading rows or dead letters with a reason. A sample goes on
through the batch writer into the test database, where every message is found again.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from storage.writer import prepare_connection, write_batch
from tests.fuzz_support import (
    AIR,
    HEAVY_PAYLOADS,
    LAKE,
    RAW_PAYLOADS,
    Tally,
    check_message,
    documents,
    encode,
    fuzz_validator,
    messages,
    mutated,
)
from tests.support import count

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

    @settings(
        max_examples=size * 3,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages)
    def collect(message: tuple[str, bytes]) -> None:
        if len(sample) < size:
            sample[message] = None

    collect()
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
