-- Alerts: KPIs crossing their thresholds and units gone silent (services.alerts).
--
-- An alert is opened by a rule for one unit. `dedupe_key` is '<rule>|<unit>' while the alert
-- is open or acknowledged and NULL once it is closed, so "one live alert per (rule, unit)" is
-- a unique constraint and opening is INSERT ... ON CONFLICT (dedupe_key) DO NOTHING: a worker
-- that replays a transition after a crash cannot open a second alert.
CREATE TABLE alerts (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('threshold', 'silence')),
    rule_id          text NOT NULL,
    unit_code        text NOT NULL,
    sector           text,
    kpi              text,           -- threshold alerts: the KPI watched
    family           text,           -- silence alerts: the event family watched
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'closed')),
    opened_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    closed_at        timestamptz,
    details          jsonb NOT NULL DEFAULT '{}',  -- value, thresholds, window, silence...
    dedupe_key       text UNIQUE,
    CHECK ((state = 'closed') = (dedupe_key IS NULL)),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL)),
    CHECK (kind <> 'threshold' OR kpi IS NOT NULL),
    CHECK (kind <> 'silence' OR family IS NOT NULL)
);
CREATE INDEX alerts_state_unit ON alerts (state, unit_code, id);
CREATE INDEX alerts_unit ON alerts (unit_code, id);

-- Everything that happened to an alert, in order.
CREATE TABLE alert_history (
    id        bigserial PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts (id),
    at        timestamptz NOT NULL,
    action    text NOT NULL CHECK (action IN ('opened', 'acknowledged', 'closed', 'notified')),
    actor     text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

-- The outbox of notifications: one row per (alert, target, event), written in the same
-- transaction as the transition that causes it. The unique constraint makes notifying twice
-- impossible; a row without delivered_at is retried (with backoff) until it is delivered, so
-- a restart never loses a pending notification. `webhook` is a URL, or 'topic:<name>' for the
-- alerts topic. `payload` is the exact body sent (the signature covers these bytes).
CREATE TABLE alert_deliveries (
    id               bigserial PRIMARY KEY,
    alert_id         bigint NOT NULL REFERENCES alerts (id),
    webhook          text NOT NULL,
    event            text NOT NULL CHECK (event IN ('opened', 'closed')),
    delivery_id      text NOT NULL,
    payload          text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (alert_id, webhook, event)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
