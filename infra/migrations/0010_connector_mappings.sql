-- Connectors (services/connectors): the mappings the province loads as data, what the DVCQG
-- connector knows per dossier, and a third kind of API key.

-- Mappings: procedure field -> sector, organ code -> unit, handling agency -> unit, health
-- facility -> unit. Loaded from CSV files (infra/reference/connectors/ is a starter set) by
-- services.connectors.adapters.mapping_store.load_mappings; one file replaces one kind.
CREATE TABLE connector_mappings (
    kind       text NOT NULL CHECK (kind IN ('procedure_fields', 'organs', 'agencies', 'facilities')),
    key        text NOT NULL,           -- normalised (agency names: case- and space-folded)
    unit_code  text,                    -- organs, agencies, facilities
    sector     text,                    -- procedure_fields (required), organs (optional)
    flag       boolean NOT NULL DEFAULT false,  -- facilities: keeps electronic medical records
    label      text NOT NULL DEFAULT '',
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key),
    CHECK (kind = 'procedure_fields' OR unit_code IS NOT NULL),
    CHECK (kind <> 'procedure_fields' OR sector IS NOT NULL)
);

-- What the DVCQG connector learnt about each dossier, merged from every snapshot and progress
-- step (statuses, times, flags; never a name or an identity number), and the ids of the
-- events already acknowledged by the broker. Lets an older snapshot arriving late change
-- nothing, and lets the "add" URL answer "already exists".
CREATE TABLE connector_dossiers (
    dossier_id   text PRIMARY KEY,
    facts        jsonb NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Connector keys publish to every sector topic (optionally restricted to units).
ALTER TABLE api_keys DROP CONSTRAINT api_keys_kind_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind_check CHECK (kind IN ('ingest', 'operator', 'connector'));
