-- A value its station flagged (HJ 212-2017 data flags other than N: stopped, maintenance,
-- manual input, fault, calibration, over range, communication problem) is kept with the flag
-- (readings.flag 'invalid', flag_reason 'station:<letter>') and counts toward no hour, day or
-- statistic, like an hour taken out by review (issue 17). The stage skips such readings
-- (storage.aggregation._HOURS_OF_DAYS); hours read from readings do too.
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
    GROUP BY r.station_id, r.parameter, time_bucket('1 hour', r.ts), s.reading_interval_s
) g
LEFT JOIN hourly_coverage c
       ON c.station_id = g.station_id AND c.parameter = g.parameter AND c.bucket = g.bucket
LEFT JOIN reviews v
       ON v.station_id = g.station_id AND v.restored_at IS NULL AND g.parameter = ANY(v.parameters)
      AND g.bucket >= v.from_ts AND g.bucket < v.to_ts;
