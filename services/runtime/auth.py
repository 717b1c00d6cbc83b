"""API keys for sector systems (ingest) and operators.

A key reads ``sck_<key_id>_<secret>``. The key id is not secret and finds the row; only a
salted HMAC-SHA256 of the secret is stored, and it is compared in constant time. Keys are
created, listed and revoked with ``smartcity keys …``; every such action is audited.

Verified keys are cached for ``cache_ttl_s`` (default 30 s) so the ingest hot path does not
read PostgreSQL per request; a revocation therefore takes effect within that time.
"""

import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson

from services.core.calendar import local_date
from services.runtime.db import UNAVAILABLE_ERRORS
from services.runtime.problems import Unauthenticated, Unavailable

KeyKind = Literal["ingest", "operator", "connector"]  # connector: every sector topic (services/connectors)
_PREFIX = "sck"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what the key allows."""

    key_id: str
    kind: KeyKind
    label: str
    sector: str | None = None
    units: frozenset[str] | None = None  # ingest, connector: None means every unit
    scope_unit: str | None = None  # operator: the code of the unit whose subtree it may read
    issued_on: dt.date | None = None  # operator: the day of issue (which unit the code denoted)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    principal: Principal


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def new_key() -> tuple[str, str, bytes, bytes]:
    """Generate a key; returns (key, key_id, salt, hash)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return f"{_PREFIX}_{key_id}_{secret}", key_id, salt, _digest(salt, secret)


def parse_key(key: str) -> tuple[str, str] | None:
    """Split a presented key into (key_id, secret); None when it is not shaped like ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or not parts[2]:
        return None
    if not (parts[1].isascii() and parts[1].isalnum()):  # ids are hex: nothing else reaches SQL
        return None
    return parts[1], parts[2]


def verify(secret: str, salt: bytes, stored: bytes) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(_digest(salt, secret), stored)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header; raises Unauthenticated."""
    if not authorization:
        raise Unauthenticated("missing Authorization header (expected 'Bearer <key>')")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <key>'")
    return token.strip()


def _principal(row: asyncpg.Record | dict[str, Any]) -> Principal:
    units = row["units"]
    created: dt.datetime | None = row.get("created_at") if isinstance(row, dict) else row["created_at"]
    return Principal(
        key_id=row["key_id"],
        kind=row["kind"],
        label=row["label"],
        sector=row["sector"],
        units=frozenset(units) if units is not None else None,
        scope_unit=row["scope_unit"],
        issued_on=local_date(created) if created is not None else None,
    )


class KeyStore:
    """Authenticates bearer keys against ``api_keys``, with a short positive cache."""

    def __init__(self, pool: asyncpg.Pool, cache_ttl_s: float = 30.0) -> None:
        self._pool = pool
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """Return the principal of a valid, unrevoked key; raise Unauthenticated otherwise."""
        token = bearer_token(authorization)
        cached = self._cache.get(token)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        parsed = parse_key(token)
        if parsed is None:
            raise Unauthenticated("unknown credential")
        key_id, secret = parsed
        try:
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id)
        except (*UNAVAILABLE_ERRORS, asyncpg.PostgresConnectionError) as exc:
            raise Unavailable("the credential store is not reachable") from exc
        if row is None or not verify(secret, row["salt"], row["hash"]):
            self._cache.pop(token, None)
            raise Unauthenticated("unknown credential")
        principal = _principal(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now, principal)
        return principal


async def audit(conn: asyncpg.Connection, actor: str, action: str, key_id: str | None, **detail: Any) -> None:
    """Append one line to the audit log."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, key_id, detail) VALUES ($1, $2, $3, $4::text::jsonb)",
        actor,
        action,
        key_id,
        orjson.dumps(detail).decode(),
    )


async def create_key(
    conn: asyncpg.Connection,
    *,
    kind: KeyKind,
    label: str,
    sector: str | None = None,
    units: list[str] | None = None,
    scope_unit: str | None = None,
    actor: str = "cli",
) -> IssuedKey:
    """Create and audit a key; the returned plaintext key is the only copy."""
    key, key_id, salt, digest = new_key()
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO api_keys (key_id, kind, label, sector, units, scope_unit, salt, hash)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
            key_id,
            kind,
            label,
            sector,
            units,
            scope_unit,
            salt,
            digest,
        )
        await audit(
            conn,
            actor,
            "key.created",
            key_id,
            kind=kind,
            label=label,
            sector=sector,
            units=units,
            scope_unit=scope_unit,
        )
    assert row is not None
    return IssuedKey(key=key, principal=_principal(row))


async def revoke_key(conn: asyncpg.Connection, key_id: str, actor: str = "cli") -> bool:
    """Revoke a key; False when no active key has that id."""
    async with conn.transaction():
        status = await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
            key_id,
        )
        revoked = status.endswith(" 1")
        if revoked:
            await audit(conn, actor, "key.revoked", key_id)
    return revoked


async def list_keys(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every key without its hash, newest first."""
    rows = await conn.fetch(
        "SELECT key_id, kind, label, sector, units, scope_unit, created_at, revoked_at "
        "FROM api_keys ORDER BY created_at DESC"
    )
    return [dict(r) for r in rows]
