"""The whole system on one machine: ``make run`` → ``python -m infra.stack``.

Starts (or, when ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are set, uses) a broker and
PostgreSQL, migrates, provisions topics, writes dev credentials, starts every service as its
own process, prints where to look, then supervises: a broker or database that dies is
restarted (topics re-provisioned on an empty broker), a service that dies is restarted with
backoff. SIGINT/SIGTERM stops everything, services first, within 10 seconds.
"""

import asyncio
import datetime as dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.embedded import EmbeddedPostgres, TansuBroker
from infra.migrate import migrate
from infra.processes import spawn, stop
from infra.topics import provision_topics
from services.runtime.auth import create_key, revoke_key
from services.runtime.logs import configure_logging
from services.runtime.settings import KafkaSettings

log = structlog.get_logger("stack")

ROOT = Path(__file__).resolve().parent.parent


class StackSettings(BaseSettings):
    """Ports and behaviour of the dev stack (``STACK_*``)."""

    model_config = SettingsConfigDict(env_prefix="STACK_", extra="ignore")

    data_dir: Path = Field(default=ROOT / ".smartcity", description="Git-ignored state folder.")
    kafka_port: int = Field(default=9092, description="Embedded broker port.")
    postgres_port: int = Field(default=5432, description="Embedded PostgreSQL port.")
    simulated_start: dt.datetime = Field(
        default=dt.datetime(2025, 5, 5, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))),
        description="What 'now' is when the stack starts. The reference units are the "
        "district-level units of 2020, abolished on 1 July 2025, so the dev stack lives in May "
        "2025. Set to the real time (and load current units) in production.",
    )
    simulator_rate: float = Field(
        default=6000.0, description="Simulator events per hour (weekly mean; office hours busier)."
    )
    simulator_backfill_days: float = Field(default=3.0, description="History sent at start.")
    simulator: bool = True
    ready_timeout_s: float = 60.0


@dataclass
class ServiceProcess:
    """One supervised service process."""

    name: str
    module: str
    port: int | None
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    extra_args: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.proc = spawn(
            [sys.executable, "-m", self.module, *self.extra_args],
            log_path=self.log_path,
            env=self.env,
            cwd=ROOT,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# (name, module, default port) of every deployable, in start order.
SERVICES: tuple[tuple[str, str, int | None], ...] = (
    ("education", "services.education", 8101),
    ("health", "services.health", 8102),
    ("transport", "services.transport", 8103),
    ("culture", "services.culture", 8104),
    ("aggregator", "services.aggregator", 8105),
    ("kpi_api", "services.kpi_api", 8000),
    ("alerts", "services.alerts", 8106),
    ("connectors", "services.connectors", 8107),
)


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.data = settings.data_dir
        self.logs = self.data / "logs"
        self.broker: TansuBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.dsn = os.environ.get("DATABASE_URL", "")
        self.services: list[ServiceProcess] = []
        self.stopping = False
        offset = settings.simulated_start.timestamp() - time.time()
        self.clock_offset = 0.0 if abs(offset) < 1 else offset

    # -- servers -------------------------------------------------------------------------
    def start_servers(self) -> None:
        if not self.bootstrap:
            self.broker = TansuBroker(self.settings.kafka_port, self.logs / "tansu.log")
            self.broker.start()
            self.bootstrap = self.broker.bootstrap
        if not self.dsn:
            self.postgres = EmbeddedPostgres(
                self.data / "postgres", self.settings.postgres_port, self.logs / "postgres.log"
            )
            self.postgres.start()
            self.dsn = self.postgres.dsn
        asyncio.run(migrate(self.dsn))
        asyncio.run(self.load_starter_mappings())
        self.provision()

    async def load_starter_mappings(self) -> None:
        """The connectors' illustrative starter mappings (a province loads its own)."""
        import asyncpg

        from services.connectors.adapters.mapping_store import load_directory

        conn = await asyncpg.connect(self.dsn)
        try:
            await load_directory(conn, ROOT / "infra" / "reference" / "connectors")
        finally:
            await conn.close()

    def provision(self) -> None:
        provision_topics(KafkaSettings(bootstrap_servers=self.bootstrap))

    def watch_servers(self) -> None:
        """Restart a dead embedded server; an empty broker gets its topics again."""
        if self.broker is not None and not self.broker.alive():
            log.warning("embedded broker died; restarting it (it comes back empty)")
            try:
                self.broker.start()
                self.provision()
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("broker restart failed", error=str(exc))
        if self.postgres is not None and not self.postgres.alive():
            log.warning("embedded PostgreSQL died; restarting it")
            try:
                self.postgres.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("PostgreSQL restart failed", error=str(exc))

    # -- credentials ---------------------------------------------------------------------
    def write_dev_credentials(self) -> Path:
        """Replace the previous dev keys with new ones and write them for the newcomer."""
        import asyncpg

        async def issue() -> dict[str, object]:
            conn = await asyncpg.connect(self.dsn)
            try:
                for row in await conn.fetch(
                    "SELECT key_id FROM api_keys WHERE label LIKE 'dev:%' AND revoked_at IS NULL"
                ):
                    await revoke_key(conn, row["key_id"], actor="stack")
                ingest = {}
                for sector in ("education", "health", "transport", "culture"):
                    issued = await create_key(conn, kind="ingest", label=f"dev:{sector}", sector=sector, actor="stack")
                    ingest[sector] = issued.key
                operator = await create_key(conn, kind="operator", label="dev:province", scope_unit="38", actor="stack")
                connector = await create_key(conn, kind="connector", label="dev:connectors", actor="stack")
                return {"ingest": ingest, "operator": {"province": operator.key}, "connector": connector.key}
            finally:
                await conn.close()

        path = self.data / "dev-credentials.json"
        path.write_text(json.dumps(asyncio.run(issue()), indent=2) + "\n")
        path.chmod(0o600)
        return path

    # -- services ------------------------------------------------------------------------
    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DATABASE_URL=self.dsn,
            CLOCK_OFFSET_SECONDS=f"{self.clock_offset:.3f}",
            KAFKA_SESSION_TIMEOUT_MS=env.get("KAFKA_SESSION_TIMEOUT_MS", "6000"),
            # silence alerts within minutes on the dev clock: 4 working hours → 4.8 minutes
            ALERTS_SILENCE_SCALE=env.get("ALERTS_SILENCE_SCALE", "0.02"),
            PYTHONPATH=str(ROOT),
        )
        return env

    def start_services(self, credentials: Path) -> None:
        env = self.service_env()
        for name, module, port in SERVICES:
            if not _exists(module):
                continue
            port = int(env.get(f"{name.upper()}_PORT", port or 0)) or None
            service = ServiceProcess(name, module, port, env, self.logs / f"{name}.log")
            service.start()
            self.services.append(service)
        if self.settings.simulator and _exists("services.simulator"):
            sim_env = dict(env, SIMULATOR_CREDENTIALS_FILE=str(credentials))
            for service in self.services:
                if service.name in ("education", "health", "transport", "culture"):
                    sim_env[f"SIMULATOR_{service.name.upper()}_URL"] = f"http://127.0.0.1:{service.port}"
            service = ServiceProcess(
                "simulator",
                "services.simulator",
                None,
                sim_env,
                self.logs / "simulator.log",
                extra_args=[
                    "live",
                    "--rate",
                    str(self.settings.simulator_rate),
                    "--backfill-days",
                    str(self.settings.simulator_backfill_days),
                ],
            )
            service.start()
            self.services.append(service)

    def wait_ready(self) -> dict[str, bool]:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        status = {s.name: False for s in self.services if s.port}
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline and not all(status.values()):
                for service in self.services:
                    if service.port and not status[service.name]:
                        try:
                            answer = client.get(f"http://127.0.0.1:{service.port}/readyz")
                            status[service.name] = answer.status_code == 200
                        except httpx.HTTPError:
                            pass
                time.sleep(0.3)
        return status

    def watch_services(self) -> None:
        now = time.monotonic()
        for service in self.services:
            if service.alive() or now < service.next_start:
                continue
            code = service.proc.returncode if service.proc is not None else None
            service.restarts += 1
            delay = min(30.0, 0.5 * 2 ** min(service.restarts, 6))
            log.warning(
                "service exited; restarting", service=service.name, code=code, restart=service.restarts, in_s=delay
            )
            service.next_start = now + delay
            service.start()

    def stop_all(self) -> None:
        self.stopping = True
        for service in reversed(self.services):
            if service.proc is not None and service.alive():
                os.killpg(service.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 6
        for service in self.services:
            if service.proc is not None:
                stop(service.proc, timeout_s=max(0.1, deadline - time.monotonic()))
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def write_state(self) -> None:
        """Record what runs where (``.smartcity/stack.json``) for operators and tests."""
        state = {
            "supervisor_pid": os.getpid(),
            "kafka_bootstrap": self.bootstrap,
            "database_url": self.dsn,
            "broker_pid": self.broker.proc.pid if self.broker and self.broker.proc else None,
            "postgres_pid": self.postgres.proc.pid if self.postgres and self.postgres.proc else None,
            "services": {
                s.name: {"pid": s.proc.pid if s.proc else None, "port": s.port, "restarts": s.restarts}
                for s in self.services
            },
        }
        path = self.data / "stack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)

    def banner(self, credentials: Path, ready: dict[str, bool]) -> str:
        lines = ["", "Thanh Hoa smart-city KPI stack is up.", ""]
        for service in self.services:
            if service.port:
                mark = "ready" if ready.get(service.name) else "NOT READY (see its log)"
                lines.append(f"  {service.name:<10} http://127.0.0.1:{service.port}   {mark}")
        api = next((s for s in self.services if s.name == "kpi_api"), None)
        if api is not None:
            lines.append("")
            lines.append(f"  Dashboard:  http://127.0.0.1:{api.port}/   (paste the operator key)")
            lines.append(f"  API docs:   http://127.0.0.1:{api.port}/docs")
        lines += [
            "",
            f"  Kafka:       {self.bootstrap}",
            f"  PostgreSQL:  {self.dsn}",
            f"  Credentials: {credentials}",
            f"  Logs:        {self.logs}/",
            f"  Province clock: {self.settings.simulated_start.isoformat()} at start "
            f"(offset {self.clock_offset / 86400:.0f} days; see README)",
            "",
            "  Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


def main() -> int:
    configure_logging("stack", json_output=False)
    settings = StackSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start_servers()
        credentials = stack.write_dev_credentials()
        stack.start_services(credentials)
        ready = stack.wait_ready()
        stack.write_state()
        print(stack.banner(credentials, ready), flush=True)
        while True:
            stack.watch_servers()
            stack.watch_services()
            stack.write_state()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping…", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
