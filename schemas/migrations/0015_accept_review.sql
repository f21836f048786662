-- A reviewer can overrule a station's own data flag (issue 17): a review with action 'accept'
-- makes the station-flagged values of its hours count, as an 'invalidate' review takes
-- values out. Both kinds never overlap for a parameter-hour (reports.review checks it).
ALTER TABLE reviews ADD COLUMN action text NOT NULL DEFAULT 'invalidate'
    CHECK (action IN ('invalidate', 'accept'));
ALTER TABLE reviews DROP CONSTRAINT reviews_reason_check;
ALTER TABLE reviews ADD CONSTRAINT reviews_reason_check
    CHECK (reason IN ('calibration', 'maintenance', 'instrument_fault',
                      'power_or_communication_loss', 'outlier', 'other', 'verified'));
DROP INDEX reviews_active_idx;
CREATE INDEX reviews_active_idx ON reviews (station_id, action) WHERE restored_at IS NULL;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('invalidate', 'accept', 'restore', 'dust_event', 'dust_withdrawn',
                      'publish', 'revision'));

-- Hours read from readings: a station-flagged value counts where an active 'accept' review
-- names its hour; an 'invalidate' review takes the hour out.
CREATE OR REPLACE VIEW readings_hourly AS
SELECT g.station_id, g.parameter, g.bucket, g.mean, g.min, g.max, g.count,
       v.review_id IS NULL
       AND g.count * greatest(g.reading_interval_s, coalesce(c.coverage_s, 0)) >= 2700 AS valid,
       v.review_id AS review_id
FROM (
    SELECT r.station_id, r.parameter, time_bucket('1 hour', r.ts) AS bucket,
           avg(r.value) AS mean, min(r.value) AS min, max(r.value) AS max,
           count(*)::integer AS count, s.reading_interval_s
    FROM readings r JOIN stations s ON s.station_id = r.station_id
    WHERE r.flag = 'valid'
       OR EXISTS (SELECT 1 FROM reviews a
                  WHERE a.station_id = r.station_id AND a.action = 'accept'
                    AND a.restored_at IS NULL AND r.parameter = ANY(a.parameters)
                    AND r.ts >= a.from_ts AND r.ts < a.to_ts)
    GROUP BY r.station_id, r.parameter, time_bucket('1 hour', r.ts), s.reading_interval_s
) g
LEFT JOIN hourly_coverage c
       ON c.station_id = g.station_id AND c.parameter = g.parameter AND c.bucket = g.bucket
LEFT JOIN reviews v
       ON v.station_id = g.station_id AND v.action = 'invalidate' AND v.restored_at IS NULL
      AND g.parameter = ANY(v.parameters) AND g.bucket >= v.from_ts AND g.bucket < v.to_ts;
