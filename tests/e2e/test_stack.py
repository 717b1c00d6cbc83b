"""`make run`'s stack end to end: `python -m infra.stack` on the embedded broker and
PostgreSQL, every service as its own process.

- every HTTP service answers 200 on /readyz within 60 s of start;
- the dev credentials file has the documented shape and its keys work;
- if the embedded broker or PostgreSQL dies, the services depending on it answer 503 until
  the stack restarts it, then 200; no service process crashes, and events sent after a
  broker restart (an empty broker) are still counted;
- SIGINT stops every process of the stack within 10 seconds;
- the start is quiet: no warning on the console, no ``role "root" does not exist`` from
  PostgreSQL;
- a second run on the same data resumes the simulator where it stopped: it does not send
  its history again (the aggregator sees no more duplicates than the simulator's own).

The stack runs on the real clock: events are at today's times, from today's communes.
"""

import datetime as dt
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from infra.processes import free_port, spawn, stop
from services.core.calendar import VN
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
INGEST = ("education", "health", "transport", "culture")


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Stack:
    def __init__(self, data_dir: Path, **extra_env: str) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in (*INGEST, "aggregator", "kpi_api", "alerts", "connectors")}
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.update(
            STACK_DATA_DIR=str(data_dir),
            STACK_KAFKA_PORT=str(free_port()),
            STACK_POSTGRES_PORT=str(free_port()),
            STACK_SIMULATOR_RATE="3000",
            STACK_SIMULATOR_HISTORY_DAYS="0.2",  # the last 5 hours, at the full rate
            PYTHONPATH=str(ROOT),
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        )
        env.update(extra_env)
        self.started = time.monotonic()
        self.proc = spawn([sys.executable, "-m", "infra.stack"], log_path=data_dir / "stack.out", env=env, cwd=ROOT)

    def state(self) -> dict[str, Any]:
        path = self.data_dir / "stack.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def ready(self, name: str) -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[name]}/readyz", timeout=5).status_code
        except httpx.HTTPError:
            return None

    def http_services(self) -> list[str]:
        return [name for name, svc in self.state().get("services", {}).items() if svc.get("port")]

    def pids(self) -> list[int]:
        state = self.state()
        return [
            p
            for p in (
                state.get("supervisor_pid"),
                state.get("broker_pid"),
                state.get("postgres_pid"),
                *(s["pid"] for s in state.get("services", {}).values()),
            )
            if p
        ]

    def log(self) -> str:
        return (self.data_dir / "stack.out").read_text(errors="replace")[-3000:]

    def metric(self, service: str, name: str, label: str = "") -> float:
        """Sum of a Prometheus metric's samples (with ``label`` in their labels)."""
        text = httpx.get(f"http://127.0.0.1:{self.ports[service]}/metrics", timeout=5).text
        pattern = re.compile(rf"^{name}(\{{[^}}]*\}})? (\S+)$", re.M)
        return sum(float(m[2]) for m in pattern.finditer(text) if label in (m[1] or ""))

    def drained(self) -> tuple[float, float]:
        """(events the ingest services accepted, events the aggregator read: counted + duplicate)."""
        accepted = sum(self.metric(s, "ingest_events_total", 'outcome="accepted"') for s in INGEST)
        return accepted, self.metric("aggregator", "aggregator_events_total")


def simulator_log(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "logs" / "simulator.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path / "smartcity")
    (tmp_path / "smartcity").mkdir(exist_ok=True)
    yield running
    stop(running.proc, timeout_s=15, sig=signal.SIGINT)


def test_stack_runs_recovers_and_stops_clean(stack: Stack) -> None:
    # 1. everything ready within 60 s of start
    state = eventually_sync(stack.state, lambda s: bool(s.get("services")), timeout_s=60, what="stack state")
    names = stack.http_services()
    assert {"education", "health", "transport", "culture", "aggregator", "kpi_api"} <= set(names), state
    eventually_sync(
        lambda: {n: stack.ready(n) for n in names},
        lambda r: all(v == 200 for v in r.values()),
        timeout_s=max(1.0, 60 - (time.monotonic() - stack.started)),
        what="every /readyz 200",
    )
    assert time.monotonic() - stack.started < 60

    credentials = json.loads((stack.data_dir / "dev-credentials.json").read_text())
    assert set(credentials["ingest"]) == set(INGEST)
    assert set(credentials["operator"]) == {"province"}
    service_pids = {n: s["pid"] for n, s in stack.state()["services"].items()}
    supervisor = psutil.Process(stack.state()["supervisor_pid"])

    # 2. the broker dies: with the supervisor paused, the ingest services answer 503 …
    supervisor.suspend()
    try:
        os.kill(stack.state()["broker_pid"], signal.SIGKILL)
        eventually_sync(
            lambda: stack.ready("health"), lambda code: code == 503, timeout_s=30, what="503 while broker down"
        )
    finally:
        supervisor.resume()
    # … then 200 again once the stack has restarted it (empty) and re-provisioned its topics
    eventually_sync(
        lambda: {n: stack.ready(n) for n in INGEST},
        lambda r: all(v == 200 for v in r.values()),
        timeout_s=60,
        what="ingest services ready after broker restart",
    )

    # events sent to the new, empty broker are still counted (the aggregator's reset rule):
    # Phường Hàm Rồng (14758, a commune since 2025-07-01), yesterday at this hour - before
    # the simulator's history, so the hour holds this event only
    key = credentials["ingest"]["culture"]
    hour = dt.datetime.now(VN).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    event = {
        "specversion": "1.0",
        "id": "after-reset-1",
        "source": "/e2e/culture",
        "unit": "14758",
        "type": "vn.gov.thanhhoa.culture.library.loan_recorded",
        "time": (hour + dt.timedelta(minutes=30)).isoformat(),
        "data": {"format": "electronic"},
    }

    def send() -> tuple[int, str]:  # a client retries on 503 (Retry-After), as the contract says
        answer = httpx.post(
            f"http://127.0.0.1:{stack.ports['culture']}/v1/events",
            json=event,
            timeout=30,
            headers={"authorization": f"Bearer {key}", "content-type": "application/cloudevents+json"},
        )
        return answer.status_code, answer.text

    status, text = eventually_sync(send, lambda r: r[0] != 503, timeout_s=60, every_s=1, what="event accepted")
    assert status == 202, text
    operator = credentials["operator"]["province"]

    def loans() -> float | None:
        r = httpx.get(
            f"http://127.0.0.1:{stack.ports['kpi_api']}/v1/kpis/library_loans/series",
            params={
                "unit": "14758",
                "from": hour.isoformat(),
                "to": (hour + dt.timedelta(hours=1)).isoformat(),
                "granularity": "hour",
                "sector": "culture",
            },
            headers={"authorization": f"Bearer {operator}"},
        )
        return r.json()["items"][0]["value"] if r.status_code == 200 else None

    eventually_sync(loans, lambda v: v == 1, timeout_s=60, what="event after broker reset counted")

    # 3. PostgreSQL dies: services answer 503, then 200 after the restart
    supervisor.suspend()
    try:
        os.kill(stack.state()["postgres_pid"], signal.SIGKILL)
        eventually_sync(
            lambda: stack.ready("kpi_api"), lambda code: code == 503, timeout_s=30, what="503 while PostgreSQL down"
        )
    finally:
        supervisor.resume()
    eventually_sync(
        lambda: {n: stack.ready(n) for n in names},
        lambda r: all(v == 200 for v in r.values()),
        timeout_s=60,
        what="every service ready after PostgreSQL restart",
    )
    # no service process crashed or needed a restart
    assert {n: s["pid"] for n, s in stack.state()["services"].items()} == service_pids

    first_history = eventually_sync(
        lambda: histories_sent(stack.data_dir), lambda sent: len(sent) == 1, what="the simulator's history sent"
    )[0]

    # 4. SIGINT: every process of the stack is gone within 10 s
    pids = stack.pids()
    assert len(pids) >= 9
    stack.proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    eventually_sync(
        lambda: [p for p in pids if alive(p)],
        lambda left: not left,
        timeout_s=10,
        every_s=0.05,
        what="no stack process left",
    )
    assert time.monotonic() - began < 10

    # 5. no credential, token or personal data in any log line of the whole run
    keys = [*credentials["ingest"].values(), *credentials["operator"].values()]
    secrets_ = keys + [k.split("_", 2)[2] for k in keys]  # whole keys and their secret parts
    logs = list((stack.data_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"education", "health", "transport", "culture", "aggregator", "kpi_api"}
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets_:
            assert secret not in text, f"a key leaked into {path.name}"
        assert "Bearer " not in text, f"an Authorization header was logged in {path.name}"
        # 12-digit citizen ID numbers (CCCD) never travel in events, so never in logs
        assert not re.search(r"\b0\d{11}\b", text), f"something shaped like a citizen ID in {path.name}"

    # 6. a quiet start: nothing but information on the console before the banner's end, and
    # PostgreSQL saw no connection as the OS user
    console = (stack.data_dir / "stack.out").read_text(errors="replace")
    start = console.partition("Ctrl-C stops everything.")[0]
    assert start and not re.search(r"warn|XDG_RUNTIME_DIR|setuptools", start, re.I), start
    postgres_log = (stack.data_dir / "logs" / "postgres.log").read_text(errors="replace")
    assert 'role "root" does not exist' not in postgres_log

    # 7. a second run on the same data resumes the simulator: it does not send history again
    assert first_history > 5000  # five hours at 3000 events an hour
    again = Stack(stack.data_dir)
    try:
        eventually_sync(
            lambda: histories_sent(again.data_dir), lambda sent: len(sent) == 2, timeout_s=120, what="second run"
        )
        assert [e["event"] for e in simulator_log(again.data_dir)].count("resuming") == 1
        assert histories_sent(again.data_dir)[1] < first_history / 10  # only the minutes it was down
        read = eventually_sync(again.drained, lambda c: c[0] == c[1] > 0, timeout_s=60, what="aggregator drained")
        duplicates = again.metric("aggregator", "aggregator_events_total", 'outcome="duplicate"')
        assert duplicates <= 0.05 * read[1] + 5, (duplicates, read)  # the simulator's own 1 %, not a resend
    finally:
        stop(again.proc, timeout_s=15, sig=signal.SIGINT)


def histories_sent(data_dir: Path) -> list[int]:
    """Events of each "history sent" line of the simulator (one per run)."""
    return [int(e["events"]) for e in simulator_log(data_dir) if e.get("event") == "history sent"]
