"""Dependencies point one way: deployables import the core, ``schemas/`` and the shared
libraries - never another deployable - and the core imports no I/O library.

Imports are read from the source (``ast``), including imports inside functions, so a lazy
import cannot hide a dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"

# Libraries any deployable may import; everything else under services/ is a deployable.
LIBRARIES = {"core", "runtime", "readmodels", "ingest"}
# What each library may import from services/ (besides itself).
LIBRARY_DEPENDENCIES = {
    "core": set(),
    "runtime": {"core"},
    "readmodels": {"core", "runtime"},
    "ingest": {"core", "runtime"},
}
# The core is pure: none of these may appear in it.
IO_LIBRARIES = {
    "asyncpg",
    "confluent_kafka",
    "kafka",
    "aiokafka",
    "faust",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "socket",
    "subprocess",
    "prometheus_client",
}


def packages() -> list[str]:
    return sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists())


def imports_of(package: str) -> dict[str, set[str]]:
    """Module path (relative) → every absolute module name it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((SERVICES / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def services_imported(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("services.") and n.count(".") >= 1}


DEPLOYABLES = [p for p in packages() if p not in LIBRARIES]


def test_the_layout_has_the_expected_libraries_and_deployables() -> None:
    assert set(packages()) >= LIBRARIES
    assert {"aggregator", "kpi_api", "alerts", "education", "health", "transport", "culture"} <= set(DEPLOYABLES)


@pytest.mark.parametrize("package", DEPLOYABLES)
def test_a_deployable_imports_no_other_deployable(package: str) -> None:
    offending = {
        module: sorted(services_imported(names) - LIBRARIES - {package})
        for module, names in imports_of(package).items()
        if services_imported(names) - LIBRARIES - {package}
    }
    assert not offending, f"{package} imports other deployables: {offending}"


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_library_imports_only_what_is_below_it(library: str) -> None:
    allowed = LIBRARY_DEPENDENCIES[library] | {library}
    offending = {
        module: sorted(services_imported(names) - allowed)
        for module, names in imports_of(library).items()
        if services_imported(names) - allowed
    }
    assert not offending, f"services/{library} imports {offending}"


def test_the_core_imports_no_io_library() -> None:
    offending = {
        module: sorted(n for n in names if n.split(".")[0] in IO_LIBRARIES)
        for module, names in imports_of("core").items()
        if any(n.split(".")[0] in IO_LIBRARIES for n in names)
    }
    assert not offending, f"the core must stay pure: {offending}"


def test_schemas_import_nothing_from_services() -> None:
    for path in (ROOT / "schemas").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("services"):
                raise AssertionError(f"{path.relative_to(ROOT)} imports {node.module}")


def test_the_walker_sees_a_lazy_cross_import(tmp_path: Path) -> None:
    # the detector itself can fail: an import inside a function is found
    source = "def f():\n    from services.kpi_api.service import KpiService\n"
    names = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module is not None}
    assert services_imported(names) == {"kpi_api"}
