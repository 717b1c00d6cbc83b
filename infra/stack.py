"""The whole system on one machine: ``make run`` → ``python -m infra.stack``.

Starts (or, when ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are set, uses) a broker and
PostgreSQL, migrates, provisions topics, writes dev credentials, starts every service as its
own process, prints where to look, then supervises: a broker or database that dies is
restarted (topics re-provisioned on an empty broker), a service that dies is restarted with
backoff (:func:`next_restart`: doubling waits that start again once it ran healthily for a
minute). The simulator starts once the services are ready. SIGINT/SIGTERM stops everything,
the simulator first, then the services, within 10 seconds.
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
from services.runtime.retry import delay_s
from services.runtime.settings import KafkaSettings

log = structlog.get_logger("stack")

ROOT = Path(__file__).resolve().parent.parent
HEALTHY_AFTER_S = 60.0  # a service that ran this long was healthy: its restart streak ends
RESTART_FIRST_S, RESTART_CAP_S = 0.5, 30.0


class StackSettings(BaseSettings):
    """Ports and behaviour of the dev stack (``STACK_*``)."""

    model_config = SettingsConfigDict(env_prefix="STACK_", extra="ignore")

    data_dir: Path = Field(default=ROOT / ".smartcity", description="Git-ignored state folder.")
    kafka_port: int = Field(default=9092, description="Embedded broker port.")
    postgres_port: int = Field(default=5432, description="Embedded PostgreSQL port.")
    simulator_rate: float = Field(
        default=6000.0, description="Simulator events per hour at full density (weekly mean; office hours busier)."
    )
    simulator_history_from: dt.date = Field(
        default=dt.date(2025, 1, 1),
        description="History the simulator sends at its first start: from this day (local) to now, across "
        "the reform of 1 July 2025; older months lighter. Later starts resume where it stopped.",
    )
    simulator_history_days: float | None = Field(
        default=None, description="History starts this many days before now instead (tests)."
    )
    simulator_full_days: float = Field(default=1.0, description="The last days of history at the full rate.")
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
    restarts: int = 0  # every restart since the stack started
    streak: int = 0  # restarts since it last ran healthily (see next_restart)
    started_at: float = 0.0  # monotonic
    next_start: float | None = None  # a restart is scheduled for then (monotonic)
    extra_args: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.started_at = time.monotonic()
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
        self.simulator_note = ""  # what the simulator does first, for the banner

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
            KAFKA_SESSION_TIMEOUT_MS=env.get("KAFKA_SESSION_TIMEOUT_MS", "6000"),
            # silence alerts within minutes: 4 working hours → 4.8 minutes (of office time)
            ALERTS_SILENCE_SCALE=env.get("ALERTS_SILENCE_SCALE", "0.02"),
            PYTHONPATH=str(ROOT),
        )
        return env

    def start_services(self) -> None:
        env = self.service_env()
        for name, module, port in SERVICES:
            if not _exists(module):
                continue
            port = int(env.get(f"{name.upper()}_PORT", port or 0)) or None
            service = ServiceProcess(name, module, port, env, self.logs / f"{name}.log")
            service.start()
            self.services.append(service)

    def start_simulator(self, credentials: Path) -> None:
        """The simulator, once the services are ready: history first (or resumed from its
        state file), then live."""
        settings, state = self.settings, self.data / "simulator-state.json"
        if not (settings.simulator and _exists("services.simulator")):
            return
        env = dict(self.service_env(), SIMULATOR_CREDENTIALS_FILE=str(credentials), SIMULATOR_STATE_FILE=str(state))
        for service in self.services:
            if service.name in ("education", "health", "transport", "culture"):
                env[f"SIMULATOR_{service.name.upper()}_URL"] = f"http://127.0.0.1:{service.port}"
        args = ["live", "--rate", str(settings.simulator_rate), "--full-days", str(settings.simulator_full_days)]
        if state.exists():
            self.simulator_note = "resuming where it stopped (simulator-state.json)"
        elif settings.simulator_history_days is not None:
            self.simulator_note = f"history of the last {settings.simulator_history_days:g} days first"
        else:
            self.simulator_note = f"history since {settings.simulator_history_from} first (a few minutes)"
        if settings.simulator_history_days is not None:
            args += ["--history-days", str(settings.simulator_history_days)]
        else:
            args += ["--history-from", settings.simulator_history_from.isoformat()]
        log_path = self.logs / "simulator.log"
        simulator = ServiceProcess("simulator", "services.simulator", None, env, log_path, extra_args=args)
        simulator.start()
        self.services.append(simulator)

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
        """Restart a service that exited, after the wait :func:`next_restart` gives."""
        now = time.monotonic()
        for service in self.services:
            if service.alive():
                continue
            if service.next_start is None:  # just found dead: schedule its restart
                code = service.proc.returncode if service.proc is not None else None
                ran_s = now - service.started_at
                service.streak, wait = next_restart(service.streak, ran_s)
                service.next_start = now + wait
                log.warning(
                    "service exited; restarting",
                    service=service.name,
                    code=code,
                    ran_s=round(ran_s, 1),
                    restart=service.streak,
                    in_s=round(wait, 2),
                )
            if now >= service.next_start:
                service.next_start = None
                service.restarts += 1
                service.start()

    def stop_all(self) -> None:
        """The simulator first (a client of the services: it finishes its delivery and saves
        its progress), then the services, then the servers."""
        self.stopping = True
        for service in self.services:
            if service.name == "simulator" and service.proc is not None:
                stop(service.proc, timeout_s=3)
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
            "",
            *([f"  Simulator:   {self.simulator_note}, then live", ""] if self.simulator_note else []),
            "  Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


def next_restart(streak: int, ran_s: float, *, healthy_after_s: float = HEALTHY_AFTER_S) -> tuple[int, float]:
    """(the number of this restart in its streak, the wait before it) for a service that
    exited after running ``ran_s`` seconds, ``streak`` restarts into a streak. A run of
    ``healthy_after_s`` or more ends the streak, so the wait starts again from the first
    one; the waits are the one retry policy's (``delay_s``: 0.5 s doubling, 30 s at most)."""
    this = 1 if ran_s >= healthy_after_s else streak + 1
    return this, delay_s(this, RESTART_FIRST_S, RESTART_CAP_S)


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
        stack.start_services()
        ready = stack.wait_ready()
        stack.start_simulator(credentials)
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
