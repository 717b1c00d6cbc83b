"""Alerts on `make run`'s stack: the simulator's lagging units (Hậu Lộc 400, Nông Cống 404,
Thọ Xuân 395) work on paper, so within minutes of start ``GET /v1/alerts?state=open`` lists

- threshold alerts: their ``incoming_electronic_rate`` is red (0 %: no incoming document
  is handled on the system), as soon as the backfill is counted;
- silence alerts for "incoming documents handled electronically": they never send one, so
  they are silent since the alerts worker started; the dev setting ``ALERTS_SILENCE_SCALE``
  shortens the 4 working hours of that rule to about a minute (the stack starts on Monday
  08:00, in office hours).

The dashboard's alerts panel reads the same endpoint.
"""

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.processes import free_port, spawn, stop
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
LAGGING = {"400", "404", "395"}
log = logging.getLogger(__name__)


class AlertStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {n: free_port() for n in ("education", "health", "transport", "culture", "aggregator", "kpi_api")}
        self.ports["alerts"] = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.update(
            STACK_DATA_DIR=str(data_dir),
            STACK_KAFKA_PORT=str(free_port()),
            STACK_POSTGRES_PORT=str(free_port()),
            # three days of history from Friday 08:00 (the lagging units' Friday documents make
            # their rates red), at a quarter of the default rate to spare the test machine
            STACK_SIMULATOR_RATE="1500",
            STACK_SIMULATOR_BACKFILL_DAYS="3",
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


def _kinds_for_lagging(alerts: list[dict[str, Any]], rule: str) -> set[str]:
    return {a["unit"] for a in alerts if a["rule"] == rule and a["unit"] in LAGGING}


def test_lagging_units_raise_alerts_within_minutes(stack: AlertStack) -> None:
    threshold = eventually_sync(
        stack.open_alerts,
        lambda alerts: _kinds_for_lagging(alerts, "threshold.incoming_electronic_rate") == LAGGING,
        timeout_s=300,
        every_s=1,
        what="threshold alerts for the lagging units",
    )
    first_threshold_s = time.monotonic() - stack.started
    for alert in threshold:
        if alert["rule"] == "threshold.incoming_electronic_rate" and alert["unit"] in LAGGING:
            assert alert["value"] == 0 and alert["threshold"] == 60 and alert["status"] == "red"
            assert alert["unit_name"] and alert["opened_at"].startswith("2025-05-05")
    silence = eventually_sync(
        stack.open_alerts,
        lambda alerts: _kinds_for_lagging(alerts, "silence.incoming_on_system") == LAGGING,
        timeout_s=max(10.0, 300 - (time.monotonic() - stack.started)),
        every_s=1,
        what="silence alerts for the lagging units",
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
