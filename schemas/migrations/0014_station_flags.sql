-- A value its station flagged (HJ 212-2017 data flags other than N: stopped, maintenance,
-- fault, calibration, over range, communication problem) is kept with the flag
-- (readings.flag 'invalid', flag_reason 'station:<letter>') and counts toward no hour, day or
-- statistic (issue 17), unless a reviewer overrules it with a review of action 'accept'
-- (0010). The stage applies the same rules (storage.aggregation._HOURS_OF_DAYS).
-- Hours read from readings (series, AQI): a station-flagged value counts only where an
-- active 'accept' review names its hour; an 'invalidate' review takes the hour out (valid
-- false, review_id says which).
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
