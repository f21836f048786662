-- Alert subscriptions, their per-station state and the outbox of events (issue 5).
CREATE TABLE alert_subscriptions (
    subscription_id  bigserial PRIMARY KEY,
    name             text NOT NULL,
    owner_key_id     text,                      -- the API key that made it (NULL: admin/bootstrap)
    -- what is watched
    target           text NOT NULL CHECK (target IN
                         ('reading', 'hourly_mean', 'daily_mean', 'daily_aqi', 'water_class',
                          'silence')),
    parameter        text,                      -- NULL for daily_aqi and silence
    -- where: every station of the scope
    scope            text NOT NULL CHECK (scope IN ('station', 'stations', 'city', 'province',
                                                    'all')),
    scope_values     text[] NOT NULL DEFAULT '{}',
    -- condition: breach when value <comparator> threshold; clear when it is back beyond
    -- clear_threshold (hysteresis); fire only after for_minutes and for_readings in breach
    comparator       text NOT NULL DEFAULT '>' CHECK (comparator IN ('>', '>=', '<', '<=')),
    threshold        double precision,          -- NULL when threshold_rule gives it
    threshold_rule   text,                      -- e.g. 'gb3095_24h_grade_ii': by the day's standard
    clear_threshold  double precision,
    for_minutes      integer NOT NULL DEFAULT 0 CHECK (for_minutes >= 0),
    for_readings     integer NOT NULL DEFAULT 1 CHECK (for_readings >= 1),
    -- how
    channel          text NOT NULL CHECK (channel IN ('webhook', 'mqtt', 'stream')),
    webhook_url      text,
    webhook_secret   text,
    mqtt_topic       text,
    preset           text,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (channel <> 'webhook' OR (webhook_url IS NOT NULL AND webhook_secret IS NOT NULL)),
    CHECK (target = 'silence' OR threshold IS NOT NULL OR threshold_rule IS NOT NULL)
);

-- One row per (subscription, station): survives restarts, updated in the ingest transaction.
CREATE TABLE alert_state (
    subscription_id  bigint NOT NULL REFERENCES alert_subscriptions ON DELETE CASCADE,
    station_id       text NOT NULL,
    state            text NOT NULL CHECK (state IN ('ok', 'pending', 'firing')),
    pending_since    timestamptz,
    pending_count    integer NOT NULL DEFAULT 0,
    last_ts          timestamptz,               -- newest value evaluated: older ones are ignored
    last_value       double precision,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, station_id)
);

-- The outbox: an event exists iff the readings that caused it were committed.
CREATE TABLE alert_events (
    event_id         bigserial PRIMARY KEY,     -- also the SSE id
    idempotency_key  uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    subscription_id  bigint NOT NULL REFERENCES alert_subscriptions ON DELETE CASCADE,
    station_id       text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('firing', 'resolved', 'no_data')),
    target           text NOT NULL,
    parameter        text,
    value            double precision,
    threshold        double precision,
    observed_at      timestamptz,               -- time of the value that caused it
    created_at       timestamptz NOT NULL DEFAULT now(),
    channel          text NOT NULL,
    delivery_state   text NOT NULL DEFAULT 'pending'
                     CHECK (delivery_state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    delivered_at     timestamptz
);
CREATE INDEX alert_events_pending_idx ON alert_events (next_attempt_at)
    WHERE delivery_state = 'pending';
CREATE INDEX alert_events_station_idx ON alert_events (station_id, event_id);
-- delivery keeps order per (subscription, station): "is an earlier one still pending?"
CREATE INDEX alert_events_pending_order_idx ON alert_events (subscription_id, station_id, event_id)
    WHERE delivery_state = 'pending';
