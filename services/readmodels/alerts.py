"""PostgreSQL side of alerts: transitions, the notification outbox, reads for the API.

Every transition is one transaction: the alert row, its history line and one outbox row per
notification target (``alert_deliveries``). Opening is ``INSERT … ON CONFLICT (dedupe_key)
DO NOTHING`` and closing is ``UPDATE … WHERE dedupe_key = …``, so replaying a transition
(at-least-once processing after a crash) changes nothing and notifies nobody twice.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

Payload = Callable[[asyncpg.Record, str, str], str]  # (alert row, event, delivery id) → body

_ALERT_COLUMNS = (
    "id, kind, rule_id, unit_code, sector, kpi, family, state, opened_at, acknowledged_at, "
    "acknowledged_by, closed_at, details"
)


def dedupe_key(rule_id: str, unit: str) -> str:
    return f"{rule_id}|{unit}"


def delivery_id(alert_id: int, event: str) -> str:
    """Stable per (alert, event): the same for every target and every retry."""
    return f"alert-{alert_id}-{event}"


@dataclass(frozen=True, slots=True)
class NewAlert:
    kind: str
    rule_id: str
    unit: str
    sector: str | None
    kpi: str | None
    family: str | None
    details: dict[str, Any]


class AlertStore:
    def __init__(self, pool: asyncpg.Pool, targets: Sequence[str] = (), payload: Payload | None = None) -> None:
        self.pool = pool
        self.targets = list(targets)
        self.payload = payload

    # -- transitions (the worker) --------------------------------------------------------
    async def open(self, alert: NewAlert, at: dt.datetime) -> asyncpg.Record | None:
        """Open an alert; None when one is already live for (rule, unit)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""INSERT INTO alerts (kind, rule_id, unit_code, sector, kpi, family, state, opened_at,
                                        details, dedupe_key)
                    VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8::jsonb, $9)
                    ON CONFLICT (dedupe_key) DO NOTHING RETURNING {_ALERT_COLUMNS}""",
                alert.kind,
                alert.rule_id,
                alert.unit,
                alert.sector,
                alert.kpi,
                alert.family,
                at,
                alert.details,
                dedupe_key(alert.rule_id, alert.unit),
            )
            if row is None:
                return None
            await self._history(conn, row["id"], at, "opened", "alerts", alert.details)
            await self._enqueue(conn, row, "opened")
            return row

    async def close(self, rule_id: str, unit: str, at: dt.datetime, detail: dict[str, Any]) -> asyncpg.Record | None:
        """Close the live alert of (rule, unit); None when there is none."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE alerts SET state = 'closed', closed_at = $2, dedupe_key = NULL,
                           details = details || jsonb_build_object('closing', $3::jsonb)
                    WHERE dedupe_key = $1 RETURNING {_ALERT_COLUMNS}""",
                dedupe_key(rule_id, unit),
                at,
                detail,
            )
            if row is None:
                return None
            await self._history(conn, row["id"], at, "closed", "alerts", detail)
            await self._enqueue(conn, row, "closed")
            return row

    async def refresh(self, rule_id: str, unit: str, detail: dict[str, Any]) -> None:
        """Record the latest evaluation on a live alert (no history, no notification)."""
        await self.pool.execute(
            "UPDATE alerts SET details = details || $2::jsonb WHERE dedupe_key = $1",
            dedupe_key(rule_id, unit),
            detail,
        )

    async def live(self, kind: str) -> dict[tuple[str, str], int]:
        """(rule, unit) → id of every open or acknowledged alert of a kind."""
        rows = await self.pool.fetch(
            "SELECT id, rule_id, unit_code FROM alerts WHERE kind = $1 AND state <> 'closed'", kind
        )
        return {(r["rule_id"], r["unit_code"]): r["id"] for r in rows}

    @staticmethod
    async def _history(
        conn: asyncpg.Connection, alert_id: int, at: dt.datetime, action: str, actor: str, detail: dict[str, Any]
    ) -> None:
        await conn.execute(
            "INSERT INTO alert_history (alert_id, at, action, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
            alert_id,
            at,
            action,
            actor,
            detail,
        )

    async def _enqueue(self, conn: asyncpg.Connection, row: asyncpg.Record, event: str) -> None:
        if self.payload is None:
            return
        ident = delivery_id(row["id"], event)
        body = self.payload(row, event, ident)
        for target in self.targets:
            await conn.execute(
                """INSERT INTO alert_deliveries (alert_id, webhook, event, delivery_id, payload)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alert_id, webhook, event) DO NOTHING""",
                row["id"],
                target,
                event,
                ident,
                body,
            )

    # -- the outbox (the delivery loop) ----------------------------------------------------
    async def claim_due(self, limit: int, lease_s: float) -> list[asyncpg.Record]:
        """Undelivered notifications that are due, leased for ``lease_s`` (another worker
        skips them meanwhile). Oldest first."""
        return await self.pool.fetch(
            """UPDATE alert_deliveries SET next_attempt_at = clock_timestamp() + make_interval(secs => $2)
               WHERE id IN (SELECT id FROM alert_deliveries
                             WHERE delivered_at IS NULL AND next_attempt_at <= clock_timestamp()
                             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING id, alert_id, webhook, event, delivery_id, payload, attempts""",
            limit,
            lease_s,
        )

    async def delivered(self, delivery: asyncpg.Record, at: dt.datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                """UPDATE alert_deliveries SET delivered_at = clock_timestamp(), attempts = attempts + 1,
                          last_error = NULL
                   WHERE id = $1 AND delivered_at IS NULL""",
                delivery["id"],
            )
            if done.endswith(" 1"):
                detail = {
                    "target": delivery["webhook"],
                    "event": delivery["event"],
                    "delivery_id": delivery["delivery_id"],
                }
                await self._history(conn, delivery["alert_id"], at, "notified", "alerts", detail)

    async def failed(self, delivery: asyncpg.Record, error: str, retry_in_s: float) -> None:
        await self.pool.execute(
            """UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $2,
                      next_attempt_at = clock_timestamp() + make_interval(secs => $3)
               WHERE id = $1 AND delivered_at IS NULL""",
            delivery["id"],
            error[:1000],
            retry_in_s,
        )

    async def release(self, ids: list[int], retry_in_s: float) -> None:
        """Give back leased rows untried (they wait behind a failed one of their target)."""
        if ids:
            await self.pool.execute(
                """UPDATE alert_deliveries SET next_attempt_at = clock_timestamp() + make_interval(secs => $2)
                   WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL""",
                ids,
                retry_in_s,
            )

    # -- reads and acknowledgement (the KPI API) -------------------------------------------
    async def list(
        self, units: list[str], state: str | None, kpi: str | None, before_id: int | None, limit: int
    ) -> list[asyncpg.Record]:
        """Alerts of the given units, newest first, keyset-paged on id. ``state`` "open"
        means not closed (open or acknowledged)."""
        return await self.pool.fetch(
            f"""SELECT {_ALERT_COLUMNS} FROM alerts
                WHERE unit_code = ANY($1::text[])
                  AND ($2::text IS NULL OR ($2 = 'open' AND state <> 'closed') OR ($2 <> 'open' AND state = $2))
                  AND ($3::text IS NULL OR kpi = $3)
                  AND ($4::bigint IS NULL OR id < $4)
                ORDER BY id DESC LIMIT $5""",
            units,
            state,
            kpi,
            before_id,
            limit,
        )

    @staticmethod
    async def get_for_update(conn: asyncpg.Connection, alert_id: int) -> asyncpg.Record | None:
        return await conn.fetchrow(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = $1 FOR UPDATE", alert_id)

    @classmethod
    async def acknowledge(
        cls, conn: asyncpg.Connection, alert_id: int, at: dt.datetime, by: str, note: str | None
    ) -> asyncpg.Record:
        """Within the caller's transaction, after it checked the alert is open."""
        row = await conn.fetchrow(
            f"""UPDATE alerts SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3
                WHERE id = $1 AND state = 'open' RETURNING {_ALERT_COLUMNS}""",
            alert_id,
            at,
            by,
        )
        assert row is not None
        await cls._history(conn, alert_id, at, "acknowledged", by, {"note": note} if note else {})
        return row
