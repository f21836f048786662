-- Journal of `airwater import` (issue 8): one row per imported file, keyed by its content.
-- Progress is updated in the transaction that stores a batch, so after a crash a re-run
-- resumes exactly after the last committed batch; a finished file is skipped at once.
CREATE TABLE imports (
    sha256           bytea PRIMARY KEY,               -- of the file's content
    size             bigint NOT NULL,                 -- bytes
    name             text NOT NULL,                   -- file name when first imported
    format           text NOT NULL,                   -- long | parquet | wide
    rows_done        bigint NOT NULL DEFAULT 0,       -- data rows committed (header excluded)
    bytes_done       bigint NOT NULL DEFAULT 0,       -- offset after those rows (text formats)
    readings_stored  bigint NOT NULL DEFAULT 0,
    duplicates       bigint NOT NULL DEFAULT 0,       -- readings that were stored already
    empty_cells      bigint NOT NULL DEFAULT 0,
    derived_skipped  bigint NOT NULL DEFAULT 0,       -- *_24h, *_8h, AQI cells of the wide layout
    rejected         jsonb NOT NULL DEFAULT '{}',     -- reason -> readings dead-lettered
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
