"""Run real Apache Kafka (KRaft, combined broker+controller) from Maven Central jars.

Stdlib only. Typical use::

    lib = ensure_classpath()                       # mvn fetch, cached
    with KafkaCluster(tmp_path, nodes=3) as kc:    # format + start + wait_ready
        produce_to(kc.bootstrap)

Contracts:
* Every JVM runs in its own session / process group and, on Linux, gets
  ``PR_SET_PDEATHSIG=SIGKILL``: it dies with the *thread* that called ``start()``.
  Call ``start()`` from a long-lived thread (e.g. the main thread).
* Nodes listen on 127.0.0.1 only (PLAINTEXT client listener, CONTROLLER listener).
* The broker's log4j2 output goes to ``<data_dir>/server.log``; the JVM's own
  stdout/stderr go to ``<data_dir>/kafka.out``.  Nothing is written to our stdout.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerInfo",
    "ClusterMetadata",
    "KafkaCluster",
    "KafkaError",
    "KafkaNode",
    "cache_root",
    "describe_cluster",
    "ensure_classpath",
    "free_port",
    "free_ports",
    "java_executable",
    "kafka_version",
    "random_cluster_id",
]

log = logging.getLogger(__name__)

DEFAULT_KAFKA_VERSION = "4.1.1"
POM_PATH = Path(__file__).resolve().with_name("pom.xml")
HOST = "127.0.0.1"

#: JVM flags used for every broker (extended by $SMARTCITY_KAFKA_JVM_OPTS).
DEFAULT_JVM_OPTS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    # C1 only: ~35% faster start-to-ready for 3 JVMs on 2 cores; re-enable C2 with
    # SMARTCITY_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4 (later flags win).
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
#: JVM flags for short-lived CLI tools (StorageTool, MetadataQuorumCommand).
TOOL_JVM_OPTS: tuple[str, ...] = (
    "-Xms64m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)

_MARKER = ".complete"


class KafkaError(RuntimeError):
    """Fetching, formatting, starting or probing Kafka failed."""


# --------------------------------------------------------------------------- classpath


def kafka_version(version: str | None = None) -> str:
    """Return ``version``, else $SMARTCITY_KAFKA_VERSION, else DEFAULT_KAFKA_VERSION."""
    return version or os.environ.get("SMARTCITY_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def cache_root() -> Path:
    """Root of the jar cache: $SMARTCITY_KAFKA_CACHE or ~/.cache/smartcity/apache-kafka."""
    env = os.environ.get("SMARTCITY_KAFKA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "smartcity" / "apache-kafka"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock (serialises concurrent fetches, e.g. pytest-xdist workers)."""
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _marker_text(version: str) -> str:
    pom_sha = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    return f"kafka.version={version}\npom.sha256={pom_sha}\n"


def _classpath_complete(lib: Path, marker: Path, expected: str) -> bool:
    try:
        return lib.is_dir() and marker.read_text() == expected
    except OSError:
        return False


def ensure_classpath(version: str | None = None) -> Path:
    """Make sure the Kafka runtime jars for ``version`` are cached; return the lib dir.

    The lib dir is ``cache_root()/<version>/lib``.  Jars are fetched with
    ``mvn -B -q dependency:copy-dependencies`` into a scratch dir that is renamed into
    place; the marker file is written only afterwards, so an interrupted download is
    simply redone.  A warm cache costs no ``mvn`` call.  The local Maven repository is
    Maven's default (~/.m2) unless $SMARTCITY_MAVEN_REPO_LOCAL is set.  Raises
    KafkaError if Maven is missing or fails.
    """
    version = kafka_version(version)
    base = cache_root() / version
    lib = base / "lib"
    marker = base / _MARKER
    expected = _marker_text(version)
    if _classpath_complete(lib, marker, expected):
        return lib
    base.mkdir(parents=True, exist_ok=True)
    with _file_lock(base / ".lock"):
        if _classpath_complete(lib, marker, expected):
            return lib
        marker.unlink(missing_ok=True)
        mvn = os.environ.get("SMARTCITY_MVN") or shutil.which("mvn")
        if not mvn:
            raise KafkaError("Maven ('mvn') not found on PATH; it is needed to fetch Kafka jars")
        for stale in base.glob("lib.partial-*"):  # left by an interrupted fetch
            shutil.rmtree(stale, ignore_errors=True)
        scratch = base / f"lib.partial-{os.getpid()}"
        cmd = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(POM_PATH),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={scratch}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={version}",
        ]
        repo_local = os.environ.get("SMARTCITY_MAVEN_REPO_LOCAL")
        if repo_local:
            cmd.append(f"-Dmaven.repo.local={repo_local}")
        log.info("fetching Apache Kafka %s jars into %s", version, lib)
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=_pdeathsig_preexec(),
        )
        if proc.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise KafkaError(
                f"mvn failed (exit {proc.returncode}) fetching Kafka {version}:\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        if not (scratch / f"kafka_2.13-{version}.jar").is_file():
            shutil.rmtree(scratch, ignore_errors=True)
            raise KafkaError(f"mvn succeeded but kafka_2.13-{version}.jar is missing in {scratch}")
        shutil.rmtree(lib, ignore_errors=True)
        scratch.rename(lib)
        tmp_marker = base / f"{_MARKER}.tmp"
        tmp_marker.write_text(expected)
        tmp_marker.replace(marker)
        log.info(
            "fetched Kafka %s (%d jars) in %.1fs",
            version,
            len(list(lib.glob("*.jar"))),
            time.monotonic() - t0,
        )
    return lib


def java_executable() -> str:
    """Path of ``java``: $JAVA_HOME/bin/java, else ``java`` on PATH, else Debian's JDK 17."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found:
        return found
    fallback = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    if fallback.is_file():
        return str(fallback)
    raise KafkaError("no java executable found (set JAVA_HOME)")


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (inherently racy)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _kafka_uuid(raw: bytes) -> str:
    """Kafka's Uuid text form: url-safe base64 of 16 bytes, no padding."""
    return base64.urlsafe_b64encode(raw[:16]).decode("ascii").rstrip("=")


def random_cluster_id() -> str:
    """A fresh cluster id in Kafka's format (like ``kafka-storage random-uuid``)."""
    while True:
        cid = _kafka_uuid(uuid.uuid4().bytes)
        if not cid.startswith("-"):
            return cid


def _directory_id(cluster_id: str, node_id: int) -> str:
    """Deterministic metadata-log directory id for ``--initial-controllers``."""
    salt = 0
    while True:
        cid = _kafka_uuid(hashlib.sha256(f"{cluster_id}/{node_id}/{salt}".encode()).digest())
        if not cid.startswith("-"):
            return cid
        salt += 1


def _read_properties(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _error_lines(path: Path, limit: int = 8) -> str:
    """The first ERROR/FATAL lines of a broker log (the usual reason a start failed)."""
    found: list[str] = []
    in_error = False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if "] ERROR " in line or "] FATAL " in line:
                    if len(found) >= limit:
                        break
                    found.append(line.rstrip()[:500])
                    in_error = True
                elif in_error and not line.startswith(("[", "\t")):
                    found.append("    " + line.rstrip()[:500])  # exception message line
                else:
                    in_error = False
    except OSError:
        pass
    return "\n".join(found)


def _failure_report(node: KafkaNode) -> str:
    return (
        f"--- errors in {node.server_log}\n{_error_lines(node.server_log)}\n"
        f"--- tail of {node.stdout_log}\n{_tail(node.stdout_log, 2000)}\n"
        f"--- tail of {node.server_log}\n{_tail(node.server_log, 2000)}"
    )


_libc: ctypes.CDLL | None = None
_PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent thread dies (Linux)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:  # load in the parent: dlopen after fork is not async-signal-safe
        _libc = ctypes.CDLL(None, use_errno=True)
    libc = _libc
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# --------------------------------------------------------------------------- wire protocol


@dataclass(frozen=True)
class BrokerInfo:
    """One live (unfenced) broker as seen in a Metadata response."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterMetadata:
    """Cluster view from a Metadata v4 response (``controller_id`` is a random broker in KRaft)."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[BrokerInfo, ...]

    @property
    def broker_ids(self) -> frozenset[int]:
        return frozenset(b.node_id for b in self.brokers)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode("utf-8")
        self.pos += n
        return s


def describe_cluster(host: str, port: int, timeout: float = 2.0) -> ClusterMetadata:
    """Send one Metadata v4 request (no topics) to ``host:port`` and parse the broker list.

    Raises OSError / ConnectionError / struct.error when the broker does not answer
    properly.  Metadata v4 is the oldest version Kafka 4.x still accepts (KIP-896).
    """
    client_id = b"smartcity-probe"
    correlation_id = 0x5C17
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation=false
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, size)
    r = _Reader(payload)
    if r.int32() != correlation_id:
        raise ConnectionError("unexpected correlation id in Metadata response")
    r.int32()  # throttle_time_ms
    brokers = []
    for _ in range(r.int32()):
        node_id = r.int32()
        bhost = r.nullable_string() or ""
        bport = r.int32()
        r.nullable_string()  # rack
        brokers.append(BrokerInfo(node_id, bhost, bport))
    cluster_id = r.nullable_string()
    controller_id = r.int32()
    return ClusterMetadata(cluster_id, controller_id, tuple(brokers))


# --------------------------------------------------------------------------- nodes


_LOG4J2_TEMPLATE = """\
status = warn
name = smartcity-kafka
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""

_TOOLS_LOG4J2 = """\
status = warn
name = smartcity-kafka-tools
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
"""


class KafkaNode:
    """One Kafka JVM in KRaft combined mode (``process.roles=broker,controller``).

    Layout under ``data_dir``: ``server.properties``, ``log4j2.properties``,
    ``tools-log4j2.properties``, ``logs/`` (log.dirs incl. the metadata log),
    ``server.log`` (broker log) and ``kafka.out`` (JVM stdout/stderr).

    ``cluster`` lists every voter as ``(node_id, controller_port)`` (this node
    included); ``None`` means a single-node quorum.  All nodes of one cluster must be
    given the same ``cluster`` list and ``cluster_id``.  ``extra_config`` entries
    override the generated broker properties.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int,
        node_id: int = 1,
        cluster: Sequence[tuple[int, int]] | None = None,
        cluster_id: str | None = None,
        extra_config: Mapping[str, str] | None = None,
        *,
        version: str | None = None,
        lib_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.node_id = node_id
        self.cluster: list[tuple[int, int]] | None = list(cluster) if cluster else None
        if self.cluster is not None and (node_id, controller_port) not in self.cluster:
            raise ValueError(f"cluster {self.cluster} must contain ({node_id}, {controller_port})")
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self.version = kafka_version(version)
        self._lib_dir = lib_dir
        meta = self.log_dir / "meta.properties"
        existing = _read_properties(meta).get("cluster.id") if meta.is_file() else None
        if cluster_id and existing and cluster_id != existing:
            raise KafkaError(f"{meta} belongs to cluster {existing}, not {cluster_id}")
        self.cluster_id: str = cluster_id or existing or random_cluster_id()
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    # -- paths / properties

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def server_log(self) -> Path:
        """The broker's log4j2 log file."""
        return self.data_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        """The JVM's stdout+stderr (crashes, bind errors before logging is up)."""
        return self.data_dir / "kafka.out"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def controller_address(self) -> str:
        return f"{HOST}:{self.controller_port}"

    @property
    def pid(self) -> int | None:
        """PID of the JVM while it has been started and not yet reaped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def lib_dir(self) -> Path:
        if self._lib_dir is None:
            self._lib_dir = ensure_classpath(self.version)
        return self._lib_dir

    def _voters(self) -> list[tuple[int, int]]:
        return self.cluster or [(self.node_id, self.controller_port)]

    def config(self) -> dict[str, str]:
        """The full broker configuration (generated defaults, then ``extra_config``)."""
        n = len(self._voters())
        cfg: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{self.controller_address}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.bootstrap.servers": ",".join(f"{HOST}:{cport}" for _, cport in self._voters()),
            "log.dirs": str(self.log_dir),
            "num.partitions": "8",
            "default.replication.factor": str(min(3, n)),
            "min.insync.replicas": str(min(2, n)),
            "offsets.topic.replication.factor": str(min(3, n)),
            "transaction.state.log.replication.factor": str(min(3, n)),
            "transaction.state.log.min.isr": str(min(2, n)),
            "share.coordinator.state.topic.replication.factor": str(min(3, n)),
            "share.coordinator.state.topic.min.isr": str(min(2, n)),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        cfg.update(self.extra_config)
        return cfg

    def _write_files(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}={v}" for k, v in self.config().items()]
        self.config_path.write_text("# generated by infra.apache_kafka\n" + "\n".join(lines) + "\n")
        level = os.environ.get("SMARTCITY_KAFKA_LOG_LEVEL", "INFO")
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2_TEMPLATE.format(log_file=self.server_log, level=level))
        (self.data_dir / "tools-log4j2.properties").write_text(_TOOLS_LOG4J2)

    def _tool_cmd(self, main_class: str, *args: str) -> list[str]:
        return [
            java_executable(),
            *TOOL_JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'tools-log4j2.properties'}",
            "-cp",
            str(self.lib_dir() / "*"),
            main_class,
            *args,
        ]

    def run_tool(self, main_class: str, *args: str, timeout: float = 60.0) -> str:
        """Run a Kafka CLI class on this node's classpath; return stdout, raise on failure."""
        self._write_files()
        cmd = self._tool_cmd(main_class, *args)
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=_pdeathsig_preexec(),
        )
        if proc.returncode != 0:
            raise KafkaError(
                f"{main_class} exited {proc.returncode}: {shlex.join(cmd)}\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    # -- lifecycle

    def format(self) -> None:
        """Format the storage with ``kafka.tools.StorageTool``; no-op if already formatted."""
        if (self.log_dir / "meta.properties").is_file():
            log.debug("node %d already formatted", self.node_id)
            return
        args = ["format", "-t", self.cluster_id, "-c", str(self.config_path)]
        if self.cluster is None:
            args.append("--standalone")
        else:
            args += [
                "--initial-controllers",
                ",".join(f"{nid}@{HOST}:{cport}:{_directory_id(self.cluster_id, nid)}" for nid, cport in self.cluster),
            ]
        self.run_tool("kafka.tools.StorageTool", *args)
        log.info("formatted node %d (cluster %s) in %s", self.node_id, self.cluster_id, self.log_dir)

    def start(self) -> None:
        """Format if needed and launch the JVM (non-blocking; see ``wait_ready``)."""
        if self.is_running():
            raise KafkaError(f"node {self.node_id} is already running (pid {self.pid})")
        self._reap()
        self.format()
        self._write_files()
        jvm_opts = [*DEFAULT_JVM_OPTS, *shlex.split(os.environ.get("SMARTCITY_KAFKA_JVM_OPTS", ""))]
        cmd = [
            java_executable(),
            *jvm_opts,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            str(self.lib_dir() / "*"),
            "kafka.Kafka",
            str(self.config_path),
        ]
        self._out = open(self.stdout_log, "ab")  # noqa: SIM115 - lives as long as the JVM
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=_pdeathsig_preexec(),
            )
        except BaseException:
            self._out.close()
            self._out = None
            raise
        log.info("started kafka node %d pid %d on %s", self.node_id, self._proc.pid, self.bootstrap)

    def is_running(self) -> bool:
        """True while the JVM process exists (also when paused)."""
        return self._proc is not None and self._proc.poll() is None

    def probe(self, timeout: float = 2.0) -> ClusterMetadata:
        """Metadata from this node's client listener (raises if it does not answer)."""
        return describe_cluster(HOST, self.port, timeout)

    def is_ready(self, expected_brokers: int = 1) -> bool:
        """True if this JVM answers Metadata for our cluster id, listing itself and at
        least ``expected_brokers`` live brokers."""
        if not self.is_running():
            return False
        try:
            md = self.probe(timeout=2.0)
        except (OSError, struct.error, UnicodeDecodeError):
            return False
        return (
            md.cluster_id == self.cluster_id
            and self.node_id in md.broker_ids
            and len(md.broker_ids) >= expected_brokers
        )

    def wait_ready(self, timeout: float = 60.0, expected_brokers: int = 1) -> None:
        """Block until ``is_ready(expected_brokers)``; raise KafkaError (with log tails)
        if the JVM exits or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None:
                raise KafkaError(f"node {self.node_id} was not started")
            if self._proc.poll() is not None:
                raise KafkaError(
                    f"kafka node {self.node_id} exited with {self._proc.returncode} before "
                    f"becoming ready\n{_failure_report(self)}"
                )
            if self.is_ready(expected_brokers):
                return
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"kafka node {self.node_id} not ready on {self.bootstrap} after {timeout}s\n{_failure_report(self)}"
                )
            time.sleep(0.2)

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def terminate(self) -> None:
        """Send SIGTERM (plus SIGCONT in case it is paused); does not wait."""
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the JVM to exit; return its exit code or None on timeout."""
        if self._proc is None:
            return None
        try:
            rc = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap()
        return rc

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (clean shutdown), SIGKILL after ``timeout`` s; return the exit code.

        No-op (returning None) if the node is not running.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self.terminate()
            rc = self.wait(timeout)
            if rc is None:
                log.warning("node %d ignored SIGTERM for %.0fs, killing", self.node_id, timeout)
                self.kill()
        self._reap()
        return self._proc.returncode if self._proc is not None else None

    def kill(self) -> None:
        """SIGKILL the JVM (crash simulation) and reap it."""
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
        self._reap()

    def pause(self) -> None:
        """SIGSTOP the JVM (simulates a hung / partitioned node)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused JVM."""
        self._signal(signal.SIGCONT)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None and self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaNode(id={self.node_id}, bootstrap={self.bootstrap}, pid={self.pid})"


class KafkaCluster:
    """``nodes`` combined broker+controller JVMs forming one KRaft quorum.

    Node ids are 1..N, node i lives in ``data_dir/node-<i>``.  ``ports`` /
    ``controller_ports`` default to free ports.  With 3+ nodes topics default to
    replication factor 3 and ``min.insync.replicas=2``.
    """

    def __init__(
        self,
        data_dir: Path,
        nodes: int = 3,
        ports: Sequence[int] | None = None,
        controller_ports: Sequence[int] | None = None,
        cluster_id: str | None = None,
        extra_config: Mapping[str, str] | None = None,
        *,
        version: str | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.data_dir = Path(data_dir).resolve()
        if ports is None or controller_ports is None:
            fresh = free_ports(2 * nodes)
            ports = list(ports) if ports is not None else fresh[:nodes]
            controller_ports = list(controller_ports) if controller_ports is not None else fresh[nodes:]
        if len(ports) != nodes or len(controller_ports) != nodes:
            raise ValueError("need exactly one port and one controller port per node")
        self.version = kafka_version(version)
        ids = list(range(1, nodes + 1))
        voters = list(zip(ids, controller_ports, strict=True))
        if cluster_id is None:
            meta = self.data_dir / "node-1" / "logs" / "meta.properties"
            cluster_id = (_read_properties(meta).get("cluster.id") if meta.is_file() else None) or random_cluster_id()
        self.cluster_id: str = cluster_id
        self.nodes: list[KafkaNode] = [
            KafkaNode(
                self.data_dir / f"node-{nid}",
                port=port,
                controller_port=cport,
                node_id=nid,
                cluster=voters,
                cluster_id=cluster_id,
                extra_config=extra_config,
                version=self.version,
            )
            for nid, port, cport in zip(ids, ports, controller_ports, strict=True)
        ]

    @property
    def bootstrap(self) -> str:
        """Comma-separated client bootstrap list of all nodes."""
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def running_nodes(self) -> list[KafkaNode]:
        return [n for n in self.nodes if n.is_running()]

    def _for_all(self, fn: Callable[[KafkaNode], None], nodes: Sequence[KafkaNode]) -> None:
        errors: list[BaseException] = []

        def run(n: KafkaNode) -> None:
            try:
                fn(n)
            except BaseException as e:  # re-raised below, in the caller's thread
                errors.append(e)

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def format(self) -> None:
        """Format every node (in parallel; idempotent)."""
        lib = ensure_classpath(self.version)
        for n in self.nodes:
            n._lib_dir = lib
            n._write_files()
        self._for_all(KafkaNode.format, self.nodes)

    def start(self) -> None:
        """Format (if needed) and start all nodes; does not wait (see ``wait_ready``)."""
        self.format()
        try:
            for n in self.nodes:
                if not n.is_running():
                    n.start()  # from the calling thread: PDEATHSIG is tied to it
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until every running node answers and lists all running nodes as brokers."""
        deadline = time.monotonic() + timeout
        for n in self.running_nodes():
            n.wait_ready(max(0.1, deadline - time.monotonic()), expected_brokers=len(self.running_nodes()))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM all nodes at once, SIGKILL whatever is left after ``timeout`` s."""
        running = self.running_nodes()
        for n in running:
            n.terminate()
        deadline = time.monotonic() + timeout
        for n in running:
            if n.wait(max(0.0, deadline - time.monotonic())) is None:
                log.warning("node %d did not stop within %.0fs, killing", n.node_id, timeout)
                n.kill()
        for n in self.nodes:
            n._reap()

    def kill(self) -> None:
        """SIGKILL every node."""
        for n in self.nodes:
            n.kill()

    def active_controller_id(self, timeout: float = 60.0) -> int:
        """Node id of the current KRaft leader (= active controller).

        Runs ``org.apache.kafka.tools.MetadataQuorumCommand describe --status`` (a JVM,
        ~1-3 s) against the running nodes.
        """
        running = self.running_nodes()
        if not running:
            raise KafkaError("no running node")
        bootstrap = ",".join(n.bootstrap for n in running)
        out = running[0].run_tool(
            "org.apache.kafka.tools.MetadataQuorumCommand",
            "--bootstrap-server",
            bootstrap,
            "describe",
            "--status",
            timeout=timeout,
        )
        m = re.search(r"^LeaderId:\s*(-?\d+)", out, re.MULTILINE)
        if not m or int(m.group(1)) < 0:
            raise KafkaError(f"no leader in MetadataQuorumCommand output:\n{out}")
        return int(m.group(1))

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster(id={self.cluster_id}, bootstrap={self.bootstrap})"
