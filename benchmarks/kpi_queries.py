"""KPI API query latency at 1x, 4x and 16x counter volume, against a naive hourly-only SQL.

``python -m benchmarks.kpi_queries`` starts the embedded PostgreSQL (or uses
``--database-url``) and for each volume builds a FRESH database with two years of counters
(local 2023-07-01 .. 2025-07-01), served by the KPI API as a real process (``python -m
services.kpi_api``, real HTTP, a province operator key, rate limit lifted, clock at
2025-06-30 12:00 local).

Volume. Counters exist per *leaf unit* (the unit events name) and for every ancestor, at
UTC hour, local day and local month grain, as the aggregator writes them.
- 1x: the 27 district-level units are the leaves: 28 units with counters (+ province);
- 4x: 3 communes (level 3, 5-digit codes, parent = a district) per district are the
  leaves: 81 + 27 + 1 = 109 units; 16x: 15 per district: 405 + 27 + 1 = 433 units.
Every leaf is as busy as a 1x district, so rows grow ~4x and ~16x (exact counts reported).
Hourly leaf counts follow the simulator (its sector mix and freqs, office/transport/museum
hours, unit profiles: digital, on-time, signed, cashless shares) at ``--events-per-hour``
for the 27 districts together - default 300, a quiet province: the simulator's 20 000 would
make 1x ~18 M hourly rows and 16x ~300 M, beyond this machine. Counts: Poisson (Binomial(8,
rate/8) below 8, else normal), derived counters by thinning (online <= received, paid <=
fee required, cumulative processing-time histogram...); the 47 stored counters the KPIs
read, zeros never written. Districts = sums of their communes, province = sum of the
districts, days and months = sums of hours in Asia/Ho_Chi_Minh - by construction (INSERT
... SELECT ... GROUP BY, days/months in time order like the aggregator appends them). The
draws (~200 M at 16x) run inside PostgreSQL (no numpy here); units, dossiers (open ones
feed the live counters) and projects go in with ``copy_records_to_table``. Unless
``--cold``, the day/month tables and keys are pre-read into the OS cache (pg_prewarm).

Questions: a fixed random mix (``--seed``), ``--requests`` per kind after ``--warmup``:
series (daily over 90 days, monthly over 2 years; province or a district), ranking
(district level, and commune level from 4x; a month or 12 months), scorecard (a unit, a
month), score (district level, a quarter); client-side latency, sequential, keep-alive.
Baseline, same run: the same questions as naive SQL over ``counters_hourly`` only (the
rolled-up unit rows, no day/month grain), in-process, ``--naive-requests`` per kind.
``--variant-cmd`` runs the same mix against another command (a proposal applied from
outside the repo) on the same database. Progress: stderr; last stdout line: one JSON object.
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
START, END = dt.datetime(2023, 7, 1, tzinfo=VN), dt.datetime(2025, 7, 1, tzinfo=VN)
NOW = dt.datetime(2025, 6, 30, 12, tzinfo=VN)
VOLUMES = {"1x": 0, "4x": 3, "16x": 15}  # communes per district
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
        f"FROM bench_leaf l CROSS JOIN bench_hours h "
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


async def build(dsn: str, communes: int, per_hour: float, seed: int) -> dict[str, Any]:
    """Units, leaf profiles, hourly leaf counters, roll-ups, days, months, dossiers, projects."""
    from infra.migrate import reference_units
    from services.simulator import generator
    from services.simulator.profiles import activity, profile_for

    rng = random.Random(seed)
    districts = [u for u in reference_units() if u.level == 2]
    profiles = {u.code: profile_for(u, rng) for u in districts}
    total_weight = sum(p.weight for p in profiles.values())
    leaves: list[tuple[Any, ...]] = []
    units: list[tuple[Any, ...]] = []
    for d in districts:
        p = profiles[d.code]
        if not communes:
            leaves.append((d.code, p.weight / total_weight, p.digital, p.on_time, p.signed, p.on_system, p.cashless))
        for i in range(1, communes + 1):
            code = f"{d.code}{i:02d}"
            population = (d.population or 150_000) // communes
            units.append(
                (code, f"Xã {d.name} {i}", f"Xã {i}, {d.full_name}", "commune", 3, d.code, d.valid_to, population)
            )
            jitter = [
                min(0.99, max(0.01, x + rng.uniform(-0.05, 0.05)))
                for x in (p.digital, p.on_time, p.signed, p.on_system, p.cashless)
            ]
            leaves.append((code, p.weight / total_weight, *jitter))
    act = [
        (s, h, wd, activity(s, h, wd) / generator._WEEK_ACTIVITY[s])
        for s in generator.MIX
        for h in range(24)
        for wd in range(7)
    ]
    conn = await asyncpg.connect(dsn)
    began = time.monotonic()
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'; SET work_mem = '256MB'")
        await conn.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        if units:
            columns = ["code", "name", "full_name", "kind", "level", "parent_code", "valid_to", "population"]
            await conn.copy_records_to_table("units", records=units, columns=columns)
        await conn.execute(
            """CREATE TABLE bench_leaf (code text, share float8, digital float8, on_time float8, signed float8,
                                     on_system float8, cashless float8);
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
        await conn.copy_records_to_table("bench_activity", records=act)
        mix_total = generator._MIX_TOTAL
        await parallel(dsn, [family_sql(*f, mix_total, per_hour) for f in FAMILIES])
        say(f"  leaf hours drawn: {time.monotonic() - began:.0f}s")
        cols = "metric, sector, bucket, sum(value)::int8"
        if communes:  # districts = sums of their communes
            await conn.execute(f"""INSERT INTO counters_hourly SELECT u.parent_code, {cols}
                FROM counters_hourly c JOIN units u ON u.code = c.unit_code WHERE u.level = 3
                GROUP BY u.parent_code, metric, sector, bucket""")
        await conn.execute(f"""INSERT INTO counters_hourly SELECT '38', {cols}
            FROM counters_hourly c JOIN units u ON u.code = c.unit_code WHERE u.level = 2
            GROUP BY metric, sector, bucket""")
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
        for table in ("counters_hourly", "counters_daily", "counters_monthly"):
            await conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (unit_code, metric, sector, bucket)")
        say(f"  primary keys: {time.monotonic() - began:.0f}s")
        codes = [leaf[0] for leaf in leaves]
        for table, (columns, records) in {
            "dossiers": synthetic_dossiers(rng, NOW, codes),
            "projects": synthetic_projects(rng, NOW, codes),
        }.items():
            await conn.copy_records_to_table(table, records=records, columns=columns)
        await conn.execute("DROP TABLE bench_leaf, bench_activity, bench_hours")
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


# -- the question mix ----------------------------------------------------------------------------

# fmt: off
SERIES_KPIS = ("dossier_on_time_rate", "online_submission_rate", "avg_processing_hours", "processing_p90_hours",
               "e_result_rate", "digital_take_up", "ridership", "online_booking_rate", "incoming_electronic_rate")
# fmt: on
RANK_KPIS = (*SERIES_KPIS, "telemedicine_per_100k", "cashless_fare_rate")


def _month(index: int) -> dt.datetime:  # index 0 = 2023-07
    return dt.datetime(2023 + (6 + index) // 12, (6 + index) % 12 + 1, 1, tzinfo=VN)


def questions(rng: random.Random, communes: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """``count`` questions per kind: path, query and a tag (series/ranking have sub-shapes)."""
    from infra.migrate import reference_units

    districts = [u.code for u in reference_units() if u.level == 2]
    levels = ["district"] + (["commune"] if communes else [])
    communes_codes = [f"{d}{i:02d}" for d in districts for i in range(1, communes + 1)]
    out: dict[str, list[dict[str, Any]]] = {"series": [], "ranking": [], "scorecard": [], "score": []}
    for _ in range(count):
        unit = rng.choice(["38", rng.choice(districts)])
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
                "tag": f"series_{shape['granularity']}_{'province' if unit == '38' else 'district'}",
            }
        )
        level = rng.choice(levels)
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
        code = rng.choice(["38", rng.choice(districts)] + ([rng.choice(communes_codes)] if communes else []))
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
            {"path": "/v1/score", "level": "district", "from": _month(3 * q), "to": _month(3 * q + 3), "tag": "score"}
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
    FROM counters_hourly WHERE unit_code = $1 AND metric = ANY($2::text[]) AND bucket >= $3 AND bucket < $4
    GROUP BY 1, 2"""


async def naive(conn: asyncpg.Connection, q: dict[str, Any], kpis: Any, units: dict[int, list[str]]) -> None:
    from services.core import calendar as periods
    from services.core.kpis.formulas import counters_of

    def metrics(ids: list[str]) -> list[str]:
        return sorted(
            set().union(*(counters_of(kpis.get(i)) for i in ids)) - {"dossier.open_not_due", "dossier.open_overdue"}
        )

    start, end = q["from"], q["to"]
    prev = periods.previous(start, end)
    if q["tag"].startswith("series"):
        kpi = q["path"].split("/")[3]
        await conn.fetch(NAIVE_SERIES, q["unit"], metrics([kpi]), start, end, q["granularity"])
    elif q["tag"].startswith("ranking"):
        codes = units[2 if q["level"] == "district" else 3]
        for a, b in ((start, end), prev):
            await conn.fetch(NAIVE_TOTALS, codes, metrics([q["path"].split("/")[3]]), a, b)
    elif q["tag"] == "scorecard":
        every = metrics([k.id for k in kpis.kpis])
        for a, b in ((start, end), prev):
            await conn.fetch(NAIVE_TOTALS, [q["unit"]], every, a, b)
    else:
        await conn.fetch(NAIVE_TOTALS, units[2], metrics([k.id for k in kpis.kpis if k.score]), start, end)


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
        CLOCK_OFFSET_SECONDS=str(NOW.timestamp() - time.time()),
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
    srv: Any, name: str, communes: int, args: argparse.Namespace, workdir: Path, variant: dict[str, Any] | None
) -> dict[str, Any]:
    from infra.processes import stop
    from schemas.kpi import load_registry
    from services.runtime.auth import create_key

    database = fresh_name(f"kpi{name}")
    dsn = await fresh_database(srv.admin_dsn, database)
    try:
        pg_before = tree_cpu_seconds(srv.postgres_pid)
        rows = await build(dsn, communes, args.events_per_hour, args.seed)
        say(f"{name}: loaded {rows} (PostgreSQL CPU {tree_cpu_seconds(srv.postgres_pid) - pg_before:.0f}s)")
        conn = await asyncpg.connect(dsn)
        if not args.cold:  # the day and month grains (and their keys) in the OS cache, as on a server in use
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            for rel in ("counters_daily", "counters_daily_pkey", "counters_monthly", "counters_monthly_pkey"):
                await conn.execute("SELECT pg_prewarm($1::regclass, 'read')", rel)
        key = (await create_key(conn, kind="operator", label="benchmark", scope_unit="38")).key
        mix = questions(random.Random(args.seed), communes, args.warmup + args.requests)
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
        units = {
            lvl: [r[0] for r in await conn.fetch("SELECT code FROM units WHERE level = $1 ORDER BY code", lvl)]
            for lvl in (2, 3)
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
            result["explain"] = await explain(conn, communes)
            say(f"  {name} EXPLAIN ANALYZE of the widest ranking read:\n{result['explain']}")
        await conn.close()
        return result
    finally:
        if not args.keep_databases:
            await drop_database(srv.admin_dsn, database)


async def explain(conn: asyncpg.Connection, communes: int) -> str:
    """EXPLAIN ANALYZE of the API's totals SQL for a 12-month ranking of the processing-time
    KPI (11 counters) at the widest level: whole months, so the day and hour pieces are the
    epoch-padded empty ranges."""
    try:
        from services.readmodels.counters import _TOTALS_SQL, _pad
    except ImportError:  # the store no longer pads absent pieces
        return "n/a: services.kpi_api.adapters.store has no _TOTALS_SQL/_pad any more"
    from services.core.calendar import decompose

    codes = [r[0] for r in await conn.fetch("SELECT code FROM units WHERE level = $1", 3 if communes else 2)]
    metrics = [f"dossier.processing_le_{h}h" for h in HOURS] + ["dossier.resolved"]
    pieces = decompose(_month(3), _month(15))
    plan = await conn.fetch(
        "EXPLAIN (ANALYZE, BUFFERS) " + _TOTALS_SQL,
        codes,
        metrics,
        None,
        *pieces.months[0],
        *_pad(pieces.days, dt.date(1970, 1, 1)),
        *_pad(pieces.hours, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
    )
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
        help="events per hour of the 27 districts together at 1x (each leaf keeps its rate)",
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
        # like for like: commune-level rankings do not exist at 1x
        for shape in ("ranking_district_month", "ranking_district_year"):
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
