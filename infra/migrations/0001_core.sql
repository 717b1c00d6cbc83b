-- Core schema: reference data, credentials, audit, counters, aggregator offsets and dedupe,
-- entity state. Applied once by infra.migrate, recorded in schema_migrations.

-- Administrative units with validity dates (reference data, synced from infra/reference).
CREATE TABLE units (
    code         text PRIMARY KEY,
    name         text NOT NULL,
    full_name    text NOT NULL,
    kind         text NOT NULL,
    level        smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    parent_code  text REFERENCES units (code),
    valid_from   date,
    valid_to     date,
    population   bigint CHECK (population IS NULL OR population > 0),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from <= valid_to)
);

-- API keys of sector systems (ingest) and operators. Only a salted hash is stored; the key id
-- is the non-secret prefix of the key and is how a key is found.
CREATE TABLE api_keys (
    key_id       text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('ingest', 'operator')),
    label        text NOT NULL,
    sector       text,           -- ingest: the one sector the key may send
    units        text[],         -- ingest: unit codes it may send for (NULL: every unit)
    scope_unit   text,           -- operator: the unit (and descendants) it may read
    salt         bytea NOT NULL,
    hash         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (kind <> 'ingest' OR sector IS NOT NULL),
    CHECK (kind <> 'operator' OR scope_unit IS NOT NULL)
);

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    key_id   text,
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Additive counters at three grains. A counter row is written for the unit named by the
-- event and for every ancestor it had at event time, so any unit's total is one row read.
-- Hours are UTC hours (Vietnam has no DST, so they align with local hours); days and months
-- are calendar days and months in Asia/Ho_Chi_Minh.
CREATE TABLE counters_hourly (
    unit_code  text NOT NULL,
    metric     text NOT NULL,
    sector     text NOT NULL,
    bucket     timestamptz NOT NULL,
    value      bigint NOT NULL,
    PRIMARY KEY (unit_code, metric, sector, bucket)
);
CREATE TABLE counters_daily (
    unit_code  text NOT NULL,
    metric     text NOT NULL,
    sector     text NOT NULL,
    bucket     date NOT NULL,
    value      bigint NOT NULL,
    PRIMARY KEY (unit_code, metric, sector, bucket)
);
CREATE TABLE counters_monthly (
    unit_code  text NOT NULL,
    metric     text NOT NULL,
    sector     text NOT NULL,
    bucket     date NOT NULL,
    value      bigint NOT NULL,
    PRIMARY KEY (unit_code, metric, sector, bucket)
);

-- The aggregator's own offsets: the next offset to read per partition, written in the same
-- transaction as the counter deltas. `generation` is bumped by every consumer that takes a
-- partition over; a commit whose expected generation no longer matches fails (fencing).
CREATE TABLE consumer_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,
    topic_id        text,           -- the topic's id when the offset was stored (reset detection)
    generation      bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Deduplication: one row per (source, id) counted, keyed by a 128-bit digest of the pair.
-- Rows older than the dedupe horizon are deleted by the aggregator's housekeeping.
CREATE TABLE seen_events (
    event_key   bytea PRIMARY KEY,       -- 16-byte BLAKE2b digest of source NUL id
    first_seen  date NOT NULL
);
CREATE INDEX seen_events_first_seen ON seen_events (first_seen);

-- Entity state: one row per dossier, updated by its events.
CREATE TABLE dossiers (
    dossier_id        text PRIMARY KEY,
    sector            text NOT NULL,
    unit_code         text NOT NULL,
    received_at       timestamptz,
    due_at            timestamptz,
    channel           text,
    procedure_code    text,
    fee_required      boolean,
    digitised         boolean,
    reused_data       boolean,
    supplement_count  integer NOT NULL DEFAULT 0,
    paused_seconds    bigint NOT NULL DEFAULT 0,
    pause_started_at  timestamptz,
    resolved_at       timestamptz,
    e_result          boolean,
    paid_online       boolean,
    satisfied         boolean,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- "Open and overdue now" and "open, not yet due" read only open dossiers.
CREATE INDEX dossiers_open ON dossiers (unit_code, received_at)
    WHERE resolved_at IS NULL AND received_at IS NOT NULL;

CREATE TABLE projects (
    project_id            text PRIMARY KEY,
    sector                text NOT NULL,
    unit_code             text NOT NULL,
    title                 text,
    stage                 text,
    stage_changed_at      timestamptz,
    planned_completion    date,
    percent_complete      double precision,
    planned_percent       double precision,
    progress_reported_at  timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_unit ON projects (unit_code);

-- The KPI registry file, mirrored for SQL users and reports.
CREATE TABLE kpi_definitions (
    id          text PRIMARY KEY,
    version     text NOT NULL,
    definition  jsonb NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);
