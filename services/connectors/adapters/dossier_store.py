"""``connector_dossiers``: what the DVCQG connector knows per dossier.

A request locks the rows of its dossiers (in key order: no deadlock between requests) for
the time of its publish, so two requests about one dossier merge one after the other."""

from typing import Any

import asyncpg

from services.connectors.dossier_state import DossierFacts


async def lock_facts(conn: asyncpg.Connection, dossier_ids: list[str]) -> dict[str, DossierFacts]:
    """The stored facts of these dossiers, rows locked until the transaction ends. Dossiers
    not yet stored get a row lock too (an empty row is inserted, removed if never filled)."""
    ids = sorted(set(dossier_ids))
    await conn.execute(
        "INSERT INTO connector_dossiers (dossier_id, facts) SELECT unnest($1::text[]), '{}'::jsonb "
        "ON CONFLICT (dossier_id) DO NOTHING",
        ids,
    )
    rows = await conn.fetch(
        "SELECT dossier_id, facts FROM connector_dossiers WHERE dossier_id = ANY($1::text[]) "
        "ORDER BY dossier_id FOR UPDATE",
        ids,
    )
    out = {}
    for row in rows:
        facts: dict[str, Any] = row["facts"]
        out[row["dossier_id"]] = DossierFacts.from_json(facts) if facts else DossierFacts(row["dossier_id"])
    return out


async def save_facts(conn: asyncpg.Connection, facts: list[DossierFacts]) -> None:
    if facts:
        await conn.executemany(
            "UPDATE connector_dossiers SET facts = $2::text::jsonb, updated_at = now() WHERE dossier_id = $1",
            [(f.dossier_id, _json(f)) for f in facts],
        )


async def drop_empty(conn: asyncpg.Connection, dossier_ids: list[str]) -> None:
    """Remove placeholder rows that nothing was written to (a failed first request)."""
    await conn.execute(
        "DELETE FROM connector_dossiers WHERE dossier_id = ANY($1::text[]) AND facts = '{}'::jsonb", dossier_ids
    )


def _json(facts: DossierFacts) -> str:
    import orjson

    return orjson.dumps(facts.to_json()).decode()
