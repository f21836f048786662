-- Water sections belong to a river basin (Yangtze, Yellow River, …): basin grades (GB 3838
-- evaluation method) are reported per basin.
ALTER TABLE stations ADD COLUMN basin text;
CREATE INDEX stations_basin_idx ON stations (basin) WHERE basin IS NOT NULL;
-- Reports read one parameter's valid days of one year for every station; this covering
-- index replaces the plain one of 0001.
DROP INDEX readings_daily_day_idx;
CREATE INDEX readings_daily_parameter_day_valid_idx ON readings_daily (parameter, day)
    INCLUDE (station_id, mean) WHERE valid;
