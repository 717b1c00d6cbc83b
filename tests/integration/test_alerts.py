"""The alerts worker against a real broker and a real PostgreSQL.

The worker runs as a process (``python -m services.alerts``) with a controllable clock:
``ALERTS_CLOCK_FILE`` names a file holding "now", which the test rewrites. KPI values come
from the real aggregator (events produced to the sector topics, counted in PostgreSQL,
announced on ``kpi-updates``). Webhooks go to a receiver in the test that verifies the
signature and counts deliveries. Synchronisation is by polling conditions, never by sleeping.
"""

import datetime as dt
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiohttp import web

from infra.migrate import reference_units
from infra.processes import free_port
from schemas.kpi import load_registry
from schemas.metrics import LIVE_METRICS
from schemas.topics import alerts_topic
from services.alerts.clock import write_clock
from services.alerts.notify import verify
from services.core.calendar import VN, local
from services.core.kpis.formulas import counters_of
from services.core.units import UnitRegistry
from services.readmodels.counters import KpiStore
from services.readmodels.kpis import KpiReader, Period
from services.simulator.generator import SectorSystems
from tests.support.kafka import fill, new_prefix, provision, read_all
from tests.support.procs import ServiceProcess, service_env
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

UNITS = reference_units()
REGISTRY = UnitRegistry.from_units(UNITS)
SECRET = "test-webhook-secret"
INCOMING = "vn.gov.thanhhoa.health.document.incoming_registered"
_ids = itertools.count(1)

NO_SILENCE_RULES = 'version = "test"\n[threshold]\nmin_denominator = 5\n'
SILENCE_RULES = """version = "test"
[threshold]
exclude = ["dossier_on_time_rate", "online_submission_rate", "satisfaction_rate", "incoming_electronic_rate",
           "outgoing_agency_signed_rate", "digital_take_up"]
[[silence]]
family = "incoming_on_system"
name_vi = "Văn bản đến được xử lý trên hệ thống"
name_en = "Incoming documents handled electronically"
types = ["*.document.incoming_registered"]
where = { processed_on_system = true }
period_working_hours = 2.0
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


def incoming(unit: str, when: dt.datetime, on_system: bool) -> dict[str, Any]:
    n = next(_ids)
    return {
        "specversion": "1.0",
        "id": f"alerts-test-{n}",
        "source": f"/test/health/{unit}",
        "type": INCOMING,
        "time": when.isoformat(),
        "unit": unit,
        "data": {"document_id": f"D{n}", "received_electronically": on_system, "processed_on_system": on_system},
    }


# -- a webhook receiver --------------------------------------------------------------------


@dataclass
class Receiver:
    """Counts deliveries; answers 500 to the first ``fail_first`` attempts of each one."""

    fail_first: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0
    url: str = ""
    in_flight: int = 0
    runner: web.AppRunner | None = None

    def busy(self) -> int:
        """Open connections plus requests being handled (a dead sender's last POST may still be)."""
        server = self.runner.server if self.runner else None
        return (len(server.connections) if server else 0) + self.in_flight

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(body, SECRET, request.headers.get("X-Smartcity-Signature")):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = request.headers["X-Smartcity-Delivery"]
        self.attempts[delivery] += 1
        if self.attempts[delivery] <= self.fail_first:
            return web.Response(status=500)
        self.delivered[delivery] += 1
        self.bodies[delivery] = orjson.loads(body)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    rec.runner = runner
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    await runner.cleanup()


# -- processes -----------------------------------------------------------------------------


@dataclass
class Harness:
    servers: Servers
    dsn: str
    prefix: str
    workdir: Path
    clock_file: Path

    def set_clock(self, moment: dt.datetime) -> None:
        write_clock(self.clock_file, moment)

    def alerts(self, rules: str, webhook: str = "", **extra: str) -> ServiceProcess:
        rules_file = self.workdir / f"rules-{self.prefix}toml"
        rules_file.write_text(rules)
        env = service_env(
            self.servers.bootstrap,
            self.dsn,
            self.prefix,
            ALERTS_CLOCK_FILE=str(self.clock_file),
            ALERTS_RULES_FILE=str(rules_file),
            ALERTS_DATA_DIR=str(self.workdir / f"faust-{self.prefix}"),
            ALERTS_SILENCE_CHECK_S="0.3",
            ALERTS_DELIVERY_POLL_S="0.5",
            ALERTS_WEBHOOKS=webhook,
            ALERTS_WEBHOOK_SECRET=SECRET,
            ALERTS_WEBHOOK_BACKOFF_S="0.2",
            **extra,
        )
        return ServiceProcess("services.alerts", env, "ALERTS_PORT", self.workdir)

    def aggregator(self) -> ServiceProcess:
        env = service_env(self.servers.bootstrap, self.dsn, self.prefix, AGGREGATOR_BATCH_MAX_AGE_MS="50")
        return ServiceProcess("services.aggregator", env, "AGGREGATOR_PORT", self.workdir)

    def produce(self, events: list[dict[str, Any]]) -> None:
        fill(self.servers.bootstrap, self.prefix, events)

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def alerts_of(self, rule: str) -> list[dict[str, Any]]:
        rows = await self.rows("SELECT * FROM alerts WHERE rule_id = $1 ORDER BY id", rule)
        return [{**dict(r), "details": orjson.loads(r["details"])} for r in rows]


@pytest.fixture
def harness(servers: Servers, dsn: str, workdir: Path) -> Harness:
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    return Harness(servers, dsn, prefix, workdir, workdir / f"clock-{prefix}txt")


async def metric(process: ServiceProcess, name: str) -> float:
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"{process.url}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return -1.0
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


async def checked_at(process: ServiceProcess, moment: dt.datetime) -> None:
    """Wait until two silence checks ran with the clock at ``moment``."""
    await eventually(lambda: metric(process, "alerts_clock_seconds"), lambda v: v == moment.timestamp(), timeout_s=30)
    done = await metric(process, "alerts_silence_checks_total")
    await eventually(lambda: metric(process, "alerts_silence_checks_total"), lambda v: v >= done + 2, timeout_s=30)


async def _async(value: Any) -> Any:
    return value


# -- tests ---------------------------------------------------------------------------------


async def test_threshold_alert_hysteresis_and_a_webhook_that_fails_twice(harness: Harness, receiver: Receiver) -> None:
    """incoming_electronic_rate of one commune of district 390 - the only unit reporting, so
    its district and the province have the same value: 20 % (red: opens) → 73 % (amber: stays
    open) → 92 % (green: closes), at all three levels. The webhook fails twice per delivery
    and still gets each once."""
    receiver.fail_first = 2
    now = at("2025-05-07 10:00")  # a Wednesday
    commune = REGISTRY.children("390", now.date())[0]
    levels = {commune, "390", "38"}
    harness.set_clock(now)
    rule = "threshold.incoming_electronic_rate"
    aggregator = harness.aggregator().start()
    alerts = harness.alerts(NO_SILENCE_RULES, webhook=receiver.url).start()
    try:
        times = [now - dt.timedelta(hours=h, minutes=m) for h in range(1, 30) for m in range(0, 60, 10)]
        harness.produce([incoming(commune, times[i], on_system=i < 2) for i in range(10)])
        opened = await eventually(
            lambda: harness.alerts_of(rule), lambda a: len(a) == 3, timeout_s=90, what="alerts opened"
        )
        assert {a["unit_code"] for a in opened} == levels and {a["state"] for a in opened} == {"open"}
        for alert in opened:
            assert alert["details"]["value"] == pytest.approx(20.0)
            assert alert["details"]["threshold"] == 60 and alert["details"]["close_threshold"] == 90

        harness.produce([incoming(commune, times[10 + i], on_system=True) for i in range(20)])  # 22/30
        hovering = await eventually(
            lambda: harness.alerts_of(rule),
            lambda a: all(x["details"]["value"] == pytest.approx(22 / 30 * 100) for x in a),
            timeout_s=60,
            what="amber value recorded",
        )
        assert {a["state"] for a in hovering} == {"open"} and len(hovering) == 3, "amber must not close an alert"

        harness.produce([incoming(commune, times[30 + i], on_system=True) for i in range(70)])  # 92/100
        closed = await eventually(
            lambda: harness.alerts_of(rule),
            lambda a: {x["state"] for x in a} == {"closed"},
            timeout_s=60,
            what="alerts closed",
        )
        assert len(closed) == 3 and all(a["closed_at"] == now for a in closed)
        history = [r["action"] for r in await harness.rows("SELECT action FROM alert_history ORDER BY id")]
        assert history.count("opened") == 3 and history.count("closed") == 3

        # the webhook: 2 failures then success, exactly once per (alert, event), signed
        wanted = {f"alert-{a['id']}-{event}" for a in closed for event in ("opened", "closed")}
        await eventually(lambda: _async(set(receiver.delivered)), lambda d: d == wanted, timeout_s=30)
        assert receiver.delivered == Counter({w: 1 for w in wanted})
        assert receiver.attempts == Counter({w: 3 for w in wanted})
        assert receiver.bad_signatures == 0
        assert all(receiver.bodies[f"alert-{a['id']}-closed"]["alert"]["state"] == "closed" for a in closed)
        deliveries = await harness.rows("SELECT webhook, attempts, delivered_at FROM alert_deliveries")
        hook = [d for d in deliveries if d["webhook"] == receiver.url]
        assert len(hook) == 6 and all(d["attempts"] == 3 and d["delivered_at"] for d in hook)
        # and the alerts topic carried every event, keyed by unit
        messages = read_all(harness.servers.bootstrap, alerts_topic(harness.prefix), expected=6)
        events = Counter((m.key(), orjson.loads(m.value())["event"]) for m in messages)
        assert events == Counter({(u.encode(), e): 1 for u in levels for e in ("alert.opened", "alert.closed")})
    finally:
        alerts.stop()
        aggregator.stop()


async def test_silence_alert_for_the_unit_that_stops_in_working_hours_only(harness: Harness) -> None:
    """Every commune reports on Friday afternoon; all but one report again on Monday morning.
    The period (2 working hours) is long past in wall time over the weekend, but no alert opens
    before Monday 08:30 - and then only for that commune. Its next event closes it."""
    # the units that send events: the communes valid that Friday (548 before the 2025 reform)
    units = sorted(u.code for u in REGISTRY.at_level(3, dt.date(2025, 5, 9)))
    assert len(units) > 500
    quiet_one = units[len(units) // 2]
    harness.set_clock(at("2025-05-09 15:30"))  # Friday
    alerts = harness.alerts(SILENCE_RULES).start()
    rule = "silence.incoming_on_system"
    try:
        matched = 0

        async def send(codes: list[str], when: dt.datetime) -> None:
            nonlocal matched
            harness.set_clock(when)
            harness.produce([incoming(c, when, on_system=True) for c in codes])
            matched += len(codes)
            await eventually(lambda: metric(alerts, "alerts_sector_events_total"), lambda v: v >= matched, timeout_s=60)

        await send(units, at("2025-05-09 15:30"))
        await send([u for u in units if u != quiet_one], at("2025-05-09 16:00"))
        for quiet in (at("2025-05-09 23:00"), at("2025-05-10 12:00"), at("2025-05-12 07:45")):
            harness.set_clock(quiet)  # night, weekend, before office hours: 1.5 h + 0.25 h < 2 h
            await checked_at(alerts, quiet)
            assert await harness.alerts_of(rule) == [], quiet
        await send([u for u in units if u != quiet_one], at("2025-05-12 08:10"))
        harness.set_clock(at("2025-05-12 08:31"))  # the quiet one: 1.5 h on Friday + 1 h 01 on Monday
        opened = await eventually(lambda: harness.alerts_of(rule), lambda a: len(a) >= 1, timeout_s=30)
        await checked_at(alerts, at("2025-05-12 08:31"))
        opened = await harness.alerts_of(rule)
        assert [(a["unit_code"], a["state"]) for a in opened] == [(quiet_one, "open")]
        assert opened[0]["details"]["last_seen"] == at("2025-05-09 15:30").astimezone(dt.UTC).isoformat()

        await send([quiet_one], at("2025-05-12 08:40"))
        closed = await eventually(lambda: harness.alerts_of(rule), lambda a: a[0]["state"] == "closed", timeout_s=30)
        assert len(closed) == 1
    finally:
        alerts.stop()


async def expected_live(dsn: str, now: dt.datetime) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(must be live, must not be live) per (rule, unit), from the final counters."""
    registry = load_registry()
    # KPIs over live dossier counters change with "now" without a kpi-update: not judged here
    kpis = [k for k in registry.kpis if k.alert and not (counters_of(k) & set(LIVE_METRICS))]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        reader = KpiReader(KpiStore(pool), registry, REGISTRY)
        # the districts and communes that exist at "now", as the worker judges them
        today = local(now).date()
        assert {k.window_days for k in kpis} == {7}, "judged here over one window"
        period = Period.window(now, 7)
        subjects = {u.code: reader.subject(u, period) for level in (2, 3) for u in REGISTRY.at_level(level, today)}
        values = await reader.values(kpis, list(subjects.values()), None, now)
    finally:
        await pool.close()
    red, green = set(), set()
    for code, subject in subjects.items():
        for kpi in kpis:
            result = values[subject.key][kpi.id]
            if result.value is None or (result.denominator or 0) < 5:
                continue
            if result.status == "red":
                red.add((f"threshold.{kpi.id}", code))
            elif result.status == "green":
                green.add((f"threshold.{kpi.id}", code))
    return red, green


async def test_sigkilled_worker_loses_no_alert_and_notifies_nobody_twice(harness: Harness, receiver: Receiver) -> None:
    start = at("2025-05-05 00:00")
    events = SectorSystems(UNITS, start, seed=5, events_per_hour=3000, duplicate_rate=0.02).take(60_000)
    now = max(dt.datetime.fromisoformat(e["time"]) for e in events)
    harness.set_clock(now)
    aggregator = harness.aggregator().start()
    alerts = harness.alerts(NO_SILENCE_RULES, webhook=receiver.url).start()
    try:
        harness.produce(events)
        # mid-stream: some alerts notified, kpi-updates still being judged
        await eventually(lambda: _async(len(receiver.delivered)), lambda n: n >= 3, timeout_s=120, every_s=0.02)
        alerts.kill()
        # what the killed worker had sent is still being received: let it land first
        await eventually(lambda: _async(receiver.busy()), lambda n: n == 0, timeout_s=30, every_s=0.01)
        before_kill = set(receiver.delivered)
        alerts.start()

        async def settled() -> tuple[bool, Any]:
            red, green = await expected_live(harness.dsn, now)
            live = {
                (r["rule_id"], r["unit_code"])
                for r in await harness.rows("SELECT rule_id, unit_code FROM alerts WHERE state <> 'closed'")
            }
            pending = await harness.rows("SELECT id FROM alert_deliveries WHERE delivered_at IS NULL")
            ok = red <= live and not (green & live) and not pending and bool(red)
            return ok, (sorted(red - live), sorted(green & live), len(pending))

        await eventually(settled, lambda s: s[0], timeout_s=120, every_s=0.5, what="alerts match the final KPIs")
    finally:
        alerts.stop()
        aggregator.stop()
    rows = await harness.rows("SELECT id, state FROM alerts")
    wanted = {f"alert-{r['id']}-opened" for r in rows} | {
        f"alert-{r['id']}-closed" for r in rows if r["state"] == "closed"
    }
    assert set(receiver.delivered) == wanted, "every transition notified"
    # Exactly once per (alert, event) for a receiver that dedupes on X-Smartcity-Delivery. A raw
    # repeat can only be the one POST per target in flight when the worker was SIGKILLed
    # (answered, not yet recorded): received before the kill, never one made afterwards.
    repeated = {d for d, n in receiver.delivered.items() if n > 1}
    assert repeated <= before_kill, repeated - before_kill
    assert len(repeated) <= 1, repeated
    assert receiver.bad_signatures == 0
    history = await harness.rows("SELECT alert_id, action, count(*) AS n FROM alert_history GROUP BY 1, 2")
    assert all(h["n"] == 1 for h in history if h["action"] in ("opened", "closed"))


# -- the KPI API: GET /v1/alerts and POST /v1/alerts/{id}/ack ---------------------------------


async def test_alerts_api_scope_paging_and_acknowledgement(dsn: str) -> None:
    from fastapi.testclient import TestClient

    from services.kpi_api.app import create_app
    from services.kpi_api.settings import KpiApiSettings
    from services.readmodels.alerts import AlertStore, NewAlert
    from services.runtime.auth import create_key
    from services.runtime.clock import FixedClock
    from services.runtime.db import create_pool
    from services.runtime.settings import DatabaseSettings

    pool = await create_pool(DatabaseSettings(url=dsn))  # type: ignore[arg-type]
    try:
        store = AlertStore(pool)
        opened_at = at("2025-05-05 09:00")
        ids = {}
        for unit, kpi in (
            ("390", "incoming_electronic_rate"),
            ("400", "incoming_electronic_rate"),
            ("400", "digital_take_up"),
        ):
            details = {"value": 12.5, "threshold": 60, "close_threshold": 90, "title": kpi, "window_days": 7}
            row = await store.open(NewAlert("threshold", f"threshold.{kpi}", unit, None, kpi, None, details), opened_at)
            assert row is not None
            ids[(unit, kpi)] = row["id"]
        async with pool.acquire() as conn:
            province = (await create_key(conn, kind="operator", label="op:province", scope_unit="38")).key
            district = (await create_key(conn, kind="operator", label="op:390", scope_unit="390")).key
            ingest = (await create_key(conn, kind="ingest", label="sys", sector="health")).key
    finally:
        await pool.close()

    def settings() -> KpiApiSettings:
        return KpiApiSettings(database=DatabaseSettings(url=dsn))  # type: ignore[arg-type]

    ack_time = at("2025-05-05 10:00")
    with TestClient(create_app(settings_factory=settings, clock=FixedClock(ack_time.astimezone(dt.UTC)))) as client:

        def get(key: str | None, **params: Any) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return client.get("/v1/alerts", params=params, headers=headers)

        def ack(key: str | None, ident: int, note: str | None = None) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return client.post(f"/v1/alerts/{ident}/ack", json={"note": note} if note else None, headers=headers)

        assert get(None).status_code == 401
        assert get(ingest).status_code == 403
        everything = get(province, state="open").json()["items"]
        assert {(a["unit"], a["kpi"]) for a in everything} == set(ids)
        first = everything[0]  # the dashboard's fields
        assert {"kpi", "unit", "unit_name", "status", "value", "threshold", "opened_at", "title"} <= set(first)
        assert first["status"] == "red" and first["value"] == 12.5 and first["threshold"] == 60
        assert [a["unit"] for a in get(district).json()["items"]] == ["390"]
        assert get(district, unit="400").status_code == 403
        assert get(province, unit="nope").status_code == 404
        assert get(province, kpi="no\x00such").status_code == 404  # never reaches PostgreSQL
        assert {a["kpi"] for a in get(province, unit="400", kpi="digital_take_up").json()["items"]} == {
            "digital_take_up"
        }
        page1 = get(province, limit=2).json()
        assert len(page1["items"]) == 2 and page1["next_cursor"]
        page2 = get(province, limit=2, cursor=page1["next_cursor"]).json()
        assert len(page2["items"]) == 1 and page2["next_cursor"] is None
        csv = client.get("/v1/alerts", headers={"authorization": f"Bearer {province}", "accept": "text/csv"})
        assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("id,kind,rule,unit")

        assert ack(None, ids[("390", "incoming_electronic_rate")]).status_code == 401
        assert ack(district, ids[("400", "digital_take_up")]).status_code == 403
        assert ack(province, 999_999).status_code == 404
        assert ack(province, 2**63).status_code == 422  # beyond bigint: a clear error, not a 500
        done = ack(district, ids[("390", "incoming_electronic_rate")], note="calling the office")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["state"] == "acknowledged" and "op:390" in body["acknowledged_by"]
        assert dt.datetime.fromisoformat(body["acknowledged_at"]) == ack_time
        again = ack(province, ids[("390", "incoming_electronic_rate")])
        assert again.status_code == 200 and again.json()["acknowledged_by"] == body["acknowledged_by"]
        assert ids[("390", "incoming_electronic_rate")] in [
            a["id"] for a in get(province, state="open").json()["items"]
        ]
        assert [a["id"] for a in get(province, state="acknowledged").json()["items"]] == [body["id"]]

    pool = await create_pool(DatabaseSettings(url=dsn))  # type: ignore[arg-type]
    try:
        await AlertStore(pool).close("threshold.digital_take_up", "400", ack_time, {"value": 95})
        conn: asyncpg.Connection
        async with pool.acquire() as conn:
            history = await conn.fetch("SELECT action, actor FROM alert_history WHERE alert_id = $1", body["id"])
            audit = await conn.fetch("SELECT action, detail FROM audit_log WHERE action = 'alert.acknowledged'")
    finally:
        await pool.close()
    assert [h["action"] for h in history] == ["opened", "acknowledged"]
    assert len(audit) == 1
    with TestClient(create_app(settings_factory=settings, clock=FixedClock(ack_time.astimezone(dt.UTC)))) as client:
        closed = client.post(
            f"/v1/alerts/{ids[('400', 'digital_take_up')]}/ack", headers={"authorization": f"Bearer {province}"}
        )
        assert closed.status_code == 409, closed.text
