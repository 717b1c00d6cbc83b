"""Alerts on `make run`'s stack: the simulator's lagging communes - the 20 formed mostly from
Hậu Lộc (400), Nông Cống (404) and Thọ Xuân (395) - work on paper, so within minutes of start
``GET /v1/alerts?state=open`` lists

- threshold alerts: their ``incoming_electronic_rate`` is red (0 %: no incoming document
  is handled on the system), as soon as the history is counted;
- silence alerts for "incoming documents handled electronically": they never send one, so
  they are silent since the alerts worker started; ``ALERTS_SILENCE_SCALE`` shortens the 4
  working hours of that rule to 72 s of office time.

The stack runs on the real clock. Office time does not pass at night, at weekends or on
holidays, so the alerts worker alone reads its clock from ``ALERTS_CLOCK_FILE``, which this
test moves in real time from the last moment before now that begins a full working hour; the
simulator's history covers the week before it. The dashboard's alerts panel reads the same
endpoint.
"""

import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.migrate import reference_registry
from infra.processes import free_port, spawn, stop
from services.alerts.clock import write_clock
from services.alerts.rules import HOLIDAYS_PATH, load_calendar
from services.core.calendar import VN
from services.core.history import main_former
from services.simulator.profiles import LAGGING_UNITS
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


def lagging_communes(day: dt.date) -> set[str]:
    registry = reference_registry()
    return {u.code for u in registry.at_level(3, day) if (m := main_former(registry, u)) and m.code in LAGGING_UNITS}


def office_start(now: dt.datetime) -> dt.datetime:
    """The latest quarter hour at or before ``now`` that begins a full working hour."""
    calendar = load_calendar(HOLIDAYS_PATH)
    moment = now.astimezone(VN).replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    while calendar.working_seconds(moment, moment + dt.timedelta(hours=1)) < 3600:
        moment -= dt.timedelta(minutes=15)
    return moment


class MovingClock(threading.Thread):
    """Writes ``origin + time elapsed`` to the alerts worker's clock file until stopped."""

    def __init__(self, path: Path, origin: dt.datetime) -> None:
        super().__init__(daemon=True)
        self.path, self.origin, self.began = path, origin, time.monotonic()
        self.halt = threading.Event()
        self.tick()

    def tick(self) -> None:
        write_clock(self.path, self.origin + dt.timedelta(seconds=time.monotonic() - self.began))

    def run(self) -> None:
        while not self.halt.wait(0.5):
            self.tick()


class AlertStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        names = ("education", "health", "transport", "culture", "aggregator", "kpi_api", "alerts", "connectors")
        self.ports = {n: free_port() for n in names}
        now = dt.datetime.now(VN)
        self.origin = office_start(now)
        self.clock = MovingClock(data_dir / "alerts-clock.txt", self.origin)
        self.clock.start()
        history_days = (now - self.origin).total_seconds() / 86400 + 7
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.update(
            STACK_DATA_DIR=str(data_dir),
            STACK_KAFKA_PORT=str(free_port()),
            STACK_POSTGRES_PORT=str(free_port()),
            # a week of history before the worker's clock, mostly dossiers and documents (the
            # history density): a dozen incoming documents per lagging commune in the KPI's
            # 7-day window; the last half hour at the full rate
            STACK_SIMULATOR_RATE="6000",
            STACK_SIMULATOR_HISTORY_DAYS=f"{history_days:.3f}",
            STACK_SIMULATOR_FULL_DAYS="0.02",
            ALERTS_CLOCK_FILE=str(self.clock.path),
            ALERTS_SILENCE_SCALE="0.005",  # 4 working hours → 72 s
            ALERTS_SILENCE_CHECK_S="5",
            PYTHONPATH=str(ROOT),
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        )
        self.started = time.monotonic()
        self.proc = spawn([sys.executable, "-m", "infra.stack"], log_path=data_dir / "stack.out", env=env, cwd=ROOT)

    def operator_key(self) -> str | None:
        path = self.data_dir / "dev-credentials.json"
        try:
            return str(json.loads(path.read_text())["operator"]["province"])
        except (OSError, ValueError, KeyError):
            return None

    def open_alerts(self) -> list[dict[str, Any]]:
        key = self.operator_key()
        if key is None:
            return []
        try:
            answer = httpx.get(
                f"http://127.0.0.1:{self.ports['kpi_api']}/v1/alerts",
                params={"state": "open", "limit": 1000},
                headers={"authorization": f"Bearer {key}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return []
        return list(answer.json()["items"]) if answer.status_code == 200 else []


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[AlertStack]:
    data = tmp_path / "smartcity"
    data.mkdir()
    running = AlertStack(data)
    yield running
    stop(running.proc, timeout_s=15, sig=signal.SIGINT)
    running.clock.halt.set()


def _units(alerts: list[dict[str, Any]], rule: str, among: set[str]) -> set[str]:
    return {a["unit"] for a in alerts if a["rule"] == rule and a["unit"] in among}


def test_lagging_communes_raise_alerts_within_minutes(stack: AlertStack) -> None:
    lagging = lagging_communes(stack.origin.date())
    assert len(lagging) == 20
    threshold = eventually_sync(
        stack.open_alerts,
        lambda alerts: _units(alerts, "threshold.incoming_electronic_rate", lagging) == lagging,
        timeout_s=300,
        every_s=1,
        what="threshold alerts for the lagging communes",
    )
    first_threshold_s = time.monotonic() - stack.started
    for alert in threshold:
        if alert["rule"] == "threshold.incoming_electronic_rate" and alert["unit"] in lagging:
            assert alert["value"] == 0 and alert["threshold"] == 60 and alert["status"] == "red"
            opened = dt.datetime.fromisoformat(alert["opened_at"])
            assert alert["unit_name"] and stack.origin <= opened < stack.origin + dt.timedelta(minutes=10)
    silence = eventually_sync(
        stack.open_alerts,
        lambda alerts: _units(alerts, "silence.incoming_on_system", lagging) == lagging,
        timeout_s=max(10.0, 300 - (time.monotonic() - stack.started)),
        every_s=1,
        what="silence alerts for the lagging communes",
    )
    first_silence_s = time.monotonic() - stack.started
    log.warning(
        "alerts after stack start: threshold %.0f s, silence %.0f s; open alerts %d (%d silence)",
        first_threshold_s,
        first_silence_s,
        len(silence),
        sum(1 for a in silence if a["kind"] == "silence"),
    )
    assert first_silence_s < 300
    # the alerts service is part of the stack and healthy
    ready = httpx.get(f"http://127.0.0.1:{stack.ports['alerts']}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
