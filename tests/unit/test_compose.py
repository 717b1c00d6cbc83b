"""docker-compose.yml, Dockerfile and .dockerignore agree with the code.

No Docker engine runs where the tests run, so compose is never executed; this test keeps it
honest instead. Pure unit test: it reads files and imports modules, it starts no server.

* Every compose service built from the Dockerfile runs a module that exists (``python -m X``
  needs ``X/__main__.py``) or a console script of ``pyproject.toml`` with a real subcommand.
* Every environment variable set for such a service is one its settings classes read
  (pydantic-settings: ``env_prefix`` + field name, or an alias; nested ``BaseSettings``
  fields read their own prefix). Kafka and PostgreSQL containers may set only their image's
  well-known variables.
* Ports: ``<PREFIX>_HOST`` is 0.0.0.0, and every published / exposed / health-checked port is
  the port the service listens on (``<PREFIX>_PORT`` in compose, else the settings default).
* The Kafka cluster: 3 combined KRaft nodes, replication factor 3, min ISR 2, no topic
  auto-creation; topics made by ``init`` with ``KAFKA_REPLICATION_FACTOR=3``.
* Images are pinned; the Dockerfile installs with ``constraints.txt`` and exposes every port.
* compose runs every module of ``infra.stack.SERVICES``: adding a service to the stack without
  adding it to compose fails here. A listed module that does not exist yet (``alerts`` at the
  time of writing) is checked as far as possible without its settings class (the prefix
  convention ``<NAME>_``, the shared ``KAFKA_``/``DATABASE_``/``LOG_``/``CLOCK_`` names, the
  default port of ``SERVICES``) and reported as a warning, never skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import tomllib
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource

from infra.apache_kafka.launcher import DEFAULT_KAFKA_VERSION
from infra.stack import SERVICES

try:
    # PyYAML is not a dependency of the project. It is installed transitively by schemathesis,
    # which the dev extra includes (`pip install -c constraints.txt -e '.[dev]'`, what
    # `make install` does), so the unit suite may rely on it.
    import yaml
except ImportError as exc:  # pragma: no cover - only without the dev extra
    raise ImportError(
        "tests/unit/test_compose.py needs PyYAML; install the dev extra: pip install -c constraints.txt -e '.[dev]'"
    ) from exc

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSOLE_SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]

KAFKA_IMAGE = "apache/kafka"
POSTGRES_IMAGE = "postgres"
INIT_SERVICE = "init"
BROKERS = 3
REPLICATION_FACTOR = 3
MIN_ISR = 2

# Variables the Python interpreter itself reads; allowed for every app container.
INTERPRETER_ENV = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONFAULTHANDLER", "TZ"})

# Variables the third-party images read: (prefixes, names).
IMAGE_ENV: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # apache/kafka: KAFKA_<property> becomes a server.properties entry; CLUSTER_ID formats storage.
    KAFKA_IMAGE: (("KAFKA_",), frozenset({"CLUSTER_ID"})),
    # postgres: POSTGRES_USER, _PASSWORD, _DB, _INITDB_ARGS, _HOST_AUTH_METHOD ...; PGDATA.
    POSTGRES_IMAGE: (("POSTGRES_",), frozenset({"PGDATA"})),
}

SHELLS = frozenset({"sh", "bash", "/bin/sh", "/bin/bash"})
PYTHONS = frozenset({"python", "python3", "python3.11", "/opt/venv/bin/python"})
SHELL_WORDS = frozenset({"do", "then", "else", "exec", "!", "{", "("})
SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", ";;", "(", ")"})


# --- compose model --------------------------------------------------------------------------


def _load_compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    # safe_load resolves anchors and `<<` merge keys the way compose does.
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and isinstance(document.get("services"), dict), (
        "docker-compose.yml must be a mapping with a `services:` mapping"
    )
    return document


COMPOSE = _load_compose()
COMPOSE_SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def image_name(svc: dict[str, Any]) -> str:
    """`apache/kafka` of `apache/kafka:4.1.1` (the tag is after the last `/`)."""
    image = str(svc.get("image", ""))
    repository, _, last = image.rpartition("/")
    return f"{repository}/{last.split(':')[0]}" if repository else last.split(":")[0]


def image_tag(svc: dict[str, Any]) -> str:
    last = str(svc.get("image", "")).rpartition("/")[2]
    return last.partition(":")[2]


def is_app(svc: dict[str, Any]) -> bool:
    """Built from this repository's Dockerfile (as opposed to a third-party image)."""
    return "build" in svc


APP_SERVICES = sorted(name for name, svc in COMPOSE_SERVICES.items() if is_app(svc))
BROKER_SERVICES = sorted(name for name, svc in COMPOSE_SERVICES.items() if image_name(svc) == KAFKA_IMAGE)
POSTGRES_SERVICES = sorted(name for name, svc in COMPOSE_SERVICES.items() if image_name(svc) == POSTGRES_IMAGE)


def environment(svc: dict[str, Any]) -> dict[str, Any]:
    """A service's `environment:` as a mapping (compose accepts a mapping or a list)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        parsed: dict[str, Any] = {}
        for item in env:
            name, sep, value = str(item).partition("=")
            parsed[name] = value if sep else None
        return parsed
    assert isinstance(env, dict), f"environment must be a mapping or a list, got {env!r}"
    return dict(env)


def container_port(entry: Any) -> int:
    """Container side of a `ports:` / `expose:` entry (short or long syntax)."""
    if isinstance(entry, dict):
        return int(entry["target"])
    text = str(entry).split("/", 1)[0]
    target = text.rsplit(":", 1)[-1]
    assert "-" not in target, f"port range {entry!r}: map the service's one port instead"
    return int(target)


def published_host_port(entry: Any) -> str | None:
    """Host side of a `ports:` entry, None when compose picks an ephemeral port."""
    if isinstance(entry, dict):
        value = entry.get("published")
        return None if value in (None, "") else str(value)
    text = str(entry).split("/", 1)[0]
    if ":" not in text:
        return None
    host = text.rsplit(":", 1)[0]
    host_port = host.rsplit(":", 1)[-1] if ":" in host else host
    return host_port or None


def healthcheck_urls(svc: dict[str, Any]) -> list[tuple[int, str]]:
    """(port, path) of every http URL in the service's healthcheck test."""
    check = svc.get("healthcheck") or {}
    test = check.get("test", "")
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test)
    return [(int(port), path) for port, path in re.findall(r"https?://[^/:'\"\s]+:(\d+)(/[^'\"\s)]*)?", text)]


def mount_targets(svc: dict[str, Any]) -> list[str]:
    """Container paths of a service's `volumes:` (short or long syntax)."""
    targets = []
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            targets.append(str(volume.get("target", "")))
        elif ":" in str(volume):
            targets.append(str(volume).split(":")[1])
    return targets


def interpolated_variable(value: Any) -> str | None:
    """NAME when the whole value is `${NAME:?...}` / `${NAME?...}` (required, no default)."""
    match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}", str(value))
    return match[1] if match else None


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One program a compose command runs: `python -m module` or a console script."""

    module: str  # the module run by -m, or the module of the console script's entry point
    script: str | None = None  # console script name
    attr: str | None = None  # entry point attribute of the console script
    args: tuple[str, ...] = ()


def simple_commands(command: Any) -> Iterator[list[str]]:
    """Argument vectors of a compose `command:`; `sh -c SCRIPT` is split into its commands."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command or []]
    if len(argv) >= 3 and argv[0] in SHELLS and re.fullmatch(r"-[a-z]*c[a-z]*", argv[1]):
        for line in argv[2].splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for token in lexer:
                if token in SHELL_OPERATORS:
                    if current:
                        yield current
                    current = []
                else:
                    current.append(token)
            if current:
                yield current
        return
    yield argv


def invocations(command: Any) -> list[Invocation]:
    found = []
    for argv in simple_commands(command):
        while argv and argv[0] in SHELL_WORDS:
            argv = argv[1:]
        if not argv:
            continue
        if argv[0] in PYTHONS and "-m" in argv[:-1]:
            at = argv.index("-m")
            found.append(Invocation(module=argv[at + 1], args=tuple(argv[at + 2 :])))
        elif argv[0] in CONSOLE_SCRIPTS:
            module, _, attr = CONSOLE_SCRIPTS[argv[0]].partition(":")
            found.append(Invocation(module=module, script=argv[0], attr=attr, args=tuple(argv[1:])))
    return found


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


STACK_MODULES: dict[str, tuple[str, int | None]] = {module: (name, port) for name, module, port in SERVICES}
PENDING_MODULES = sorted(m for m in STACK_MODULES if not module_exists(m))


def stack_invocation(svc: dict[str, Any]) -> Invocation | None:
    """The `python -m` invocation of an infra.stack.SERVICES module, if the service runs one."""
    for call in invocations(svc.get("command")):
        if call.script is None and call.module in STACK_MODULES:
            return call
    return None


# --- which environment variables the code reads -----------------------------------------------


@dataclass
class EnvNames:
    """Environment variable names a set of settings classes reads."""

    exact: set[str] = field(default_factory=set)  # case-sensitive classes
    folded: set[str] = field(default_factory=set)  # case-insensitive classes (upper-cased)

    def add(self, name: str, case_sensitive: bool) -> None:
        if case_sensitive:
            self.exact.add(name)
        else:
            self.folded.add(name.upper())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.exact or name.upper() in self.folded)

    def update(self, other: EnvNames) -> None:
        self.exact |= other.exact
        self.folded |= other.folded

    def names(self) -> list[str]:
        return sorted(self.exact | self.folded)


def _aliases(field_info: FieldInfo) -> list[str]:
    """Names an alias makes pydantic-settings look up (the first item of an AliasPath)."""
    alias = field_info.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0])]
    if isinstance(alias, AliasChoices):
        return [c if isinstance(c, str) else str(c.path[0]) for c in alias.choices]
    return []


def own_env_names(cls: type[BaseSettings]) -> dict[str, list[str]]:
    """Field name -> environment names of one settings class's own fields (no recursion)."""
    config = cls.model_config
    assert not config.get("env_nested_delimiter"), (
        f"{cls.__qualname__} sets env_nested_delimiter: teach own_env_names() in "
        "tests/unit/test_compose.py the nested names (PREFIX_FIELD<delim>SUBFIELD)"
    )
    prefix = config.get("env_prefix", "") or ""
    target = config.get("env_prefix_target", "variable")
    by_alias = config.get("validate_by_alias") is not False
    by_name = config.get("validate_by_name")
    if by_name is None:
        by_name = config.get("populate_by_name")
    if by_name is None:
        by_name = config.get("validate_by_alias") is False
    result: dict[str, list[str]] = {}
    for name, info in cls.model_fields.items():
        aliases = _aliases(info) if by_alias else []
        alias_prefix = prefix if target in ("alias", "all") else ""
        names = [alias_prefix + alias for alias in aliases]
        if not aliases or by_name:
            names.append((prefix if target in ("variable", "all") else "") + name)
        result[name] = names
    return result


def _nested_settings(info: FieldInfo) -> type[BaseSettings] | None:
    """The settings class a field builds from its own environment (default or default_factory)."""
    factory = info.default_factory
    if isinstance(factory, type) and issubclass(factory, BaseSettings):
        return factory
    if isinstance(info.default, BaseSettings):
        return type(info.default)
    return None


def env_names(cls: type[BaseSettings]) -> EnvNames:
    """Every environment name a settings class reads, nested settings classes included."""
    found = EnvNames()
    case_sensitive = bool(cls.model_config.get("case_sensitive", False))
    for name, names in own_env_names(cls).items():
        for env in names:
            found.add(env, case_sensitive)
        nested = _nested_settings(cls.model_fields[name])
        if nested is not None:
            found.update(env_names(nested))
    return found


def settings_classes_in(module: types.ModuleType, *, defined_only: bool) -> list[type[BaseSettings]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value is not BaseSettings
        and (not defined_only or value.__module__ == module.__name__)
    ]


def settings_of(call: Invocation) -> list[type[BaseSettings]]:
    """Settings classes the program reads: those its entry module uses, plus the ones
    defined in its package's ``settings`` module."""
    entry = call.module if call.script else f"{call.module}.__main__"
    classes = []
    if module_exists(entry):  # a missing __main__ is test_command_runs_existing_code's finding
        classes += settings_classes_in(importlib.import_module(entry), defined_only=False)
    package = call.module if call.script is None else call.module.rpartition(".")[0]
    if package and module_exists(f"{package}.settings"):
        classes += settings_classes_in(importlib.import_module(f"{package}.settings"), defined_only=True)
    return list(dict.fromkeys(classes))


def listening_settings(classes: list[type[BaseSettings]]) -> list[type[BaseSettings]]:
    return [c for c in classes if {"host", "port"} <= set(c.model_fields)]


def reads(name: str) -> EnvNames | None:
    """What a compose app service's code reads; None while one of its modules is pending."""
    readable = EnvNames()
    for call in invocations(COMPOSE_SERVICES[name].get("command")):
        if call.script is None and call.module in PENDING_MODULES:
            return None
        for cls in settings_of(call):
            readable.update(env_names(cls))
    return readable


def without_interpolation(value: Any) -> str:
    """`${NAME...}` replaced by `__NAME__`, so that URLs parse as compose will produce them."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", r"__\1__", str(value))


def _all_settings_classes() -> list[type[BaseSettings]]:
    seen: dict[type[BaseSettings], None] = {}

    def visit(cls: type[BaseSettings]) -> None:
        if cls in seen:
            return
        seen[cls] = None
        for info in cls.model_fields.values():
            nested = _nested_settings(info)
            if nested is not None:
                visit(nested)

    for name in APP_SERVICES:
        for call in invocations(COMPOSE_SERVICES[name].get("command")):
            if module_exists(call.module):
                for cls in settings_of(call):
                    visit(cls)
    return list(seen)


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to (-1: before the first FROM)


def dockerfile_instructions() -> list[Instruction]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    logical: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    instructions, stage = [], -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m[1], m[0]), text)


def dockerfile_bases(instructions: list[Instruction]) -> list[str]:
    """Base image of every stage (ARG defaults expanded); earlier stage names excluded."""
    global_args: dict[str, str] = {}
    for ins in instructions:
        if ins.stage == -1 and ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
    stages: list[str] = []
    bases = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        image = _expand(words[0], global_args)
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.append(words[2])
        if image not in stages:
            bases.append(image)
    return bases


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching rule wins;
    a rule matching a parent directory matches everything below it)."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = path.split("/")
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip().strip("/")
        pattern_parts = [p for p in pattern.split("/") if p not in ("", ".")]
        if any(_glob(pattern_parts, parts[:n]) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def _glob(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and _glob(pattern[1:], parts[1:])


# --- tests: the set of services -----------------------------------------------------------------


def test_compose_runs_every_service_of_the_stack() -> None:
    run = {call.module for name in APP_SERVICES for call in invocations(COMPOSE_SERVICES[name].get("command"))}
    missing = [f"{name} ({module})" for name, module, _ in SERVICES if module not in run]
    assert not missing, (
        f"infra.stack.SERVICES lists {', '.join(missing)} but no docker-compose.yml service runs "
        "it: add a service with `command: [python, -m, <module>]`, `<PREFIX>_HOST: 0.0.0.0`, its "
        "port and a /readyz healthcheck"
    )


def test_compose_has_only_known_kinds_of_services() -> None:
    unknown = sorted(set(COMPOSE_SERVICES) - set(APP_SERVICES) - set(BROKER_SERVICES) - set(POSTGRES_SERVICES))
    assert not unknown, (
        f"compose services {unknown} are neither built from the Dockerfile nor {KAFKA_IMAGE} / "
        f"{POSTGRES_IMAGE}: teach tests/unit/test_compose.py which environment variables their "
        "image reads"
    )


def test_report_services_not_implemented_yet() -> None:
    """Not a skip: those services are still checked without their settings class."""
    if PENDING_MODULES:
        warnings.warn(
            "docker-compose.yml runs modules that do not exist yet, so their environment could "
            f"only be checked against naming conventions: {', '.join(PENDING_MODULES)}",
            UserWarning,
            stacklevel=1,
        )


# --- tests: per app service ---------------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_command_runs_existing_code(name: str) -> None:
    svc = COMPOSE_SERVICES[name]
    calls = invocations(svc.get("command"))
    assert calls, (
        f"compose service {name!r}: `command:` runs neither `python -m <module>` nor a console "
        f"script of pyproject.toml ({', '.join(CONSOLE_SCRIPTS)}); set its command explicitly "
        "(the image's default CMD only prints help)"
    )
    for call in calls:
        if call.script is None:
            if call.module in PENDING_MODULES:
                continue  # reported by test_report_services_not_implemented_yet
            assert module_exists(call.module), (
                f"compose service {name!r} runs `python -m {call.module}` but there is no module "
                f"{call.module}: fix the command or add the module"
            )
            assert module_exists(f"{call.module}.__main__"), (
                f"compose service {name!r} runs `python -m {call.module}` but "
                f"{call.module.replace('.', '/')}/__main__.py does not exist: add it"
            )
            continue
        assert module_exists(call.module), (
            f"compose service {name!r} runs console script {call.script!r} whose entry point "
            f"module {call.module} does not exist: fix [project.scripts] in pyproject.toml"
        )
        target = getattr(importlib.import_module(call.module), call.attr or "", None)
        assert target is not None, f"console script {call.script!r}: {call.module} has no attribute {call.attr!r}"
        if isinstance(target, typer.Typer):
            # typer may vendor click, so look for a group's `commands` instead of isinstance
            command: Any = typer.main.get_command(target)
            for word in (a for a in call.args if not a.startswith("-")):
                commands = getattr(command, "commands", None)
                if not isinstance(commands, dict):
                    break
                assert word in commands, (
                    f"compose service {name!r} runs `{call.script} {' '.join(call.args)}` but "
                    f"{call.script} has no command {word!r} (it has: "
                    f"{', '.join(sorted(commands))}): fix the command"
                )
                command = commands[word]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_is_read_by_the_code(name: str) -> None:
    svc = COMPOSE_SERVICES[name]
    env = environment(svc)
    calls = invocations(svc.get("command"))
    assert calls, f"compose service {name!r}: no recognisable command (see test_command_runs_existing_code)"
    readable = EnvNames()
    pending = [c for c in calls if c.script is None and c.module in PENDING_MODULES]
    for call in calls:
        if call not in pending:
            for cls in settings_of(call):
                readable.update(env_names(cls))
    if pending:
        # Not written yet: allow the shared settings (KAFKA_*, DATABASE_*, LOG_*, CLOCK_*) and
        # its own prefix; the exact check applies as soon as the module exists.
        from services.runtime import settings as shared

        for cls in settings_classes_in(shared, defined_only=True):
            readable.update(env_names(cls))
    own_prefixes = tuple(STACK_MODULES[c.module][0].upper() + "_" for c in pending)
    unread = [
        var
        for var in env
        if var not in readable
        and var not in INTERPRETER_ENV
        and not (own_prefixes and var.upper().startswith(own_prefixes))
    ]
    assert not unread, (
        f"compose service {name!r} sets {', '.join(sorted(unread))}, which its code never reads "
        f"(it reads: {', '.join(readable.names())}). Remove the variable or fix its name "
        "(pydantic-settings: env_prefix + field name, e.g. EDUCATION_PORT, KAFKA_BOOTSTRAP_SERVERS)"
    )


@pytest.mark.parametrize("name", sorted({*BROKER_SERVICES, *POSTGRES_SERVICES}))
def test_infrastructure_environment_is_the_images_own(name: str) -> None:
    svc = COMPOSE_SERVICES[name]
    prefixes, names = IMAGE_ENV[image_name(svc)]
    unknown = sorted(v for v in environment(svc) if not v.startswith(prefixes) and v not in names)
    assert not unknown, (
        f"compose service {name!r} ({svc.get('image')}) sets {unknown}, which its image does not read: remove them"
    )


@pytest.mark.parametrize("name", [n for n in APP_SERVICES if stack_invocation(COMPOSE_SERVICES[n]) is not None])
def test_service_listens_where_compose_looks(name: str) -> None:
    svc = COMPOSE_SERVICES[name]
    env = {k.upper(): v for k, v in environment(svc).items()}
    call = stack_invocation(svc)
    assert call is not None
    stack_name, stack_port = STACK_MODULES[call.module]
    if call.module in PENDING_MODULES:
        host_var, port_var = f"{stack_name}_HOST".upper(), f"{stack_name}_PORT".upper()
        default_port = stack_port
    else:
        listening = listening_settings(settings_of(call))
        assert len(listening) == 1, (
            f"{call.module}: expected exactly one settings class with `host` and `port` fields, "
            f"found {[c.__qualname__ for c in listening]}; a service in a container must be told "
            "to listen on 0.0.0.0, so its settings need a `host` field"
        )
        cls = listening[0]
        names = own_env_names(cls)
        assert len(names["host"]) == 1 and len(names["port"]) == 1, (
            f"{cls.__qualname__}: host/port are read under several names {names['host']}, "
            f"{names['port']}; teach this test which one compose should set"
        )
        host_var, port_var = names["host"][0].upper(), names["port"][0].upper()
        default_port = cls.model_fields["port"].default
        assert default_port == stack_port, (
            f"{cls.__qualname__}.port defaults to {default_port} but infra.stack.SERVICES says "
            f"{stack_port} for {stack_name}: make them agree"
        )
    assert env.get(host_var) == "0.0.0.0", (
        f'compose service {name!r}: set {host_var}: "0.0.0.0" in its environment; the default '
        "(127.0.0.1) is unreachable from outside the container"
    )
    port = int(env[port_var]) if env.get(port_var) not in (None, "") else default_port
    assert port is not None, f"compose service {name!r}: set {port_var}"
    for entry in svc.get("ports") or []:
        assert container_port(entry) == port, (
            f"compose service {name!r} publishes container port {container_port(entry)} but the "
            f'service listens on {port} ({port_var}): use "<host>:{port}"'
        )
    for entry in svc.get("expose") or []:
        assert container_port(entry) == port, (
            f"compose service {name!r} exposes {entry} but listens on {port}: expose {port}"
        )
    urls = healthcheck_urls(svc)
    assert urls, (
        f"compose service {name!r}: add a healthcheck that fetches "
        f"http://127.0.0.1:{port}/readyz (the image has no HEALTHCHECK)"
    )
    for check_port, path in urls:
        assert (check_port, path) == (port, "/readyz"), (
            f"compose service {name!r}: healthcheck fetches :{check_port}{path}; it must fetch "
            f"http://127.0.0.1:{port}/readyz"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_operations(name: str) -> None:
    svc = COMPOSE_SERVICES[name]
    build = svc["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE_FILE.parent / context / dockerfile).resolve() == DOCKERFILE, (
        f"compose service {name!r} must build the one image: build: {{context: ., dockerfile: Dockerfile}}"
    )
    if name == INIT_SERVICE:
        restart = str(svc.get("restart", "no"))
        assert restart == "no" or restart.startswith("on-failure"), f'{name!r} is one-shot: restart: "no"'
        assert not svc.get("ports"), f"{name!r} serves nothing: remove its ports"
        return
    assert svc.get("restart") == "unless-stopped", f"compose service {name!r}: set restart: unless-stopped"
    depends = svc.get("depends_on") or {}
    condition = depends.get(INIT_SERVICE, {}).get("condition") if isinstance(depends, dict) else None
    assert condition == "service_completed_successfully", (
        f"compose service {name!r}: depends_on: {{{INIT_SERVICE}: {{condition: "
        "service_completed_successfully}} (migrations and topics first)"
    )
    assert "container_name" not in svc, f"compose service {name!r}: remove container_name (it prevents scaling)"


def test_scaled_services_do_not_clash_on_host_ports() -> None:
    for name, svc in COMPOSE_SERVICES.items():
        replicas = int((svc.get("deploy") or {}).get("replicas", 1))
        # the aggregator is the service meant to be scaled (`--scale aggregator=N`)
        if replicas <= 1 and name != "aggregator":
            continue
        fixed = [p for p in svc.get("ports") or [] if (h := published_host_port(p)) and "-" not in h]
        assert not fixed, (
            f"compose service {name!r} is scaled (deploy.replicas / --scale) but publishes fixed "
            f"host ports {fixed}: publish none (use expose) or a host port range"
        )
        assert "container_name" not in svc, f"{name!r} is scaled: remove container_name"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_shell_variables_in_commands_are_escaped(name: str) -> None:
    command = COMPOSE_SERVICES[name].get("command")
    text = command if isinstance(command, str) else " ".join(map(str, command or []))
    unescaped = re.findall(r"(?<!\$)\$(?:\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", ""))
    assert not unescaped, (
        f"compose service {name!r}: compose itself interpolates {unescaped} in `command:` when it "
        "reads the file; write $$NAME so that the shell in the container expands it"
    )


def test_environment_values_are_strings() -> None:
    for name, svc in COMPOSE_SERVICES.items():
        for var, value in environment(svc).items():
            assert not isinstance(value, bool) and not isinstance(value, (dict, list)), (
                f"compose service {name!r}: {var} is {value!r} ({type(value).__name__}); quote it "
                f'("{str(value).lower()}") - compose rejects YAML booleans in environment'
            )


def test_secrets_come_from_the_environment() -> None:
    for name, svc in COMPOSE_SERVICES.items():
        for var, value in environment(svc).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", var):
                assert interpolated_variable(value), (
                    f"compose service {name!r}: {var} must be `${{{var}:?set it}}`, not a literal"
                )
            if isinstance(value, str) and "://" in value:
                password = urlsplit(without_interpolation(value)).password
                if password is not None:
                    assert re.fullmatch(r"__[A-Za-z_][A-Za-z0-9_]*__", password), (
                        f"compose service {name!r}: {var} embeds a literal password; use "
                        "${POSTGRES_PASSWORD:?set it} in the URL"
                    )


# --- tests: Kafka and PostgreSQL ------------------------------------------------------------------


def _broker_env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in environment(COMPOSE_SERVICES[name]).items()}


def test_kafka_cluster_is_three_combined_kraft_nodes() -> None:
    assert len(BROKER_SERVICES) == BROKERS, (
        f"expected {BROKERS} {KAFKA_IMAGE} services, found {BROKER_SERVICES}: run a 3-node cluster"
    )
    envs = {name: _broker_env(name) for name in BROKER_SERVICES}
    node_ids = {name: env.get("KAFKA_NODE_ID") for name, env in envs.items()}
    assert None not in node_ids.values() and len(set(node_ids.values())) == BROKERS, (
        f"every broker needs its own KAFKA_NODE_ID: {node_ids}"
    )
    for name, env in envs.items():
        svc = COMPOSE_SERVICES[name]
        roles = set(env.get("KAFKA_PROCESS_ROLES", "").replace(" ", "").split(","))
        assert roles == {"broker", "controller"}, (
            f"{name}: KAFKA_PROCESS_ROLES must be broker,controller (combined KRaft node)"
        )
        host = svc.get("hostname", name)
        voters = dict(v.split("@", 1) for v in env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",") if "@" in v)
        assert set(voters) == set(node_ids.values()), (
            f"{name}: KAFKA_CONTROLLER_QUORUM_VOTERS must list the node ids {sorted(node_ids.values())}"
        )
        assert voters[env["KAFKA_NODE_ID"]].split(":")[0] in (host, name), (
            f"{name}: its quorum voter entry must point at itself ({host})"
        )
        assert env.get("CLUSTER_ID"), f"{name}: set CLUSTER_ID (the same on every node)"
        for var, wanted in {
            "KAFKA_DEFAULT_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
            "KAFKA_MIN_INSYNC_REPLICAS": str(MIN_ISR),
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(MIN_ISR),
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        }.items():
            assert env.get(var, "").lower() == wanted, f'{name}: set {var}: "{wanted}"'
        for var in (
            "KAFKA_LISTENERS",
            "KAFKA_ADVERTISED_LISTENERS",
            "KAFKA_CONTROLLER_LISTENER_NAMES",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "KAFKA_INTER_BROKER_LISTENER_NAME",
        ):
            assert env.get(var), f"{name}: set {var} (given any KAFKA_ variable the image uses no default config)"
        advertised = env["KAFKA_ADVERTISED_LISTENERS"]
        assert f"//{host}:" in advertised, (
            f"{name}: KAFKA_ADVERTISED_LISTENERS must advertise its compose hostname {host}"
        )
        log_dirs = env.get("KAFKA_LOG_DIRS", "")
        assert log_dirs and log_dirs in mount_targets(svc), (
            f"{name}: put KAFKA_LOG_DIRS ({log_dirs or 'unset'}) on a named volume"
        )
        assert svc.get("healthcheck"), f"{name}: add a healthcheck (init waits for healthy brokers)"
        assert svc.get("restart") == "unless-stopped", f"{name}: set restart: unless-stopped"
    for var in ("CLUSTER_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        values = {env.get(var) for env in envs.values()}
        assert len(values) == 1, f"{var} must be identical on every broker, found {values}"


def _broker_addresses() -> set[str]:
    addresses = set()
    for name in BROKER_SERVICES:
        env = _broker_env(name)
        controller = set(env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "").split(","))
        for listener in env.get("KAFKA_ADVERTISED_LISTENERS", "").split(","):
            listener_name, _, address = listener.partition("://")
            if listener_name not in controller and listener_name == env.get("KAFKA_INTER_BROKER_LISTENER_NAME"):
                addresses.add(address)
    return addresses


def test_services_reach_the_cluster_and_the_database() -> None:
    brokers = _broker_addresses()
    assert len(brokers) == BROKERS, f"could not read the brokers' internal addresses: {brokers}"
    assert len(POSTGRES_SERVICES) == 1, f"expected one {POSTGRES_IMAGE} service"
    postgres = POSTGRES_SERVICES[0]
    pg_env = environment(COMPOSE_SERVICES[postgres])
    password_var = interpolated_variable(pg_env.get("POSTGRES_PASSWORD"))
    for name in APP_SERVICES:
        env = environment(COMPOSE_SERVICES[name])
        readable = reads(name)
        for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
            if readable is not None and var in readable:
                assert env.get(var), (
                    f"compose service {name!r} reads {var} but compose does not set it (the "
                    "default points at 127.0.0.1): add it to its environment"
                )
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            bootstrap = set(str(env["KAFKA_BOOTSTRAP_SERVERS"]).split(","))
            assert bootstrap == brokers, (
                f"compose service {name!r}: KAFKA_BOOTSTRAP_SERVERS must list every broker "
                f"({','.join(sorted(brokers))}), not {sorted(bootstrap)}"
            )
        if "DATABASE_URL" in env:
            url = urlsplit(without_interpolation(env["DATABASE_URL"]))
            assert url.hostname == postgres and (url.port or 5432) == 5432, (
                f"compose service {name!r}: DATABASE_URL must point at {postgres}:5432"
            )
            assert url.username == pg_env.get("POSTGRES_USER", "postgres"), (
                f"compose service {name!r}: the DATABASE_URL user must be POSTGRES_USER"
            )
            assert url.path.lstrip("/") == pg_env.get("POSTGRES_DB", url.username), (
                f"compose service {name!r}: the DATABASE_URL database must be POSTGRES_DB"
            )
            assert password_var and url.password == f"__{password_var}__", (
                f"compose service {name!r}: DATABASE_URL must take its password from the "
                "variable the postgres service uses for POSTGRES_PASSWORD "
                "(${POSTGRES_PASSWORD:?set it})"
            )


def test_init_migrates_and_provisions_topics_with_replication_3() -> None:
    assert INIT_SERVICE in APP_SERVICES, (
        f"add a one-shot {INIT_SERVICE!r} service running `smartcity migrate` and `smartcity topics`"
    )
    svc = COMPOSE_SERVICES[INIT_SERVICE]
    ran = {(c.script, c.args[:1]) for c in invocations(svc.get("command"))}
    assert {("smartcity", ("migrate",)), ("smartcity", ("topics",))} <= ran, (
        f"{INIT_SERVICE!r} must run `smartcity migrate` and `smartcity topics`, it runs {ran}"
    )
    env = environment(svc)
    assert str(env.get("KAFKA_REPLICATION_FACTOR")) == str(REPLICATION_FACTOR), (
        f'{INIT_SERVICE!r}: set KAFKA_REPLICATION_FACTOR: "{REPLICATION_FACTOR}" (topics are '
        "created with the cluster's replication factor)"
    )
    depends = svc.get("depends_on") or {}
    for dependency in [*BROKER_SERVICES, *POSTGRES_SERVICES]:
        assert (depends.get(dependency) or {}).get("condition") == "service_healthy", (
            f"{INIT_SERVICE!r}: depends_on {dependency}: {{condition: service_healthy}}"
        )


def test_postgres() -> None:
    assert len(POSTGRES_SERVICES) == 1, f"expected one {POSTGRES_IMAGE} service, found {POSTGRES_SERVICES}"
    svc = COMPOSE_SERVICES[POSTGRES_SERVICES[0]]
    env = environment(svc)
    assert interpolated_variable(env.get("POSTGRES_PASSWORD")), (
        "postgres: POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it}"
    )
    test = svc.get("healthcheck", {}).get("test", "")
    assert "pg_isready" in (" ".join(test) if isinstance(test, list) else str(test)), (
        "postgres: add a healthcheck running pg_isready"
    )
    major = int(str(svc["image"]).rsplit(":", 1)[1].split(".")[0])
    wanted = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    assert wanted in mount_targets(svc), f"postgres:{major}: mount its data volume at {wanted}"
    assert svc.get("restart") == "unless-stopped", "postgres: set restart: unless-stopped"


def test_images_are_pinned() -> None:
    for name, svc in COMPOSE_SERVICES.items():
        image, tag = str(svc.get("image", "")), image_tag(svc)
        assert tag and tag != "latest" and "$" not in tag, (
            f"compose service {name!r}: pin its image to a version (image: {image or 'unset'})"
        )
    for name in BROKER_SERVICES:
        assert COMPOSE_SERVICES[name]["image"] == f"{KAFKA_IMAGE}:{DEFAULT_KAFKA_VERSION}", (
            f"{name}: use {KAFKA_IMAGE}:{DEFAULT_KAFKA_VERSION}, the version the integration "
            "tests run (infra.apache_kafka.launcher.DEFAULT_KAFKA_VERSION)"
        )
    version = PYPROJECT["project"]["version"]
    for name in APP_SERVICES:
        assert str(COMPOSE_SERVICES[name].get("image", "")).endswith(f":{version}"), (
            f"compose service {name!r}: tag the image with the project version ({version})"
        )


# --- tests: Dockerfile and .dockerignore ----------------------------------------------------------


def test_dockerfile_installs_pinned_runtime_dependencies() -> None:
    instructions = dockerfile_instructions()
    bases = dockerfile_bases(instructions)
    assert bases and all(b == "python:3.11-slim" for b in bases), (
        f"Dockerfile: every stage must start FROM python:3.11-slim (requires-python 3.11), found {bases}"
    )
    copies = " ".join(i.args for i in instructions if i.keyword in ("COPY", "ADD"))
    for needed in ("pyproject.toml", "constraints.txt"):
        assert needed in copies, f"Dockerfile: COPY {needed} into the build stage"
    installs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
    assert installs, "Dockerfile: install the project with `pip install -c constraints.txt .`"
    assert any(re.search(r"(-c|--constraint)[ =]constraints\.txt", run) for run in installs), (
        "Dockerfile: pip install must use -c constraints.txt (reproducible dependency versions)"
    )
    for run in installs:
        assert "[dev]" not in run and not re.search(r"\s-e\s|--editable", run), (
            f"Dockerfile: install the runtime dependencies only, non-editable: {run!r}"
        )
    final = max(i.stage for i in instructions)
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == final]
    assert users and users[-1].split(":")[0] not in ("root", "0"), (
        "Dockerfile: the final stage must switch to a non-root USER"
    )
    assert any(i.keyword == "CMD" for i in instructions), "Dockerfile: add a default CMD"


def test_dockerfile_exposes_every_compose_port() -> None:
    exposed = {
        int(port.split("/")[0]) for i in dockerfile_instructions() if i.keyword == "EXPOSE" for port in i.args.split()
    }
    used: dict[int, str] = {}
    for name in APP_SERVICES:
        svc = COMPOSE_SERVICES[name]
        for entry in [*(svc.get("ports") or []), *(svc.get("expose") or [])]:
            used[container_port(entry)] = name
        for port, _ in healthcheck_urls(svc):
            used[port] = name
    for _, module, port in SERVICES:
        if port is not None:
            used.setdefault(port, module)
    missing = {port: name for port, name in used.items() if port not in exposed}
    assert not missing, f"Dockerfile: EXPOSE {' '.join(map(str, sorted(missing)))} (used by {missing})"


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        (".venv/bin/python", True),
        (".git/HEAD", True),
        (".smartcity/dev-credentials.json", True),
        ("tests/unit/test_compose.py", True),
        ("services/__pycache__/__init__.cpython-311.pyc", True),
        ("services/education/__pycache__/app.cpython-311.pyc", True),
        ("smartcity_kpi.egg-info/PKG-INFO", True),
        ("pyproject.toml", False),
        ("constraints.txt", False),
        ("services/education/__main__.py", False),
        ("schemas/topics.py", False),
        ("infra/cli.py", False),
        ("infra/migrations/0001_core.sql", False),
        ("infra/reference/units_thanh_hoa_2020.csv", False),
    ],
)
def test_dockerignore(path: str, excluded: bool) -> None:
    assert DOCKERIGNORE.is_file(), "add a .dockerignore (keep .venv, .git, .smartcity, tests out)"
    assert dockerignore_excludes(path) == excluded, (
        f".dockerignore: {path} must be {'excluded from' if excluded else 'included in'} the build context"
    )


def test_dockerfile_copies_only_what_the_context_contains() -> None:
    for ins in dockerfile_instructions():
        if ins.keyword != "COPY" or "--from=" in ins.args:
            continue
        sources = [w for w in ins.args.split() if not w.startswith("--")][:-1]
        for source in sources:
            if any(ch in source for ch in "*?["):
                continue  # an optional glob (README.md*)
            assert (ROOT / source).exists(), f"Dockerfile: COPY {source}: no such file in the repository"
            assert not dockerignore_excludes(source.rstrip("/")), (
                f"Dockerfile: COPY {source} but .dockerignore excludes it"
            )


# --- tests: this module's model of pydantic-settings ----------------------------------------


@pytest.mark.parametrize("cls", _all_settings_classes(), ids=lambda c: c.__qualname__)
def test_env_name_walker_agrees_with_pydantic_settings(cls: type[BaseSettings]) -> None:
    """own_env_names() must compute what pydantic-settings itself looks up. This uses its
    (private) EnvSettingsSource._extract_field_info; if an upgrade changes that API, adapt this
    cross-check, not the compose file."""
    source = EnvSettingsSource(cls)
    for name, info in cls.model_fields.items():
        theirs = {env.upper() for _, env, _ in source._extract_field_info(info, name)}
        ours = {env.upper() for env in own_env_names(cls)[name]}
        assert ours == theirs, (
            f"{cls.__qualname__}.{name}: test_compose.own_env_names() says {ours}, "
            f"pydantic-settings reads {theirs}: fix own_env_names()"
        )
