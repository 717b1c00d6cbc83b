"""docker-compose.yml agrees with the code - no Docker engine runs where tests run, so compose
is kept honest by reading it: the structural checks ``docker compose config`` would make,
and one consistency test per app service (module, environment, port).
"""

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from infra.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES_IN_COMPOSE: dict[str, dict[str, Any]] = COMPOSE["services"]
APPS = {n: s for n, s in SERVICES_IN_COMPOSE.items() if s.get("command", [None])[0] == "python"}
SHARED_PREFIXES = ("KAFKA_", "DATABASE_", "LOG_", "CLOCK_")
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Environment variables a settings class reads: prefix + field (or alias), and those of
    nested settings groups, which keep their own prefix."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names = set()
    for name, info in cls.model_fields.items():
        nested = info.default_factory
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            names |= env_names(nested)
        else:
            names.add(str(info.alias).upper() if info.alias else f"{prefix}{name}".upper())
    return names


def settings_of(module: str) -> type[BaseSettings]:
    """The settings class a service's ``__main__`` builds (``<Name>Settings`` of its package)."""
    package = importlib.import_module(f"{module}.settings")
    classes = [c for c in vars(package).values() if isinstance(c, type) and issubclass(c, BaseSettings)]
    own = [c for c in classes if c.__module__ == package.__name__]
    assert len(own) == 1, own
    return own[0]


# --- structure (what `docker compose config` rejects) ---------------------------------------------


def test_every_dependency_and_volume_is_declared() -> None:
    volumes = set(COMPOSE.get("volumes", {}))
    for name, service in SERVICES_IN_COMPOSE.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES_IN_COMPOSE, (name, dependency)
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in volumes, (name, mount)


def test_images_are_pinned_and_host_ports_do_not_clash() -> None:
    published: list[str] = []
    for name, service in SERVICES_IN_COMPOSE.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), (name, image)
        published += [str(p).split(":")[0] for p in service.get("ports", [])]
        for value in (service.get("environment") or {}).values():
            assert isinstance(value, str), (name, value)  # compose wants strings
    assert len(published) == len(set(published)), published


def test_secrets_come_from_the_environment() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD=" not in text.replace("POSTGRES_PASSWORD=$(", "")
    assert set(VARIABLE.findall(text)) <= {"POSTGRES_PASSWORD", "LOG_LEVEL"}


# --- consistency with the code -----------------------------------------------------------------------


def test_compose_runs_every_service_of_the_stack() -> None:
    run = {s["command"][2] for s in APPS.values()}
    assert {module for _name, module, _port in SERVICES} <= run


@pytest.mark.parametrize("name", sorted(APPS))
def test_an_app_service_runs_existing_code_with_variables_it_reads_on_the_port_it_serves(name: str) -> None:
    service = APPS[name]
    module = service["command"][2]
    assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    settings = settings_of(module)
    reads = env_names(settings)
    prefix = str(settings.model_config["env_prefix"]).upper()
    environment = service.get("environment", {})
    unread = {k for k in environment if k not in reads}
    assert not unread, f"{name} sets variables its code does not read: {unread}"
    port = int(environment.get(f"{prefix}PORT", settings.model_fields["port"].default))
    assert environment.get(f"{prefix}HOST") == "0.0.0.0"
    exposed = {int(str(p).split(":")[-1]) for p in [*service.get("ports", []), *service.get("expose", [])]}
    assert exposed == {port}, (name, exposed, port)
    assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])


def test_the_walker_finds_prefixed_and_nested_names() -> None:
    from services.aggregator.settings import AggregatorSettings

    names = env_names(AggregatorSettings)
    assert {"AGGREGATOR_PORT", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "LOG_JSON", "CLOCK_OFFSET_SECONDS"} <= names
    assert "PORT" not in names and "AGGREGATOR_KAFKA" not in names


def test_the_kafka_cluster_replicates_three_ways_and_init_provisions_for_it() -> None:
    brokers = [s for n, s in SERVICES_IN_COMPOSE.items() if n.startswith("kafka-")]
    assert len(brokers) == 3
    for broker in brokers:
        env = broker["environment"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    init = SERVICES_IN_COMPOSE["init"]
    assert init["environment"]["KAFKA_REPLICATION_FACTOR"] == "3"
    assert "smartcity migrate" in init["command"][-1] and "smartcity topics" in init["command"][-1]
