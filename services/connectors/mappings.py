"""Mappings the province loads as data: procedure field → sector, organ code → unit,
handling agency → unit, health facility → unit.

Four CSV files (starter set in ``infra/reference/connectors/``) are loaded into the table
``connector_mappings`` (``adapters/mapping_store.py``); this module is the pure part: the
file format, key normalisation and lookups.

File format: UTF-8 CSV with a header; lines starting with ``#`` are comments.

=================  ===========================  =======================================
kind               columns                      key
=================  ===========================  =======================================
procedure_fields   field_code, sector, label    ``MaLinhVuc`` of a dossier
organs             organ_code, unit_code,       edXML ``OrganId``; the organ prefix of a
                   sector, label                ``MaHoSo``; the envelope's ``madonvi``
agencies           agency_name, unit_code,      ``DonViXuLy`` (compared case- and
                   label                        space-insensitively, Unicode NFC)
facilities         facility_code, unit_code,    ``MACSKCB`` / ``MA_CSKCB``; ``emr`` says the
                   emr, label                   facility keeps electronic medical records
=================  ===========================  =======================================
"""

import csv
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from schemas.sectors import Sector

MappingKind = Literal["procedure_fields", "organs", "agencies", "facilities"]
KINDS: tuple[MappingKind, ...] = ("procedure_fields", "organs", "agencies", "facilities")

_COLUMNS: dict[str, tuple[str, ...]] = {
    "procedure_fields": ("field_code", "sector"),
    "organs": ("organ_code", "unit_code"),
    "agencies": ("agency_name", "unit_code"),
    "facilities": ("facility_code", "unit_code"),
}
_TRUE = frozenset({"1", "true", "yes", "x"})


class MappingFileError(ValueError):
    """A mapping file cannot be loaded; the message names the line and column."""


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One row as stored: ``key`` is already normalised."""

    kind: str
    key: str
    unit_code: str | None
    sector: str | None
    flag: bool
    label: str


def normalise(kind: str, key: str) -> str:
    """Agency names compare case-, accent-form- and space-insensitively; codes exactly."""
    key = unicodedata.normalize("NFC", key).strip()
    if kind == "agencies":
        return " ".join(key.casefold().split())
    return key


def _cell(row: dict[str, str | None], name: str) -> str:
    return (row.get(name) or "").strip()


def parse_rows(kind: str, content: str) -> list[MappingRow]:
    """Rows of one mapping file; raises MappingFileError on the first bad line."""
    if kind not in _COLUMNS:
        raise MappingFileError(f"unknown mapping kind {kind!r}; one of {', '.join(KINDS)}")
    lines = [line for line in content.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    key_col, _ = _COLUMNS[kind]
    missing = [c for c in _COLUMNS[kind] if c not in (reader.fieldnames or [])]
    if missing:
        raise MappingFileError(f"{kind}: missing column(s) {', '.join(missing)}")
    out: dict[str, MappingRow] = {}
    sectors = {s.value for s in Sector}
    for number, row in enumerate(reader, start=2):
        key = normalise(kind, _cell(row, key_col))
        if not key:
            raise MappingFileError(f"{kind} line {number}: empty {key_col}")
        sector = _cell(row, "sector") or None
        if sector is not None and sector not in sectors:
            raise MappingFileError(f"{kind} line {number}: sector must be one of {', '.join(sorted(sectors))}")
        if kind == "procedure_fields" and sector is None:
            raise MappingFileError(f"{kind} line {number}: empty sector")
        unit = _cell(row, "unit_code") or None
        if kind != "procedure_fields" and (unit is None or not unit.isdigit() or not 2 <= len(unit) <= 5):
            raise MappingFileError(f"{kind} line {number}: unit_code must be 2-5 digits")
        if key in out:
            raise MappingFileError(f"{kind} line {number}: {key_col} repeated")
        flag = _cell(row, "emr").lower() in _TRUE
        out[key] = MappingRow(kind, key, unit, sector, flag, _cell(row, "label"))
    return list(out.values())


@dataclass(frozen=True, slots=True)
class Target:
    unit_code: str | None
    sector: str | None
    flag: bool = False


@dataclass(frozen=True, slots=True)
class Mappings:
    """Every mapping, read-only, as the service holds it between refreshes."""

    by_kind: dict[str, dict[str, Target]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[MappingRow]) -> "Mappings":
        by_kind: dict[str, dict[str, Target]] = {kind: {} for kind in KINDS}
        for row in rows:
            by_kind.setdefault(row.kind, {})[row.key] = Target(row.unit_code, row.sector, row.flag)
        return cls(by_kind)

    def _get(self, kind: str, key: str) -> Target | None:
        return self.by_kind.get(kind, {}).get(normalise(kind, key)) if key else None

    def sector_of_field(self, field_code: str) -> Sector:
        """The sector of a procedure field; a field of none of the four service sectors (or
        not in the table) belongs to ``general``, which every province-wide KPI sums."""
        target = self._get("procedure_fields", field_code)
        return Sector(target.sector) if target and target.sector else Sector.GENERAL

    def organ(self, organ_code: str) -> Target | None:
        return self._get("organs", organ_code)

    def agency(self, name: str) -> Target | None:
        return self._get("agencies", name)

    def facility(self, code: str) -> Target | None:
        return self._get("facilities", code)
