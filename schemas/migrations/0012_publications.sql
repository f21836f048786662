-- Published years: an admin publishes a year's annual report (air and/or water); the figures
-- are kept as they were. A later change that would alter them (a late reading, a review
-- action, a registry change) adds a revision with the difference instead of changing what
-- was published (reports.publications).

-- One row per revision of a published (kind, year); revision 1 is the publication itself.
-- figures: the report's JSON without its as_of (kept in its own column); air: the report of
-- each parameter of reports.air.AIR_REPORT_PARAMETERS, by parameter. difference: for a
-- revision, every changed value as {path, published, current} against the revision before.
CREATE TABLE publications (
    kind        text NOT NULL CHECK (kind IN ('air', 'water')),
    year        integer NOT NULL,
    revision    integer NOT NULL CHECK (revision >= 1),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by  text NOT NULL,
    cause       text NOT NULL CHECK (cause IN ('publish', 'revision')),
    as_of       timestamptz NOT NULL,
    figures     jsonb NOT NULL,
    difference  jsonb,
    PRIMARY KEY (kind, year, revision),
    CHECK ((revision = 1) = (cause = 'publish')),
    CHECK ((revision = 1) = (difference IS NULL))
);

-- What was published stays as it was: rows are appended, never updated or deleted.
CREATE FUNCTION publications_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'publications are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER publications_append_only BEFORE UPDATE OR DELETE ON publications
    FOR EACH ROW EXECUTE FUNCTION publications_are_append_only();

-- The stamp of the kept levels a published (kind, year) was last compared at: a check skips
-- the year while it is unchanged, so that it costs one small query per published year.
CREATE TABLE publication_checks (
    kind        text NOT NULL,
    year        integer NOT NULL,
    stamp       text NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kind, year)
);
