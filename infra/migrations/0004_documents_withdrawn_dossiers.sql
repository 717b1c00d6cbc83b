-- Documents become entities, like dossiers: one row per document, so a document reported
-- again (a status update, a re-sent message, an amended issue) counts once and a revoked one
-- no longer counts (services/core/kpis/documents.py). Counters written before this
-- migration were counted per event and are kept as they are.
CREATE TABLE documents (
    document_id              text PRIMARY KEY,
    sector                   text NOT NULL,
    unit_code                text NOT NULL,
    direction                text CHECK (direction IN ('incoming', 'outgoing')),
    registered_at            timestamptz,
    received_electronically  boolean NOT NULL DEFAULT false,
    processed_on_system      boolean NOT NULL DEFAULT false,
    agency_signed            boolean NOT NULL DEFAULT false,
    personal_signed          boolean NOT NULL DEFAULT false,
    flags_at                 timestamptz,
    revoked_at               timestamptz,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- A dossier withdrawn by the applicant or stopped by the office leaves processing unresolved.
ALTER TABLE dossiers ADD COLUMN withdrawn_at timestamptz, ADD COLUMN withdrawal_reason text
    CHECK (withdrawal_reason IN ('withdrawn', 'stopped'));
