-- Effective-dated units (services/core/units.py): a code denotes different units over time
-- (every commune code of 2025-07-01 reuses a predecessor's code) and parents change. The
-- tables hold what the reference files say, row for row; the registry is built from them.
CREATE TABLE unit_rows (
    code         text NOT NULL,
    valid_from   date,            -- NULL: since before the data
    valid_to     date,            -- inclusive; NULL: still valid
    name         text NOT NULL,
    full_name    text NOT NULL,
    kind         text NOT NULL,
    parent_code  text,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from <= valid_to)
);
CREATE UNIQUE INDEX unit_rows_key ON unit_rows (code, COALESCE(valid_from, '0001-01-01'::date));

CREATE TABLE unit_successions (
    old_code   text NOT NULL,
    new_code   text NOT NULL,
    share      text NOT NULL CHECK (share IN ('full', 'partial')),
    effective  date NOT NULL,
    weight     double precision CHECK (weight IS NULL OR (weight > 0 AND weight <= 1)),
    PRIMARY KEY (old_code, new_code, effective)
);

CREATE TABLE unit_population (
    code        text NOT NULL,
    as_of       date NOT NULL,
    population  bigint NOT NULL CHECK (population > 0),
    area_km2    double precision,
    PRIMARY KEY (code, as_of)
);

-- Bumped by every load: services reload the registry when it changes.
CREATE TABLE unit_registry_meta (
    id          integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO unit_registry_meta DEFAULT VALUES;

-- Units loaded before this migration (by the CLI or the reference sync) are kept.
INSERT INTO unit_rows (code, valid_from, valid_to, name, full_name, kind, parent_code)
SELECT code, valid_from, valid_to, name, full_name, kind, parent_code FROM units;
INSERT INTO unit_population (code, as_of, population)
SELECT code, COALESCE(valid_from, DATE '2019-07-01'), population FROM units WHERE population IS NOT NULL;
DROP TABLE units;

-- For SQL users and reports: every code with the unit it denotes last.
CREATE VIEW units AS
SELECT DISTINCT ON (code) code, name, full_name, kind, parent_code, valid_from, valid_to
FROM unit_rows ORDER BY code, valid_from DESC NULLS LAST;
