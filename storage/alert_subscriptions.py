"""Alert subscriptions in the database: those of one API key (or every one, for an admin) as
the API writes and reads them, and the active ones the evaluation judges new values by.

``owner_key_id`` None means every subscription (an admin's view); a key's own subscriptions
otherwise. Rows are dicts keyed by column, the webhook secret included: the caller decides
what to show."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from schemas.alerts import SUBSCRIPTION_FIELDS

SUBSCRIPTION_COLUMNS = sql.SQL(
    "subscription_id, name, owner_key_id, preset, target, parameter, scope, scope_values,"
    " comparator, threshold, threshold_rule, clear_threshold, for_minutes, for_readings,"
    " channel, webhook_url, webhook_secret, mqtt_topic, active, created_at"
)
# the caller's own subscriptions, or every one for an admin (owner NULL)
_CALLER_SEES = sql.SQL("(%(owner)s::text IS NULL OR owner_key_id = %(owner)s)")

SUBSCRIPTION_OF_CALLER = sql.SQL(
    "SELECT {columns} FROM alert_subscriptions"
    " WHERE subscription_id = %(subscription_id)s AND {caller_sees}"
).format(columns=SUBSCRIPTION_COLUMNS, caller_sees=_CALLER_SEES)

SUBSCRIPTIONS_OF_CALLER = sql.SQL(
    "SELECT {columns} FROM alert_subscriptions"
    " WHERE {caller_sees} AND subscription_id > %(after)s"
    " ORDER BY subscription_id LIMIT %(limit)s"
).format(columns=SUBSCRIPTION_COLUMNS, caller_sees=_CALLER_SEES)

INSERT_SUBSCRIPTION = sql.SQL(
    "INSERT INTO alert_subscriptions (owner_key_id, {fields}) VALUES (%(owner_key_id)s, {values})"
    " RETURNING {columns}"
).format(
    fields=sql.SQL(", ").join(map(sql.Identifier, SUBSCRIPTION_FIELDS)),
    values=sql.SQL(", ").join(map(sql.Placeholder, SUBSCRIPTION_FIELDS)),
    columns=SUBSCRIPTION_COLUMNS,
)

UPDATE_SUBSCRIPTION = sql.SQL(
    "UPDATE alert_subscriptions SET {assignments} WHERE subscription_id = %(subscription_id)s"
    " RETURNING {columns}"
).format(
    assignments=sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(f), sql.Placeholder(f))
        for f in SUBSCRIPTION_FIELDS
    ),
    columns=SUBSCRIPTION_COLUMNS,
)

# its state and its events (undelivered ones included) go with it (ON DELETE CASCADE)
DELETE_SUBSCRIPTION = "DELETE FROM alert_subscriptions WHERE subscription_id = %s"

ACTIVE_SUBSCRIPTIONS = """
SELECT subscription_id, target, parameter, comparator, threshold, threshold_rule,
       clear_threshold, for_minutes, for_readings, channel
FROM alert_subscriptions WHERE active
"""


def subscription_of_caller(
    conn: psycopg.Connection,
    subscription_id: int,
    owner_key_id: str | None,
    lock: bool = False,
) -> dict[str, Any] | None:
    """The subscription if the caller may see it, else None; ``lock``: FOR UPDATE, until the
    caller's transaction ends."""
    query = SUBSCRIPTION_OF_CALLER + sql.SQL(" FOR UPDATE") if lock else SUBSCRIPTION_OF_CALLER
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            query, {"subscription_id": subscription_id, "owner": owner_key_id}
        ).fetchone()


def subscriptions_of_caller(
    conn: psycopg.Connection, owner_key_id: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` subscriptions the caller may see, in id order after id ``after``."""
    params = {"owner": owner_key_id, "after": after, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SUBSCRIPTIONS_OF_CALLER, params).fetchall()


def insert_subscription(
    conn: psycopg.Connection, rule: dict[str, Any], owner_key_id: str | None
) -> dict[str, Any]:
    """Store a new subscription (``rule`` holds every field of SUBSCRIPTION_FIELDS) owned by
    ``owner_key_id`` (None: the bootstrap admin's); returns it as stored."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(INSERT_SUBSCRIPTION, {**rule, "owner_key_id": owner_key_id}).fetchone()
    assert row is not None  # an INSERT … RETURNING returns its row
    return row


def update_subscription(
    conn: psycopg.Connection, subscription_id: int, rule: dict[str, Any]
) -> dict[str, Any] | None:
    """Replace every field of SUBSCRIPTION_FIELDS by ``rule``'s; the subscription as stored, or
    None when it does not exist."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            UPDATE_SUBSCRIPTION, {**rule, "subscription_id": subscription_id}
        ).fetchone()


def delete_subscription(conn: psycopg.Connection, subscription_id: int) -> None:
    conn.execute(DELETE_SUBSCRIPTION, (subscription_id,))


def active_subscriptions(conn: psycopg.Connection) -> dict[int, dict[str, Any]]:
    """Every active subscription's rule by subscription id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return {row["subscription_id"]: row for row in cur.execute(ACTIVE_SUBSCRIPTIONS)}
