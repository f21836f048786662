-- National scale (issue 8). Measured with bench/national.py (BENCHMARKS.md, "National scale").
--
-- Chunk intervals stay as 0001 made them: readings 7 days, readings_hourly 30 days.
-- Measured with one year of hourly PM2.5 of the national network (1,734 stations): a readings
-- chunk is ~35 MiB (unique index ~14 MiB), an hourly chunk ~195 MiB (index ~80 MiB). With
-- all six air pollutants that is ~210 MiB and ~1.2 GiB, and the indexes of the current chunk
-- of each (~85 + ~480 MiB) fit in a quarter of a 4 GiB server, TimescaleDB's sizing advice.
-- A station's year of readings is 53 index probes, ~40 ms. On a smaller server, shorten the
-- hourly chunks: SELECT set_chunk_time_interval('readings_hourly', INTERVAL '7 days').
--
-- Indexes: every series query names the station (unique (station_id, parameter,
-- ts|bucket)); the reports read readings_daily through (parameter, day) INCLUDE (station_id,
-- mean) WHERE valid (0002) or a parallel scan. EXPLAIN ANALYZE at national scale shows no
-- missing index: a report's cost is aggregating ~630 k (air) or ~960 k (water) daily rows and
-- building ~2,000-3,600 report rows, 3-6 s here, so the reports are cached, exactly, below.

-- Cached annual reports. A cached report is served only while no transaction that changed
-- its year's daily rollups, or the station registry, has committed outside the snapshot it
-- was computed from; every writer stamps its transaction id here through the triggers below.
CREATE TABLE report_cache (
    kind         text NOT NULL,              -- 'air:pm25', 'air:pm10', …, 'water'
    year         integer NOT NULL,
    rules        text NOT NULL,              -- fingerprint of the code that computed it
    snapshot     pg_snapshot NOT NULL,       -- taken before the report's first query
    body         text NOT NULL,              -- the report as JSON
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, year)
);

-- The last transaction that changed each year's daily rollups (year 0: every year — the
-- registry changed, or rollups were truncated). One row per year and stripe: a writer uses
-- the stripe of its backend, so concurrent ingest workers rarely wait on the same row, and a
-- row's last writer committed after every earlier one (it waited for their row lock).
CREATE TABLE report_changes (
    year    integer NOT NULL,
    stripe  integer NOT NULL,
    xid     xid8 NOT NULL,
    PRIMARY KEY (year, stripe)
);

CREATE FUNCTION report_changes_of_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_changes (year, stripe, xid)
    SELECT DISTINCT extract(year FROM day)::integer, pg_backend_pid() % 16, pg_current_xact_id()
    FROM changed_days
    ORDER BY 1
    ON CONFLICT (year, stripe) DO UPDATE SET xid = excluded.xid;
    RETURN NULL;
END
$$;

CREATE FUNCTION report_changes_of_everything() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_changes (year, stripe, xid)
    VALUES (0, pg_backend_pid() % 16, pg_current_xact_id())
    ON CONFLICT (year, stripe) DO UPDATE SET xid = excluded.xid;
    RETURN NULL;
END
$$;

CREATE TRIGGER readings_daily_inserted AFTER INSERT ON readings_daily
    REFERENCING NEW TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION report_changes_of_days();
CREATE TRIGGER readings_daily_updated AFTER UPDATE ON readings_daily
    REFERENCING NEW TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION report_changes_of_days();
CREATE TRIGGER readings_daily_deleted AFTER DELETE ON readings_daily
    REFERENCING OLD TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION report_changes_of_days();
CREATE TRIGGER readings_daily_truncated AFTER TRUNCATE ON readings_daily
    FOR EACH STATEMENT EXECUTE FUNCTION report_changes_of_everything();
CREATE TRIGGER stations_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON stations
    FOR EACH STATEMENT EXECUTE FUNCTION report_changes_of_everything();

-- Compression of old chunks exists only in the community build (SHOW timescaledb.license =
-- 'timescale'); the Apache build keeps chunks as they are and drops old ones with
-- `airwater retention --older-than …` (drop_chunks). Late readings may still arrive for a
-- compressed chunk: TimescaleDB >= 2.11 inserts into compressed chunks.
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        EXECUTE 'ALTER TABLE readings SET (timescaledb.compress, '
                'timescaledb.compress_segmentby = ''station_id, parameter'', '
                'timescaledb.compress_orderby = ''ts'')';
        PERFORM add_compression_policy('readings', INTERVAL '30 days');
        EXECUTE 'ALTER TABLE readings_hourly SET (timescaledb.compress, '
                'timescaledb.compress_segmentby = ''station_id, parameter'', '
                'timescaledb.compress_orderby = ''bucket'')';
        PERFORM add_compression_policy('readings_hourly', INTERVAL '90 days');
    END IF;
END
$$;
