-- The daily statistics of the HJ 663 assessment and the HJ 633 daily AQI, kept by the
-- aggregation stage (issue 15).
--
-- O3 daily maximum 8-hour mean (STANDARDS.md §3a): no new table. Every station-day of 'o3'
-- has its twin of parameter 'o3_8h' in readings_daily (storage.aggregation.INSERT_O3_8H_DAYS),
-- which city_daily, station_yearly and city_yearly keep like any daily value:
--   mean = max  the largest valid 8-hour mean among the windows lying inside the local day
--               (starting 00:00 … 16:00; a window is valid with >= 6 valid hours), NULL when
--               no window is valid;
--   min         the smallest valid 8-hour mean;
--   valid_hours the valid windows (of 17); hours: the windows holding any data;
--   valid       >= 14 valid windows, or fewer with a maximum above the GB 3095 Grade II
--               8-hour limit in force that day.
-- Its yearly percentile is the 90th, and days_over_limit counts days above the 8-hour
-- limit; the 'o3' daily means (of hours) have no percentile.

-- A city's daily AQI (HJ 633, the version in force that day, Beijing date), from the mean
-- over its air stations of each one's valid daily AQI input, as GET /v1/cities/{code}/aqi
-- gives it (storage.aqi_queries.STATION_DAY_AQI_INPUTS, standards.aqi.daily_aqi). A city-day
-- has a row when its AQI is computable, or when a rule makes it not computable (aqi NULL,
-- not_computable says why: HJ 633-2012, an O3 8-hour mean above 800 without an O3 1-hour
-- value); a city-day without any input the version reads has none.
CREATE TABLE city_daily_aqi (
    city_code           text NOT NULL,
    day                 date NOT NULL,             -- the stations' local calendar day
    aqi                 integer,                   -- rounded up; NULL: not computable
    version             text NOT NULL,             -- e.g. 'HJ 633-2026'
    primary_pollutants  text[] NOT NULL,           -- empty at AQI <= 50 (HJ 633 §4.3)
    beyond_index        boolean NOT NULL,          -- a top level exceeded ("500+")
    not_computable      text,
    missing             text[] NOT NULL,           -- pollutants without a valid value
    PRIMARY KEY (city_code, day),
    CHECK ((aqi IS NULL) = (not_computable IS NOT NULL))
);

-- Rebuild the derived levels of an existing database (o3_8h days, city daily AQIs):
-- `airwater migrate` runs the stage until this queue is empty. A station whose whole-station
-- row 0008 queued is not queued twice.
INSERT INTO aggregation_queue (station_id)
SELECT s.station_id FROM stations s
WHERE NOT EXISTS (SELECT 1 FROM aggregation_queue q
                  WHERE q.station_id = s.station_id AND q.day IS NULL)
ORDER BY s.station_id;
