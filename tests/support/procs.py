"""Run service processes the way production does (``python -m services.x``)."""

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import httpx

from infra.processes import free_port, kill, spawn, stop

ROOT = Path(__file__).resolve().parents[2]


def service_env(bootstrap: str, dsn: str, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_TOPIC_PREFIX=prefix,
        KAFKA_SESSION_TIMEOUT_MS="6000",
        DATABASE_URL=dsn,
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class ServiceProcess:
    def __init__(self, module: str, env: dict[str, str], port_var: str, log_dir: Path) -> None:
        self.module = module
        self.port = free_port()
        self.env = dict(env, **{port_var: str(self.port)})
        self.log_path = log_dir / f"{module.rsplit('.', 1)[-1]}-{self.port}.log"
        self.proc: Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout_s: float = 60.0) -> "ServiceProcess":
        self.proc = spawn([sys.executable, "-m", self.module], log_path=self.log_path, env=self.env, cwd=ROOT)
        if wait_ready:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                last = httpx.get(f"{self.url}/readyz", timeout=2)
                if last.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready: {last!r}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)

    def stop(self) -> int | None:
        if self.proc is not None:
            return stop(self.proc, timeout_s=10)
        return None


@contextmanager
def running(
    module: str, env: dict[str, str], port_var: str, log_dir: Path, **kwargs: object
) -> Iterator[ServiceProcess]:
    service = ServiceProcess(module, env, port_var, log_dir).start(**kwargs)  # type: ignore[arg-type]
    try:
        yield service
    finally:
        service.stop()
