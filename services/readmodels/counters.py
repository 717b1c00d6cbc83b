"""PostgreSQL reads of counters and entities: summed counters per unit and period, series
buckets, live dossier counts, overdue dossiers and projects. Parametrised SQL only; the
dossier rules that run in SQL are the core's twins (``services.core.kpis.dossiers``)."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

import asyncpg

from schemas.metrics import LIVE_METRICS
from services.core.calendar import VN, VN_NAME, Granularity, decompose
from services.core.kpis.dossiers import OPEN_SQL, overdue_sql
from services.readmodels.tables import DOSSIERS, PROJECTS

Totals = dict[str, int]

# Where a dossier without a due time sorts among overdue dossiers (and in paging cursors).
NO_DUE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)

_TOTALS_SQL = """
SELECT unit_code, metric, sum(value)::int8 AS value FROM (
    SELECT unit_code, metric, value FROM counters_monthly
     WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[])
       AND ($3::text IS NULL OR sector = $3) AND bucket >= $4 AND bucket < $5
    UNION ALL
    SELECT unit_code, metric, value FROM counters_daily
     WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[])
       AND ($3::text IS NULL OR sector = $3)
       AND ((bucket >= $6 AND bucket < $7) OR (bucket >= $8 AND bucket < $9))
    UNION ALL
    SELECT unit_code, metric, value FROM counters_hourly
     WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[])
       AND ($3::text IS NULL OR sector = $3)
       AND ((bucket >= $10 AND bucket < $11) OR (bucket >= $12 AND bucket < $13))
) AS pieces GROUP BY unit_code, metric"""

# (bucket expression, table) per granularity; weeks, quarters and years group finer rows
_SERIES_SOURCE: dict[str, tuple[str, str]] = {
    "hour": ("bucket", "counters_hourly"),
    "day": ("bucket", "counters_daily"),
    "week": ("date_trunc('week', bucket)::date", "counters_daily"),
    "month": ("bucket", "counters_monthly"),
    "quarter": ("date_trunc('quarter', bucket)::date", "counters_monthly"),
    "year": ("date_trunc('year', bucket)::date", "counters_monthly"),
}
_SERIES_SQL: dict[str, str] = {
    granularity: f"SELECT {expr} AS b, metric, sum(value)::int8 FROM {table} {{w}} GROUP BY 1, 2"
    for granularity, (expr, table) in _SERIES_SOURCE.items()
}
_SERIES_WHERE = (
    "WHERE unit_code = $1 AND metric = ANY($2::text[]) AND ($3::text IS NULL OR sector = $3) "
    "AND bucket >= $4 AND bucket < $5"
)


def _pad(ranges: Iterable[tuple[object, object]], empty: object, count: int = 2) -> list[object]:
    flat: list[object] = []
    for a, b in ranges:
        flat += [a, b]
    while len(flat) < 2 * count:
        flat += [empty, empty]
    return flat


def _bucket_start(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(VN)
    return dt.datetime(value.year, value.month, value.day, tzinfo=VN)


class KpiStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def totals(
        self,
        units: list[str],
        metrics: Iterable[str],
        start: dt.datetime,
        end: dt.datetime,
        sector: str | None,
        now: dt.datetime,
        leaves: dict[str, list[str]] | None = None,
    ) -> dict[str, Totals]:
        """Summed counters per unit over [start, end). ``leaves`` maps each unit to itself and
        its descendants - needed only when live dossier counters are asked for."""
        wanted = set(metrics)
        stored = sorted(wanted - set(LIVE_METRICS))
        out: dict[str, Totals] = {u: {} for u in units}
        pieces = decompose(start, end)
        epoch_day, epoch = dt.date(1970, 1, 1), dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        month = pieces.months[0] if pieces.months else (epoch_day, epoch_day)
        async with self.pool.acquire() as conn:
            if stored:
                rows = await conn.fetch(
                    _TOTALS_SQL,
                    units,
                    stored,
                    sector,
                    month[0],
                    month[1],
                    *_pad(pieces.days, epoch_day),
                    *_pad(pieces.hours, epoch),
                )
                for unit, metric, value in rows:
                    out[unit][metric] = value
            if wanted & set(LIVE_METRICS):
                await self._live_totals(conn, out, leaves or {u: [u] for u in units}, start, end, sector, now)
        return out

    async def _live_totals(
        self,
        conn: asyncpg.Connection,
        out: dict[str, Totals],
        leaves: dict[str, list[str]],
        start: dt.datetime,
        end: dt.datetime,
        sector: str | None,
        now: dt.datetime,
    ) -> None:
        owners: dict[str, list[str]] = defaultdict(list)
        for unit, codes in leaves.items():
            for code in codes:
                owners[code].append(unit)
        rows = await conn.fetch(
            f"""SELECT d.unit_code, count(*) FILTER (WHERE {overdue_sql("$5")}) AS overdue,
                       count(*) AS open
                FROM dossiers d
                WHERE d.unit_code = ANY($1::text[]) AND {OPEN_SQL}
                  AND d.received_at >= $2 AND d.received_at < $3 AND ($4::text IS NULL OR d.sector = $4)
                GROUP BY d.unit_code""",
            sorted(owners),
            start,
            end,
            sector,
            now,
        )
        for code, overdue, open_ in rows:
            for unit in owners[code]:
                totals = out[unit]
                totals["dossier.open_overdue"] = totals.get("dossier.open_overdue", 0) + overdue
                totals["dossier.open_not_due"] = totals.get("dossier.open_not_due", 0) + open_ - overdue

    async def series(
        self,
        unit: str,
        leaves: list[str],
        metrics: Iterable[str],
        start: dt.datetime,
        end: dt.datetime,
        granularity: Granularity,
        sector: str | None,
        now: dt.datetime,
    ) -> dict[dt.datetime, Totals]:
        """Summed counters per bucket start (local time) for one unit over aligned [start, end)."""
        wanted = set(metrics)
        stored = sorted(wanted - set(LIVE_METRICS))
        out: dict[dt.datetime, Totals] = defaultdict(dict)
        if granularity == "hour":
            lo, hi = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        else:
            lo, hi = start.date(), end.date()  # type: ignore[assignment]
        async with self.pool.acquire() as conn:
            if stored:
                sql = _SERIES_SQL[granularity].format(w=_SERIES_WHERE)
                for bucket, metric, value in await conn.fetch(sql, unit, stored, sector, lo, hi):
                    out[_bucket_start(bucket)][metric] = value
            if wanted & set(LIVE_METRICS):
                rows = await conn.fetch(
                    f"""SELECT date_trunc($6, d.received_at AT TIME ZONE '{VN_NAME}') AS b,
                               count(*) FILTER (WHERE {overdue_sql("$5")}) AS overdue,
                               count(*) AS open
                        FROM dossiers d
                        WHERE d.unit_code = ANY($1::text[]) AND {OPEN_SQL}
                          AND d.received_at >= $2 AND d.received_at < $3
                          AND ($4::text IS NULL OR d.sector = $4)
                        GROUP BY 1""",
                    leaves,
                    start,
                    end,
                    sector,
                    now,
                    granularity,
                )
                for naive, overdue, open_ in rows:
                    totals = out[naive.replace(tzinfo=VN)]
                    totals["dossier.open_overdue"] = overdue
                    totals["dossier.open_not_due"] = open_ - overdue
        return dict(out)

    async def overdue_dossiers(
        self, leaves: list[str], now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[asyncpg.Record]:
        """Open dossiers overdue now, oldest due first (no due time last), keyset-paged on
        (due time or :data:`NO_DUE`, dossier id)."""
        return await self.pool.fetch(
            f"""SELECT {DOSSIERS.select_list}
                FROM dossiers d
                WHERE d.unit_code = ANY($1::text[]) AND {OPEN_SQL} AND {overdue_sql("$2")}
                  AND ($3::timestamptz IS NULL OR (COALESCE(d.due_at, $6), d.dossier_id) > ($3, $4))
                ORDER BY COALESCE(d.due_at, $6), d.dossier_id LIMIT $5""",
            leaves,
            now,
            after[0] if after else None,
            after[1] if after else "",
            limit,
            NO_DUE,
        )

    async def overdue_counts(self, leaves: list[str], now: dt.datetime) -> dict[str, tuple[int, int]]:
        """Per leaf unit: (open dossiers, of which overdue)."""
        rows = await self.pool.fetch(
            f"""SELECT d.unit_code, count(*) AS open,
                       count(*) FILTER (WHERE {overdue_sql("$2")}) AS overdue
                FROM dossiers d
                WHERE d.unit_code = ANY($1::text[]) AND {OPEN_SQL}
                GROUP BY d.unit_code""",
            leaves,
            now,
        )
        return {r["unit_code"]: (r["open"], r["overdue"]) for r in rows}

    async def projects(self, leaves: list[str], stage: str | None = None) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            f"""SELECT {PROJECTS.select_list}
               FROM projects WHERE unit_code = ANY($1::text[]) AND ($2::text IS NULL OR stage = $2)
               ORDER BY project_id""",
            leaves,
            stage,
        )
