"""The entity tables, defined once from the core's state dataclasses.

Each column is a field of the state dataclass (``services.core.kpis``), in field order, with
its PostgreSQL type derived from the field's annotation; ``tests/unit/test_tables.py`` checks
that the migrations create exactly these columns.
"""

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any

from services.core.kpis.documents import DocumentState
from services.core.kpis.dossiers import DossierState
from services.core.kpis.projects import ProjectState

_PG_TYPES: dict[type, str] = {
    str: "text",
    bool: "bool",
    int: "int8",
    float: "float8",
    dt.datetime: "timestamptz",
    dt.date: "date",
}


def _pg_type(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _pg_type(inner)
    return _PG_TYPES[annotation]


@dataclass(frozen=True, slots=True)
class EntityTable:
    """An entity table: its name, key column, and columns with PostgreSQL types."""

    name: str
    key: str
    state: type
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, name: str, state: type) -> "EntityTable":
        hints = typing.get_type_hints(state)
        columns = tuple((f.name, _pg_type(hints[f.name])) for f in dataclasses.fields(state))
        return cls(name, columns[0][0], state, columns)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def select_list(self) -> str:
        return ", ".join(self.names)

    def from_row(self, row: typing.Mapping[str, Any]) -> Any:
        return self.state(**{name: row[name] for name in self.names})


DOSSIERS = EntityTable.of("dossiers", DossierState)
DOCUMENTS = EntityTable.of("documents", DocumentState)
PROJECTS = EntityTable.of("projects", ProjectState)
ENTITY_TABLES: dict[str, EntityTable] = {"dossiers": DOSSIERS, "documents": DOCUMENTS, "projects": PROJECTS}
