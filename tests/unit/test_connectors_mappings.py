"""Mapping files (the province's data) and lookups (pure)."""

import pytest

from schemas.sectors import Sector
from services.connectors.common import as_ref, parse_compact, parse_slashed
from services.connectors.mappings import KINDS, MappingFileError, Mappings, parse_rows
from tests.support.connectors_samples import STARTER, starter_mappings


def test_starter_set_loads() -> None:
    for kind in KINDS:
        assert parse_rows(kind, (STARTER / f"{kind}.csv").read_text(encoding="utf-8"))
    mappings = starter_mappings()
    assert mappings.sector_of_field("GD01") is Sector.EDUCATION
    assert mappings.sector_of_field("HT01") is Sector.GENERAL
    assert mappings.sector_of_field("NOT-A-FIELD") is Sector.GENERAL  # a home for every dossier
    assert mappings.sector_of_field("") is Sector.GENERAL
    organ = mappings.organ("000.00.12.H56")
    assert organ is not None and (organ.unit_code, organ.sector) == ("38", "health")
    agency = mappings.agency("ubnd PHƯỜNG   hạc thành")
    assert agency is not None and agency.unit_code == "380"
    assert mappings.facility("38001") is not None and mappings.facility("nope") is None


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("organs", "organ_code,sector\nX,general\n", "missing column"),
        ("organs", "organ_code,unit_code\n,38\n", "empty organ_code"),
        ("organs", "organ_code,unit_code\nA,3x\n", "unit_code"),
        ("organs", "organ_code,unit_code\nA,38\nA,380\n", "repeated"),
        ("procedure_fields", "field_code,sector\nX,land\n", "sector must be"),
        ("procedure_fields", "field_code,sector\nX,\n", "empty sector"),
        ("people", "a\n", "unknown mapping kind"),
    ],
)
def test_bad_files_are_refused(kind: str, content: str, message: str) -> None:
    with pytest.raises(MappingFileError, match=message):
        parse_rows(kind, content)


def test_comments_and_flags() -> None:
    rows = parse_rows("facilities", "# note\nfacility_code,unit_code,emr\n38001,380,true\n38002,390,\n")
    mappings = Mappings.from_rows(rows)
    assert mappings.facility("38001").flag is True  # type: ignore[union-attr]
    assert mappings.facility("38002").flag is False  # type: ignore[union-attr]


def test_identifiers_and_dates() -> None:
    assert as_ref("000.00.28.H56-250505-0001") == "000.00.28.H56-250505-0001"
    odd = as_ref("HS số 12/QĐ")
    assert odd.startswith("h:") and odd == as_ref("HS số 12/QĐ") and len(odd) <= 64
    assert parse_compact("20250312083015", "x") is not None
    assert parse_compact("202503120830", "x") is not None and parse_compact("", "x") is None
    assert parse_slashed("2025/03/14", "x") is not None
