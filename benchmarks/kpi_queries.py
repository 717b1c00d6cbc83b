"""KPI API query latency at commune scale, 1x, 4x and 16x counter volume, against a naive
hourly-only SQL.

``python -m benchmarks.kpi_queries`` starts the embedded PostgreSQL (or uses
``--database-url``) and for each volume builds a FRESH database holding Thanh Hóa's real unit
registry (the reference files: 27 districts and 548 communes until 2025-06-30, 166 communes
and wards from 2025-07-01) and two years of counters (local 2024-12-01 .. 2026-12-01, across
the reform), served by the KPI API as a real process (``python -m services.kpi_api``, real
HTTP, a province operator key, rate limit lifted, clock at 2026-11-30 12:00 local).

Volume. Counters exist per *leaf unit* (the communes events name: the old communes before
2025-07-01, the new ones after) and for every ancestor it had that day (district, province),
at UTC hour, local day and local month grain, as the aggregator writes them. Hourly leaf
counts follow the simulator's sector mix and hours and a per-commune profile (the founding
article's leading and lagging districts) at ``--events-per-hour`` for the whole province at
1x (default 300, a quiet province) and 4x and 16x that rate; each commune's share is its
population's. Counts: Poisson (Binomial(8, rate/8) below 8, else normal), derived counters
by thinning; zeros never written. Districts and the province = sums of their communes on
each day, days and months = sums of hours - by construction (INSERT ... SELECT ... GROUP BY).

Questions: a fixed random mix (``--seed``), ``--requests`` per kind after ``--warmup``:
series (daily over 90 days, monthly over 2 years - across the reform, so restated before it;
the province or one of today's communes), ranking (the 166 communes of the period's last
day, restated; or the former districts; a month or 12 months), scorecard (a commune, a
month), score (the 166 communes, a quarter); client-side latency, sequential, keep-alive.
Baseline, same run: the same questions as naive SQL over ``counters_hourly`` only (no
day/month grain), in-process, ``--naive-requests`` per kind. ``--variant-cmd`` runs the same
mix against another command on the same database. Progress: stderr; last stdout line: one
JSON object.
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from benchmarks._bench_common import (
    ROOT,
    bench_servers,
    drop_database,
    fresh_database,
    fresh_name,
    git_state,
    logs_to_stderr,
    parallel,
    say,
    stats_ms,
    synthetic_dossiers,
    synthetic_projects,
    tree_cpu_seconds,
)

VN = dt.timezone(dt.timedelta(hours=7))
START, END = dt.datetime(2024, 12, 1, tzinfo=VN), dt.datetime(2026, 12, 1, tzinfo=VN)
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=VN)
VOLUMES = {"1x": 1, "4x": 4, "16x": 16}  # event rate multiplier
LEAD = {"390", "392", "406", "403", "402"}  # the founding article's leading districts
LAG = {"400", "404", "395"}  # and lagging ones
TIERS = (0.02, 0.05, 0.15, 0.30, 0.45, 0.62, 0.75, 0.86, 0.94, 0.99)  # processing <= 4h .. 720h
HOURS = (4, 8, 24, 48, 72, 120, 168, 240, 360, 720)


def thin(x: str, p: str) -> str:
    """Stochastic rounding of x * p: unbiased, never above x for p <= 1."""
    return f"floor({x} * ({p}) + random())::int8"


# fmt: off
# A family: one kind of activity of a sector → (layers of derived columns, metric ← column).
# Column expressions may use n (the base count), the leaf's profile (digital, on_time,
# signed, on_system, cashless), random() and the columns of earlier layers.
_RESOLVED = [
    [("ontime", thin("n", "on_time")), ("eres", thin("n", "digital")), ("u", "random()"),
     ("secs", "(n * 86400 * (1 + 6 * (1 - on_time)) * (0.6 + 0.8 * random()))::int8"),
     ("unsat", thin("n", "0.5 * (0.05 + 0.35 * (1 - on_time))"))],
    [("late", "n - ontime"), *((f"le{h}", f"floor(n * least(1, {f} * (0.6 + 0.5 * on_time)) + u)::int8")
                               for h, f in zip(HOURS, TIERS, strict=True))],
]
FAMILIES: list[tuple[str, str, list[list[tuple[str, str]]], list[tuple[str, str]]]] = []
for _sector, (_dossier, _incoming, _outgoing) in {"education": (0.6, 0.6, 0.5), "health": (0.4, 0.6, 0.5),
                                                   "transport": (0.5, 0.3, 0.3), "culture": (0.3, 0.4, 0.3)}.items():
    FAMILIES += [
        (_sector, f"{_dossier}", [[("online", thin("n", "digital")), ("fee", thin("n", "0.6")),
                                   ("dig", thin("n", "least(0.99, digital + 0.05)")),
                                   ("reuse", thin("n", "digital * 0.4"))], [("paid", thin("fee", "digital"))]],
         [("dossier.received", "n"), ("dossier.received.online", "online"), ("dossier.fee_required", "fee"),
          ("dossier.paid_online", "paid"), ("dossier.digitised", "dig"), ("dossier.data_reused", "reuse")]),
        (_sector, f"{_dossier}", _RESOLVED,
         [("dossier.resolved", "n"), ("dossier.resolved_on_time", "ontime"), ("dossier.resolved_late", "late"),
          ("dossier.e_result", "eres"), ("dossier.processing_seconds", "secs"),
          ("dossier.rated_unsatisfied", "unsat"), *((f"dossier.processing_le_{h}h", f"le{h}") for h in HOURS)]),
        (_sector, f"{_incoming}", [[("onsys", thin("n", "on_system"))]],
         [("document.incoming", "n"), ("document.incoming.on_system", "onsys")]),
        (_sector, f"{_outgoing}", [[("agency", thin("n", "signed"))], [("personal", thin("agency", "0.85"))]],
         [("document.outgoing", "n"), ("document.outgoing.agency_signed", "agency"),
          ("document.outgoing.personal_signed", "personal")]),
    ]
FAMILIES += [
    ("education", "3", [[("online", thin("n", "digital"))]],
     [("enrolment.applications", "n"), ("enrolment.applications.online", "online")]),
    ("education", "8", [[("secs", "(n * 2850 * (0.8 + 0.4 * random()))::int8")]], [("elearning.seconds", "secs")]),
    ("education", "3", [[("cl", thin("n", "cashless"))]],
     [("fee.payments", "n"), ("fee.payments.cashless", "cl")]),
    ("health", "6", [[("online", thin("n", "digital"))]],
     [("appointment.booked", "n"), ("appointment.booked.online", "online")]),
    ("health", "8", [[("insured", thin("n", "0.9"))], [("chip", thin("insured", "digital"))]],
     [("visit.insured", "insured"), ("visit.insured.chip_id", "chip")]),
    ("health", "7", [[("emr", thin("n", "digital"))]], [("visit.closed", "n"), ("visit.closed.emr", "emr")]),
    ("health", "0.5", [], [("telemedicine.consultations", "n")]),
    ("transport", "40", [[("cl", thin("n", "cashless"))]],
     [("fare.boardings", "n"), ("fare.boardings.cashless", "cl")]),
    ("transport", "4", [[("ontime", thin("n", "on_time"))]],
     [("vehicle.departures", "n"), ("vehicle.departures.on_time", "ontime")]),
    ("culture", "4", [[("sold", "n + " + thin("n", "1.0"))], [("online", thin("sold", "digital"))]],
     [("ticket.sold", "sold"), ("ticket.sold.online", "online")]),
    ("culture", "6", [[("visits", "n + " + thin("n", "0.75"))]], [("entry.visits", "visits")]),
    ("culture", "2", [], [("library.loans", "n")]),
]
# fmt: on
FAMILY_SECTORS = ("education", "health", "transport", "culture")
# the simulator's mix total (sum of the families' relative frequencies): rates are shares of it
MIX_TOTAL = sum(float(f[1]) for f in FAMILIES)


def family_sql(
    sector: str,
    freq: str,
    layers: list[list[tuple[str, str]]],
    emit: list[tuple[str, str]],
    mix_total: float,
    per_hour: float,
) -> str:
    """INSERT of one family's leaf hourly rows: a base count per (leaf, hour), then layers."""
    rate = f"{per_hour} * l.share * a.level * {freq} / {mix_total}"
    # Poisson(rate): Binomial(8, rate / 8) below 8 (exact mean, right share of zeros), else a
    # normal approximation with stochastic rounding.
    small = " + ".join(["(random() < lam / 8)::int"] * 8)
    big = "greatest(0, floor(lam + sqrt(lam) * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + random()))"
    sql = (
        f"SELECT * FROM (SELECT code, bucket, digital, on_time, signed, on_system, cashless, "
        f"(CASE WHEN lam < 8 THEN {small} ELSE {big} END)::int8 AS n FROM ("
        f"SELECT l.code, h.bucket, l.digital, l.on_time, l.signed, l.on_system, l.cashless, {rate} AS lam "
        f"FROM bench_leaf l JOIN bench_hours h ON h.bucket >= l.a AND h.bucket < l.b "
        f"JOIN bench_activity a ON a.sector = '{sector}' AND a.lh = h.lh AND a.wd = h.wd) x) b WHERE n > 0"
    )
    for layer in layers:
        cols = ", ".join(f"{expr} AS {name}" for name, expr in layer)
        sql = f"SELECT q.*, {cols} FROM ({sql}) q"
    values = ", ".join(f"('{metric}', r.{col})" for metric, col in emit)
    return (
        f"INSERT INTO counters_hourly (unit_code, metric, sector, bucket, value) "
        f"SELECT r.code, m.metric, '{sector}', r.bucket, m.v FROM ({sql}) r "
        f"CROSS JOIN LATERAL (VALUES {values}) AS m(metric, v) WHERE m.v > 0"
    )


def leaves_of(rng: random.Random) -> list[tuple[Any, ...]]:
    """(code, share, digital, on_time, signed, on_system, cashless, from, to) per commune: the
    communes of each era, shares by population (old communes: their district's share, split
    equally), profiles by the district they belong or mostly belong to."""
    from infra.migrate import reference_registry
    from services.core.history import main_former

    registry = reference_registry()
    reform = dt.date(2025, 7, 1)
    old, new = registry.at_level(3, reform - dt.timedelta(days=1)), registry.at_level(3, reform)
    eve = reform - dt.timedelta(days=1)
    base_of: dict[str, float] = {}
    leaves: list[tuple[Any, ...]] = []
    by_district: dict[str, list[Any]] = {}
    for unit in old:
        by_district.setdefault(unit.parent_on(eve) or "38", []).append(unit)
    district_pop = {d: registry.population(registry.get(d, eve), eve) or 100_000 for d in by_district}  # type: ignore[arg-type]
    total_old = sum(district_pop.values())
    for district, units in sorted(by_district.items()):
        base = (
            rng.uniform(0.82, 0.93)
            if district in LEAD
            else rng.uniform(0.12, 0.25)
            if district in LAG
            else rng.uniform(0.45, 0.75)
        )
        base_of[district] = base
        for unit in units:
            share = district_pop[district] / total_old / len(units)
            leaves.append((unit.code, share, *_profile(rng, base), START, dt.datetime(2025, 7, 1, tzinfo=VN)))
    total_new = sum(u.population or 0 for u in new)
    for unit in new:
        former = main_former(registry, unit)
        base = base_of.get(former.code if former else "", 0.6)
        leaves.append(
            (
                unit.code,
                (unit.population or 0) / total_new,
                *_profile(rng, base),
                dt.datetime(2025, 7, 1, tzinfo=VN),
                END,
            )
        )
    return leaves


def _profile(rng: random.Random, base: float) -> tuple[float, ...]:
    clamp = lambda x: min(0.99, max(0.01, x))  # noqa: E731
    return (
        clamp(base + rng.uniform(-0.08, 0.05)),
        clamp(0.35 + base * 0.64 + rng.uniform(-0.03, 0.03)),
        clamp(base + rng.uniform(-0.05, 0.07)),
        clamp(base + rng.uniform(-0.05, 0.05)),
        clamp(base * 0.8 + rng.uniform(-0.05, 0.05)),
    )


def activity_rows() -> list[tuple[Any, ...]]:
    from services.simulator import profiles

    hours = [(s, h, wd, profiles.activity(s, h, wd)) for s in FAMILY_SECTORS for h in range(24) for wd in range(7)]
    weekly = {s: sum(a for (x, _h, _w, a) in hours if x == s) / 168 for s in FAMILY_SECTORS}
    return [(s, h, wd, a / weekly[s]) for s, h, wd, a in hours]


async def build(dsn: str, multiplier: int, per_hour: float, seed: int) -> dict[str, Any]:
    """Leaf profiles, hourly leaf counters, roll-ups along the parents of each day, days,
    months, dossiers, projects (the unit registry comes with the migrated database)."""
    rng = random.Random(seed)
    leaves = leaves_of(rng)
    conn = await asyncpg.connect(dsn)
    began = time.monotonic()
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'; SET work_mem = '256MB'")
        await conn.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        # the keys are dropped for the bulk load and put back exactly as the migrations made them
        keys = await conn.fetch(
            """SELECT conrelid::regclass::text AS tab, conname, pg_get_constraintdef(oid) AS def
               FROM pg_constraint WHERE contype = 'p'
                AND conrelid::regclass::text IN ('counters_hourly', 'counters_daily', 'counters_monthly')"""
        )
        await conn.execute(
            """CREATE TABLE bench_leaf (code text, share float8, digital float8, on_time float8, signed float8,
                                     on_system float8, cashless float8, a timestamptz, b timestamptz);
            CREATE TABLE bench_activity (sector text, lh int, wd int, level float8);
            CREATE TABLE bench_hours AS SELECT g AS bucket,
                   extract(hour FROM g AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS lh,
                   extract(isodow FROM g AT TIME ZONE 'Asia/Ho_Chi_Minh')::int - 1 AS wd
              FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', interval '1 hour') g;
            ALTER TABLE counters_hourly DROP CONSTRAINT counters_hourly_pkey;
            ALTER TABLE counters_daily DROP CONSTRAINT counters_daily_pkey;
            ALTER TABLE counters_monthly DROP CONSTRAINT counters_monthly_pkey;""".replace("$1", f"'{START}'").replace(
                "$2", f"'{END}'"
            )
        )
        await conn.copy_records_to_table("bench_leaf", records=leaves)
        await conn.copy_records_to_table("bench_activity", records=activity_rows())
        await parallel(dsn, [family_sql(*f, MIX_TOTAL, per_hour * multiplier) for f in FAMILIES])
        say(f"  leaf hours drawn: {time.monotonic() - began:.0f}s")
        await roll_up(conn, dsn)
        await parallel(
            dsn,
            [
                f"""INSERT INTO counters_daily SELECT unit_code, metric, sector,
                (bucket AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, sum(value)::int8 FROM counters_hourly
            WHERE abs(hashtext(unit_code)) % 2 = {k} GROUP BY 1, 2, 3, 4 ORDER BY 4"""
                for k in (0, 1)
            ],
        )
        await conn.execute("""INSERT INTO counters_monthly SELECT unit_code, metric, sector,
                date_trunc('month', bucket)::date, sum(value)::int8 FROM counters_daily GROUP BY 1, 2, 3, 4
            ORDER BY 4""")
        say(f"  roll-ups, days, months: {time.monotonic() - began:.0f}s")
        for key in keys:
            await conn.execute(f"ALTER TABLE {key['tab']} ADD CONSTRAINT {key['conname']} {key['def']}")
        say(f"  primary keys: {time.monotonic() - began:.0f}s")
        codes = sorted({leaf[0] for leaf in leaves if leaf[8] == END})  # open dossiers are at today's communes
        for table, (columns, records) in {
            "dossiers": synthetic_dossiers(rng, NOW, codes),
            "projects": synthetic_projects(rng, NOW, codes),
        }.items():
            await conn.copy_records_to_table(table, records=records, columns=columns)
        await conn.execute("DROP TABLE bench_leaf, bench_activity, bench_hours, bench_parent")
        await conn.execute("VACUUM ANALYZE")
        say(f"  dossiers, projects, vacuum: {time.monotonic() - began:.0f}s")
        rows = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("counters_hourly", "counters_daily", "counters_monthly", "dossiers")
        }
        rows["units_with_counters"] = await conn.fetchval("SELECT count(DISTINCT unit_code) FROM counters_monthly")
        rows["leaf_units"] = len(leaves)
        rows["bytes"] = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    rows["load_seconds"] = round(time.monotonic() - began, 1)
    return rows


async def roll_up(conn: asyncpg.Connection, dsn: str) -> None:
    """Each leaf's hours to the district it was under that day (if any) and to the province:
    the aggregator's roll-up."""
    from infra.migrate import reference_registry

    spans = [
        (u.code, span.parent_code, span.valid_from or START.date(), span.valid_to or END.date())
        for u in reference_registry().all_units()
        if u.level == 3
        for span in u.parents
    ]
    await conn.execute("CREATE TABLE bench_parent (code text, parent text, a date, b date)")
    await conn.copy_records_to_table("bench_parent", records=spans)
    cols = "metric, sector, bucket, sum(value)::int8"
    on_day = "(c.bucket AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
    # every leaf (a commune, 5 digits) rolls up to the province; before the reform also to
    # its district of the day. The leaf rows are read only, so the three statements run
    # side by side (each sees the table as it was when it began).
    districts = [
        f"""INSERT INTO counters_hourly SELECT p.parent, {cols}
        FROM counters_hourly c JOIN bench_parent p ON p.code = c.unit_code AND {on_day} BETWEEN p.a AND p.b
        WHERE p.parent <> '38' AND abs(hashtext(p.parent)) % 2 = {k} GROUP BY p.parent, metric, sector, bucket"""
        for k in (0, 1)
    ]
    province = f"""INSERT INTO counters_hourly SELECT '38', {cols} FROM counters_hourly c
        WHERE length(c.unit_code) = 5 GROUP BY metric, sector, bucket"""
    await parallel(dsn, [*districts, province])


# -- the question mix ----------------------------------------------------------------------------

# fmt: off
SERIES_KPIS = ("dossier_on_time_rate", "online_submission_rate", "avg_processing_hours", "processing_p90_hours",
               "e_result_rate", "digital_take_up", "ridership", "online_booking_rate", "incoming_electronic_rate")
# fmt: on
RANK_KPIS = (*SERIES_KPIS, "telemedicine_per_100k", "cashless_fare_rate")


def _month(index: int) -> dt.datetime:  # index 0 = 2024-12
    return dt.datetime(2024 + (11 + index) // 12, (11 + index) % 12 + 1, 1, tzinfo=VN)


def today_communes() -> list[str]:
    from infra.migrate import reference_registry

    return [u.code for u in reference_registry().at_level(3, NOW.date())]


def questions(rng: random.Random, count: int) -> dict[str, list[dict[str, Any]]]:
    """``count`` questions per kind: path, query and a tag (series/ranking have sub-shapes)."""
    communes = today_communes()
    out: dict[str, list[dict[str, Any]]] = {"series": [], "ranking": [], "scorecard": [], "score": []}
    for _ in range(count):
        unit = rng.choice(["38", rng.choice(communes)])
        if rng.random() < 0.5:
            end = START + dt.timedelta(days=rng.randint(90, 730))
            shape = {"granularity": "day", "from": end - dt.timedelta(days=90), "to": end}
        else:
            shape = {"granularity": "month", "from": START, "to": END}
        out["series"].append(
            {
                "path": f"/v1/kpis/{rng.choice(SERIES_KPIS)}/series",
                "unit": unit,
                **shape,
                "tag": f"series_{shape['granularity']}_{'province' if unit == '38' else 'commune'}",
            }
        )
        level = rng.choice(["commune", "commune", "commune", "former_district"])
        if rng.random() < 0.5:
            m = rng.randint(0, 23)
            period, tag = (_month(m), _month(m + 1)), "month"
        else:
            m = rng.randint(0, 12)
            period, tag = (_month(m), _month(m + 12)), "year"
        out["ranking"].append(
            {
                "path": f"/v1/kpis/{rng.choice(RANK_KPIS)}/ranking",
                "level": level,
                "from": period[0],
                "to": period[1],
                "tag": f"ranking_{level}_{tag}",
            }
        )
        code = rng.choice(["38", rng.choice(communes)])
        m = rng.randint(0, 23)
        out["scorecard"].append(
            {
                "path": f"/v1/units/{code}/scorecard",
                "unit": code,
                "from": _month(m),
                "to": _month(m + 1),
                "tag": "scorecard",
            }
        )
        q = rng.randint(0, 7)
        out["score"].append(
            {"path": "/v1/score", "level": "commune", "from": _month(3 * q), "to": _month(3 * q + 3), "tag": "score"}
        )
    return out


def url_of(q: dict[str, Any]) -> str:
    params = {
        k: (v.isoformat() if isinstance(v, dt.datetime) else v)
        for k, v in q.items()
        if k not in ("path", "tag") and not (k == "unit" and "/units/" in q["path"])
    }
    return f"{q['path']}?{urlencode(params)}"


# -- the naive baseline: counters_hourly only ----------------------------------------------------

NAIVE_TOTALS = """SELECT unit_code, metric, sum(value)::int8 FROM counters_hourly
    WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[]) AND bucket >= $3 AND bucket < $4
    GROUP BY 1, 2"""
NAIVE_SERIES = """SELECT date_trunc($5, bucket AT TIME ZONE 'Asia/Ho_Chi_Minh') AS b, metric, sum(value)::int8
    FROM counters_hourly WHERE unit_code = ANY($1::text[]) AND metric = ANY($2::text[]) AND bucket >= $3
    AND bucket < $4 GROUP BY 1, 2"""


async def naive(conn: asyncpg.Connection, q: dict[str, Any], kpis: Any, units: dict[str, list[str]]) -> None:
    """The same question from the hourly table only, over the same codes (today's communes and,
    for the part before the reform, the old communes they were formed from)."""
    from services.core import calendar as periods
    from services.core.kpis.formulas import counters_of

    def metrics(ids: list[str]) -> list[str]:
        return sorted(
            set().union(*(counters_of(kpis.get(i)) for i in ids)) - {"dossier.open_not_due", "dossier.open_overdue"}
        )

    start, end = q["from"], q["to"]
    prev = periods.previous(start, end)
    codes = units["former_district"] if q.get("level") == "former_district" else units["commune"]
    if q["tag"].startswith("series"):
        kpi = q["path"].split("/")[3]
        await conn.fetch(NAIVE_SERIES, [q["unit"]], metrics([kpi]), start, end, q["granularity"])
    elif q["tag"].startswith("ranking"):
        for a, b in ((start, end), prev):
            await conn.fetch(NAIVE_TOTALS, codes, metrics([q["path"].split("/")[3]]), a, b)
    elif q["tag"] == "scorecard":
        every = metrics([k.id for k in kpis.kpis if k.computable and k.basis == "events"])
        for a, b in ((start, end), prev):
            await conn.fetch(NAIVE_TOTALS, [q["unit"]], every, a, b)
    else:
        scored = [k.id for k in kpis.kpis if k.score and k.computable]
        await conn.fetch(NAIVE_TOTALS, codes, metrics(scored), start, end)


# -- one volume ------------------------------------------------------------------------------------


def start_api(dsn: str, log: Path, variant: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``python -m services.kpi_api`` (or the variant command) on a free port, once ready."""
    from infra.processes import free_port, spawn

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=dsn,
        KPI_API_PORT=str(port),
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
        KPI_API_RATE_LIMIT_PER_S="1000000",
        KPI_API_RATE_LIMIT_BURST="1000000",
        CLOCK_OFFSET_SECONDS=str(NOW.timestamp() - time.time()),  # the clock at NOW, whenever it runs
        **(variant or {}).get("env", {}),
    )
    proc = spawn(
        variant["argv"] if variant else [sys.executable, "-m", "services.kpi_api"], log_path=log, env=env, cwd=ROOT
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)


def run_mix(
    url: str, key: str, mix: dict[str, list[dict[str, Any]]], warmup: int, pids: dict[str, int | None], label: str
) -> dict[str, Any]:
    """Every question of the mix in turn, one keep-alive connection; stats of the measured ones."""
    result: dict[str, Any] = {}
    by_tag: dict[str, list[float]] = {}
    digests: list[str] = []
    cpu_before = {k: tree_cpu_seconds(p) for k, p in pids.items()}
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=120) as client:
        for kind, qs in mix.items():
            lat = []
            for i, q in enumerate(qs):
                began = time.perf_counter()
                response = client.get(url_of(q))
                took = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{url_of(q)} → {response.status_code} {response.text[:500]}")
                if i >= warmup:
                    lat.append(took)
                    by_tag.setdefault(q["tag"], []).append(took)
                digests.append(hashlib.blake2b(response.content, digest_size=8).hexdigest())
            s = stats_ms(lat)
            result[f"{kind}_p50_ms"], result[f"{kind}_p99_ms"] = s["p50"], s["p99"]
            say(f"  {label} {kind}: {s}")
    result["cpu_s"] = {k: round(tree_cpu_seconds(p) - cpu_before[k], 1) for k, p in pids.items()}
    result["by_shape"] = {t: stats_ms(v) for t, v in sorted(by_tag.items())}
    result["digests"] = digests
    return result


async def measure(
    srv: Any, name: str, multiplier: int, args: argparse.Namespace, workdir: Path, variant: dict[str, Any] | None
) -> dict[str, Any]:
    from infra.processes import stop
    from schemas.kpi import load_registry
    from services.runtime.auth import create_key

    database = fresh_name(f"kpi{name}")
    dsn = await fresh_database(srv.admin_dsn, database)
    try:
        pg_before = tree_cpu_seconds(srv.postgres_pid)
        rows = await build(dsn, multiplier, args.events_per_hour, args.seed)
        say(f"{name}: loaded {rows} (PostgreSQL CPU {tree_cpu_seconds(srv.postgres_pid) - pg_before:.0f}s)")
        conn = await asyncpg.connect(dsn)
        if not args.cold:  # the day and month grains (and their keys) in the OS cache, as on a server in use
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            for rel in ("counters_daily", "counters_daily_pkey", "counters_monthly", "counters_monthly_pkey"):
                await conn.execute("SELECT pg_prewarm($1::regclass, 'read')", rel)
        key = (await create_key(conn, kind="operator", label="benchmark", scope_unit="38")).key
        mix = questions(random.Random(args.seed), args.warmup + args.requests)
        result: dict[str, Any] = {"rows": rows["counters_hourly"], "tables": rows}
        for label, how in (("api", None), ("variant", variant)):
            if label == "variant" and not variant:
                continue
            proc, url = start_api(dsn, workdir / f"kpi-{name}-{label}.log", how)
            try:
                got = run_mix(
                    url, key, mix, args.warmup, {"api": proc.pid, "postgres": srv.postgres_pid}, f"{name} {label}"
                )
            finally:
                stop(proc, timeout_s=10)
            if label == "api":
                result.update(got)
            else:
                differ = sum(a != b for a, b in zip(result["digests"], got.pop("digests"), strict=True))
                result["variant"] = {**got, "answers_differing_from_api": differ}
        result.pop("digests")
        kpis = load_registry()
        from infra.migrate import reference_registry

        registry = reference_registry()
        units = {
            "commune": sorted({u.code for u in registry.all_units() if u.level == 3}),
            "former_district": sorted(
                {u.code for u in registry.all_units() if u.level == 3}
                | {u.code for u in registry.at_level(2, dt.date(2025, 6, 30))}
            ),
        }
        naive_lat: dict[str, list[float]] = {}
        for kind, qs in mix.items():
            for q in qs[args.warmup : args.warmup + args.naive_requests]:
                began = time.perf_counter()
                await naive(conn, q, kpis, units)
                naive_lat.setdefault(kind, []).append((time.perf_counter() - began) * 1000)
        every = [x for v in naive_lat.values() for x in v]
        result["naive_hourly_p50_ms"], result["naive_hourly_p99_ms"] = stats_ms(every)["p50"], stats_ms(every)["p99"]
        result["naive_hourly"] = {k: stats_ms(v) for k, v in naive_lat.items()}
        say(f"  {name} naive hourly-only SQL: {result['naive_hourly']}")
        if args.explain:
            result["explain"] = await explain(conn)
            say(f"  {name} EXPLAIN ANALYZE of the widest ranking read:\n{result['explain']}")
        await conn.close()
        return result
    finally:
        if not args.keep_databases:
            await drop_database(srv.admin_dsn, database)


async def explain(conn: asyncpg.Connection) -> str:
    """EXPLAIN ANALYZE of the API's totals SQL for a 12-month ranking of the processing-time
    KPI (11 counters) over today's communes: whole months, so only the monthly grain."""
    from services.core.calendar import decompose
    from services.readmodels.counters import totals_sql

    codes = today_communes()
    metrics = [f"dossier.processing_le_{h}h" for h in HOURS] + ["dossier.resolved"]
    sql, ranges = totals_sql(decompose(_month(7), _month(19)))
    plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, codes, metrics, None, *ranges)
    return "\n".join(r[0] for r in plan)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from benchmarks.support import scratch, variant_of

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kpi_queries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--volumes", default="1x,4x,16x")
    p.add_argument(
        "--events-per-hour",
        type=float,
        default=300,
        help="events per hour of the whole province at 1x (4x and 16x multiply it)",
    )
    p.add_argument("--requests", type=int, default=300, help="measured requests per kind")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--naive-requests", type=int, default=30, help="naive SQL questions per kind")
    p.add_argument("--seed", type=int, default=766)
    p.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the widest totals read")
    p.add_argument("--cold", action="store_true", help="do not pre-read the day/month tables (pg_prewarm)")
    p.add_argument(
        "--variant-cmd",
        default=None,
        help="also run the mix against this command instead of "
        "`python -m services.kpi_api`, same database (a proposal tried from outside the repo)",
    )
    p.add_argument("--variant-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--database-url", default=None, help="external PostgreSQL admin DSN")
    p.add_argument("--keep-databases", action="store_true")
    args = p.parse_args(argv)
    logs_to_stderr()
    variant = variant_of(args.variant_cmd, args.variant_env)
    volumes: dict[str, Any] = {}
    load_before = round(os.getloadavg()[0], 2)
    with scratch() as workdir, bench_servers(workdir, "unused:0", args.database_url) as srv:
        for name in args.volumes.split(","):
            volumes[name] = asyncio.run(measure(srv, name, VOLUMES[name], args, workdir, variant))
    kinds = ("series", "ranking", "scorecard", "score")
    goals = {f"{k}_p99_ms <= 50 at 1x": volumes.get("1x", {}).get(f"{k}_p99_ms", 1e9) <= 50 for k in kinds}
    if "1x" in volumes and "16x" in volumes:
        one, big = volumes["1x"], volumes["16x"]
        goals.update({f"{k}_p99 16x <= 2 x 1x": big[f"{k}_p99_ms"] <= 2 * one[f"{k}_p99_ms"] for k in kinds})
        for shape in ("ranking_commune_month", "ranking_commune_year"):
            goals[f"{shape}_p99 16x <= 2 x 1x"] = big["by_shape"][shape]["p99"] <= 2 * one["by_shape"][shape]["p99"]
    result = {
        "benchmark": "kpi_queries",
        "volumes": volumes,
        "goals": goals,
        "events_per_hour_1x": args.events_per_hour,
        "requests_per_kind": args.requests,
        "prewarmed": not args.cold,
        "variant": {"cmd": args.variant_cmd, "env": variant["env"]} if variant else None,
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        **git_state(),
    }
    print(json.dumps(result, default=str), flush=True)
    return result


if __name__ == "__main__":
    main()
