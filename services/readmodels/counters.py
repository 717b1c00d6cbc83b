"""PostgreSQL reads of counters and entities: summed counters per code and period, series
buckets, live dossier counts, overdue dossiers and projects. Parametrised SQL only; the
dossier rules that run in SQL are the core's twins (``services.core.kpis.dossiers``).

Counters are keyed by unit *code* and event time, and a code denotes one unit at a time, so
"code X over [start, end)" is always one territory as long as the period lies within the
unit's validity - which the callers (``services.readmodels.kpis``) make sure of.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from services.core.calendar import VN, VN_NAME, Granularity, Pieces, decompose, floor
from services.core.kpis.dossiers import OPEN_SQL, overdue_sql
from services.readmodels.tables import DOSSIERS, PROJECTS

Totals = dict[str, int]

# Where a dossier without a due time sorts among overdue dossiers (and in paging cursors).
NO_DUE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)

_GRAINS = (("counters_monthly", "months"), ("counters_daily", "days"), ("counters_hourly", "hours"))


def totals_sql(pieces: Pieces) -> tuple[str, list[object]]:
    """The SQL summing counters per (code, metric) over a period's pieces, and its range
    parameters (after $1 codes, $2 metrics, $3 sector). Only the grains the period needs are
    read: an empty range still costs an index search per (code, metric) in the PRIMARY KEY
    (code, metric, sector, bucket) order - tens of milliseconds for hundreds of communes."""
    parts, params = [], []
    for table, grain in _GRAINS:
        ranges = getattr(pieces, grain)
        if not ranges:
            continue
        within = []
        for a, b in ranges:
            params += [a, b]
            within.append(f"(bucket >= ${len(params) + 2} AND bucket < ${len(params) + 3})")
        parts.append(
            f"SELECT unit_code, metric, value FROM {table} WHERE unit_code = ANY($1::text[]) "
            f"AND metric = ANY($2::text[]) AND ($3::text IS NULL OR sector = $3) AND ({' OR '.join(within)})"
        )
    union = "\n    UNION ALL\n    ".join(parts)
    return f"SELECT unit_code, metric, sum(value)::int8 AS value FROM (\n    {union}\n) AS pieces GROUP BY 1, 2", params


# (bucket expression, table) per granularity; weeks, quarters and years group finer rows.
# A period whose bounds are not whole months reads month-like buckets from the daily table.
_SERIES_SOURCE: dict[str, tuple[str, str]] = {
    "hour": ("bucket", "counters_hourly"),
    "day": ("bucket", "counters_daily"),
    "week": ("date_trunc('week', bucket)::date", "counters_daily"),
    "month": ("bucket", "counters_monthly"),
    "quarter": ("date_trunc('quarter', bucket)::date", "counters_monthly"),
    "year": ("date_trunc('year', bucket)::date", "counters_monthly"),
}
_SERIES_WHERE = (
    "WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[]) AND ($3::text IS NULL OR sector = $3) "
    "AND bucket >= $4 AND bucket < $5"
)


def _series_sql(granularity: Granularity, month_aligned: bool) -> str:
    expr, table = _SERIES_SOURCE[granularity]
    if table == "counters_monthly" and not month_aligned:
        expr, table = f"date_trunc('{granularity}', bucket)::date", "counters_daily"
    return f"SELECT unit_code, {expr} AS b, metric, sum(value)::int8 FROM {table} {_SERIES_WHERE} GROUP BY 1, 2, 3"


def _bucket_start(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(VN)
    return dt.datetime(value.year, value.month, value.day, tzinfo=VN)


@dataclass(frozen=True, slots=True)
class Membership:
    """Dossiers of ``code`` received in [start, end) count, with ``weight``, for ``owner``."""

    owner: str
    code: str
    start: dt.datetime
    end: dt.datetime
    weight: float


LiveCounts = dict[str, float]  # dossier.open_not_due, dossier.open_overdue


class KpiStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def totals(
        self, codes: Sequence[str], metrics: Iterable[str], start: dt.datetime, end: dt.datetime, sector: str | None
    ) -> dict[str, Totals]:
        """Summed stored counters per code over [start, end)."""
        out: dict[str, Totals] = {c: {} for c in codes}
        wanted = sorted(set(metrics))
        pieces = decompose(start, end)
        if not wanted or not codes or pieces.empty:
            return out
        sql, ranges = totals_sql(pieces)
        rows = await self.pool.fetch(sql, list(codes), wanted, sector, *ranges)
        for code, metric, value in rows:
            out[code][metric] = value
        return out

    async def live_totals(
        self, memberships: Sequence[Membership], sector: str | None, now: dt.datetime
    ) -> dict[str, LiveCounts]:
        """Open dossiers (not yet due, overdue) per owner, weighted."""
        out: dict[str, LiveCounts] = defaultdict(dict)
        if not memberships:
            return out
        rows = await self.pool.fetch(
            f"""SELECT m.owner, sum(m.weight) FILTER (WHERE {overdue_sql("$7")}) AS overdue, sum(m.weight) AS open
                FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[])
                     AS m(owner, code, a, b, weight)
                -- one probe of the open-dossier index per membership; OFFSET 0 keeps the
                -- planner from flattening it into a hash join over every open dossier
                -- (548 communes: 13 ms -> 2 ms)
                CROSS JOIN LATERAL (
                    SELECT * FROM dossiers d
                     WHERE d.unit_code = m.code AND d.received_at >= m.a AND d.received_at < m.b
                       AND {OPEN_SQL} AND ($6::text IS NULL OR d.sector = $6) OFFSET 0) AS d
                GROUP BY m.owner""",
            *_membership_arrays(memberships),
            sector,
            now,
        )
        for owner, overdue, open_ in rows:
            out[owner] = _live(overdue or 0, open_ or 0)
        return out

    async def series(
        self,
        codes: Sequence[str],
        metrics: Iterable[str],
        start: dt.datetime,
        end: dt.datetime,
        granularity: Granularity,
        sector: str | None,
    ) -> dict[str, dict[dt.datetime, Totals]]:
        """Summed stored counters per code and bucket start (local) over [start, end), whose
        bounds are whole days (whole hours for the hour granularity)."""
        out: dict[str, dict[dt.datetime, Totals]] = {c: defaultdict(dict) for c in codes}
        wanted = sorted(set(metrics))
        if not wanted or not codes:
            return out
        if granularity == "hour":
            lo, hi = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        else:
            lo, hi = start.date(), end.date()  # type: ignore[assignment]
        aligned = floor(start, "month") == start and floor(end, "month") == end
        sql = _series_sql(granularity, aligned)
        for code, bucket, metric, value in await self.pool.fetch(sql, list(codes), wanted, sector, lo, hi):
            out[code][_bucket_start(bucket)][metric] = value
        return out

    async def live_series(
        self, memberships: Sequence[Membership], granularity: Granularity, sector: str | None, now: dt.datetime
    ) -> dict[dt.datetime, LiveCounts]:
        """Open dossiers per bucket of their reception time, weighted (owners summed)."""
        out: dict[dt.datetime, LiveCounts] = {}
        if not memberships:
            return out
        rows = await self.pool.fetch(
            f"""SELECT date_trunc($8, d.received_at AT TIME ZONE '{VN_NAME}') AS b,
                       sum(m.weight) FILTER (WHERE {overdue_sql("$7")}) AS overdue, sum(m.weight) AS open
                FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[])
                     AS m(owner, code, a, b, weight)
                JOIN dossiers d ON d.unit_code = m.code AND d.received_at >= m.a AND d.received_at < m.b
                WHERE {OPEN_SQL} AND ($6::text IS NULL OR d.sector = $6)
                GROUP BY 1""",
            *_membership_arrays(memberships),
            sector,
            now,
            granularity,
        )
        for naive, overdue, open_ in rows:
            out[naive.replace(tzinfo=VN)] = _live(overdue or 0, open_ or 0)
        return out

    async def overdue_dossiers(
        self, memberships: Sequence[Membership], now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[asyncpg.Record]:
        """Open dossiers overdue now, oldest due first (no due time last), keyset-paged on
        (due time or :data:`NO_DUE`, dossier id)."""
        return await self.pool.fetch(
            f"""SELECT {", ".join(f"d.{c}" for c in DOSSIERS.names)}
                FROM dossiers d
                JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(code, a, b)
                  ON d.unit_code = m.code AND d.received_at >= m.a AND d.received_at < m.b
                WHERE {OPEN_SQL} AND {overdue_sql("$4")}
                  AND ($5::timestamptz IS NULL OR (COALESCE(d.due_at, $8), d.dossier_id) > ($5, $6))
                ORDER BY COALESCE(d.due_at, $8), d.dossier_id LIMIT $7""",
            [m.code for m in memberships],
            [m.start for m in memberships],
            [m.end for m in memberships],
            now,
            after[0] if after else None,
            after[1] if after else "",
            limit,
            NO_DUE,
        )

    async def overdue_counts(self, memberships: Sequence[Membership], now: dt.datetime) -> dict[str, tuple[int, int]]:
        """Per code: (open dossiers, of which overdue)."""
        rows = await self.pool.fetch(
            f"""SELECT d.unit_code, count(*) AS open, count(*) FILTER (WHERE {overdue_sql("$4")}) AS overdue
                FROM dossiers d
                JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(code, a, b)
                  ON d.unit_code = m.code AND d.received_at >= m.a AND d.received_at < m.b
                WHERE {OPEN_SQL}
                GROUP BY d.unit_code""",
            [m.code for m in memberships],
            [m.start for m in memberships],
            [m.end for m in memberships],
            now,
        )
        return {r["unit_code"]: (r["open"], r["overdue"]) for r in rows}

    async def projects(self, codes: list[str], stage: str | None = None) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            f"""SELECT {PROJECTS.select_list}
               FROM projects WHERE unit_code = ANY($1::text[]) AND ($2::text IS NULL OR stage = $2)
               ORDER BY project_id""",
            codes,
            stage,
        )


def _membership_arrays(memberships: Sequence[Membership]) -> list[list[object]]:
    return [
        [m.owner for m in memberships],
        [m.code for m in memberships],
        [m.start for m in memberships],
        [m.end for m in memberships],
        [m.weight for m in memberships],
    ]


def _live(overdue: float, open_: float) -> LiveCounts:
    # whole dossiers stay integers (fractions only come from restated split predecessors)
    as_number = lambda v: int(v) if float(v).is_integer() else float(v)  # noqa: E731
    return {"dossier.open_overdue": as_number(overdue), "dossier.open_not_due": as_number(open_ - overdue)}
