"""`make run`'s stack end to end: `python -m infra.stack` on the embedded broker and
PostgreSQL, every service as its own process.

- every HTTP service answers 200 on /readyz within 60 s of start;
- the dev credentials file has the documented shape and its keys work;
- if the embedded broker or PostgreSQL dies, the services depending on it answer 503 until
  the stack restarts it, then 200; no service process crashes, and events sent after a
  broker restart (an empty broker) are still counted;
- SIGINT stops every process of the stack within 10 seconds.
"""

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
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in (*INGEST, "aggregator", "kpi_api", "alerts")}
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.update(
            STACK_DATA_DIR=str(data_dir),
            STACK_KAFKA_PORT=str(free_port()),
            STACK_POSTGRES_PORT=str(free_port()),
            STACK_SIMULATOR_RATE="3000",
            STACK_SIMULATOR_BACKFILL_DAYS="0.2",
            PYTHONPATH=str(ROOT),
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        )
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

    # events sent to the new, empty broker are still counted (the aggregator's reset rule)
    key = credentials["ingest"]["culture"]
    event = {
        "specversion": "1.0",
        "id": "after-reset-1",
        "source": "/e2e/culture",
        "unit": "390",
        "type": "vn.gov.thanhhoa.culture.library.loan_recorded",
        "time": "2025-05-05T09:00:00+07:00",
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
                "unit": "390",
                "from": "2025-05-05T09:00:00+07:00",
                "to": "2025-05-05T10:00:00+07:00",
                "granularity": "hour",
                "sector": "culture",
            },
            headers={"authorization": f"Bearer {operator}"},
        )
        return r.json()["items"][0]["value"] if r.status_code == 200 else None

    eventually_sync(loans, lambda v: v is not None and v >= 1, timeout_s=60, what="event after broker reset counted")

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
