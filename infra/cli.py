"""``smartcity`` - the operations CLI: migrations, topics, API keys.

Reads ``DATABASE_URL`` and ``KAFKA_*`` like the services do.
"""

import asyncio
import json
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from infra.migrate import migrate as run_migrations
from infra.topics import provision_topics
from services.connectors.mappings import KINDS, MappingFileError
from services.runtime.auth import create_key, list_keys, revoke_key
from services.runtime.settings import DatabaseSettings, KafkaSettings

app = typer.Typer(help="Operate the Thanh Hoa smart-city KPI backend.", no_args_is_help=True)
keys = typer.Typer(help="API keys of sector systems, connectors and operators.", no_args_is_help=True)
app.add_typer(keys, name="keys")
mappings = typer.Typer(help="The connectors' mappings: procedure fields, organs, agencies, facilities.")
app.add_typer(mappings, name="mappings")
units = typer.Typer(help="Administrative units: load unit, succession and population files.", no_args_is_help=True)
app.add_typer(units, name="units")


@units.command("load")
def units_load(
    files: Annotated[list[Path], typer.Argument(help="Unit, succession or population CSV files (by their columns).")],
) -> None:
    """Load files like those of infra/reference (a reorganisation: the ended units with their
    last day, the new units, the succession links) into the registry, while the stack runs:
    services pick it up within seconds. Nothing is written if the result contradicts itself."""
    from services.core.units import UnitDataError
    from services.runtime.units import read_files, store_units

    async def run() -> str:
        conn = await asyncpg.connect(_dsn())
        try:
            report = await store_units(conn, read_files(files))
        finally:
            await conn.close()
        return (
            f"rows: {report.rows}, successions: {report.successions}, population: {report.population} "
            f"changed; registry version {report.version}"
        )

    try:
        typer.echo(asyncio.run(run()))
    except (UnitDataError, KeyError, ValueError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None


def _dsn() -> str:
    return DatabaseSettings().url.get_secret_value()


@app.command()
def migrate() -> None:
    """Apply pending migrations and sync reference data (idempotent)."""
    report = asyncio.run(run_migrations(_dsn()))
    typer.echo(f"applied: {', '.join(report.applied) or 'nothing'}; units changed: {report.units_changed}")


@app.command()
def topics() -> None:
    """Create missing Kafka topics (idempotent)."""
    report = provision_topics(KafkaSettings())
    typer.echo(f"created: {', '.join(report.created) or 'nothing'}; existing: {len(report.existing)}")
    for line in report.drift:
        typer.echo(f"drift: {line}", err=True)


@app.command()
def rebuild(
    group: Annotated[str, typer.Option(help="The live aggregator's consumer group.")] = "kpi-aggregator",
    schema: Annotated[str | None, typer.Option(help="Schema to rebuild into (default: rebuild_<time>).")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the rebuilt schema for inspection.")] = False,
) -> None:
    """Rebuild counters and entity state from the Kafka topics into a fresh schema and
    compare them with the live tables; exit 1 when they differ."""
    from infra.rebuild import rebuild as run_rebuild

    report = asyncio.run(run_rebuild(_dsn(), KafkaSettings(), group=group, schema=schema, keep=keep))
    typer.echo(f"read {report.events_read} events ({report.poison} poison) into schema {report.schema}")
    for table, count in report.differences.items():
        typer.echo(f"  {table}: {'identical' if count == 0 else f'{count} rows differ'}")
        for sample in report.samples.get(table, []):
            typer.echo(f"      {sample}")
    if not report.identical:
        raise typer.Exit(1)


@mappings.command("load")
def mappings_load(
    path: Annotated[str, typer.Argument(help="A mapping CSV file, or a folder of <kind>.csv files.")],
    kind: Annotated[str | None, typer.Option(help="The file's kind (a file only): " + ", ".join(KINDS))] = None,
) -> None:
    """Replace a kind of mapping with a file's rows (or every kind with a folder's files), in one
    transaction per kind; a row naming a unit the registry does not know refuses the file."""
    from services.connectors.adapters.mapping_store import load_directory, load_mappings

    folder = Path(path).is_dir()

    async def run() -> dict[str, int]:
        conn = await asyncpg.connect(_dsn())
        try:
            if folder:
                return await load_directory(conn, path)
            if kind is None:
                raise typer.BadParameter("--kind is needed for a file: " + ", ".join(KINDS))
            return {kind: await load_mappings(conn, kind, path)}
        finally:
            await conn.close()

    try:
        loaded = asyncio.run(run())
    except MappingFileError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("; ".join(f"{k}: {n} rows" for k, n in loaded.items()) or "nothing to load")


@keys.command("create")
def keys_create(
    kind: Annotated[str, typer.Option(help="ingest, operator or connector")],
    label: Annotated[str, typer.Option(help="Who holds the key (system or person role).")],
    sector: Annotated[str | None, typer.Option(help="ingest: the sector it sends")] = None,
    unit: Annotated[list[str] | None, typer.Option(help="ingest, connector: a unit it may send for (repeat)")] = None,
    scope: Annotated[str | None, typer.Option(help="operator: unit code it may read")] = None,
) -> None:
    """Create a key and print it once; only its salted hash is stored."""
    if kind not in ("ingest", "operator", "connector"):
        raise typer.BadParameter("kind must be 'ingest', 'operator' or 'connector'")
    if kind == "ingest" and sector not in ("education", "health", "transport", "culture"):
        raise typer.BadParameter("an ingest key needs --sector education|health|transport|culture")
    if kind == "operator" and not scope:
        raise typer.BadParameter("an operator key needs --scope <unit code> (38: the province)")

    async def run() -> str:
        conn = await asyncpg.connect(_dsn())
        try:
            issued = await create_key(
                conn,
                kind=kind,
                label=label,
                sector=sector if kind == "ingest" else None,  # type: ignore[arg-type]
                units=unit or None if kind in ("ingest", "connector") else None,
                scope_unit=scope if kind == "operator" else None,
            )
            return issued.key
        finally:
            await conn.close()

    typer.echo(asyncio.run(run()))


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets) as JSON lines."""

    async def run() -> list[dict[str, object]]:
        conn = await asyncpg.connect(_dsn())
        try:
            return await list_keys(conn)
        finally:
            await conn.close()

    for row in asyncio.run(run()):
        typer.echo(json.dumps(row, default=str))


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after 'sck_')."""

    async def run() -> bool:
        conn = await asyncpg.connect(_dsn())
        try:
            return await revoke_key(conn, key_id)
        finally:
            await conn.close()

    if not asyncio.run(run()):
        typer.echo(f"no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


if __name__ == "__main__":
    app()
