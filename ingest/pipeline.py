"""The one intake pipeline behind the three doors (MQTT worker, ``POST /v1/readings``, the
importer): what the rules made of a door's input is written with poison isolation, live
readings are judged by the alert rules in the same transaction, and the metrics are counted.
A new side effect of storing readings is added here, once."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from alerts.evaluate import evaluate_batch
from ingest import metrics
from ingest.validate import Outcome
from storage.writer import VALID, RefusedPart, StoredFlag, WriteResult, write_isolating


def store(
    conn: psycopg.Connection,
    outcome: Outcome,
    *,
    refused: RefusedPart,
    part_ends: Sequence[int] | None = None,
    live: bool = True,
    bulk: bool = False,
    coverage_s: int = 0,
    flag: StoredFlag = VALID,
) -> WriteResult:
    """Write ``outcome`` in one transaction (inside the caller's, if any) and count it.

    ``refused`` makes the dead letter of a part the database refuses, ``part_ends`` says
    where each part ends (None: every reading is a part); ``live`` readings (MQTT, HTTP) are
    evaluated against the alert subscriptions, history (imports, backfill) is not; ``bulk``
    takes the writer's path for loads of mostly new readings; ``coverage_s`` is the least
    time (s) each reading stands for when the hour's validity is judged (an hourly value
    covers 3600 s whatever the station's live interval); ``flag`` is stored with every new
    reading (a value its station flagged counts toward no figure). Database errors other than a
    refusal of the data are raised: the caller retries the batch."""
    result = write_isolating(
        conn,
        outcome.readings,
        outcome.dead_letters,
        outcome.new_stations,
        part_ends=part_ends,
        refused=refused,
        after_write=evaluate_batch if live else None,
        bulk=bulk,
        coverage_s=coverage_s,
        flag=flag,
    )
    _count(result, outcome)
    return result


def _count(result: WriteResult, outcome: Outcome) -> None:
    metrics.READINGS_STORED.inc(result.inserted)
    metrics.READINGS_DUPLICATE.inc(result.duplicates)
    for dead in [*outcome.dead_letters, *(r.dead_letter for r in result.refused)]:
        metrics.DEAD_LETTERS.labels(dead.reason).inc()
