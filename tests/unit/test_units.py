"""The effective-dated unit registry (services/core/units.py) on Thanh Hóa's reference data
and on small hand-made registries: code reuse across the 2025 reform, parents that change,
validity enforced at both ends, succession, population, memberships."""

import datetime as dt

import pytest

from infra.migrate import reference_registry
from services.core.units import Succession, UnitDataError, UnitRegistry, UnitRow

REGISTRY = reference_registry()
D = dt.date
VN = dt.timezone(dt.timedelta(hours=7))
DONG_SON_COMMUNE = "16378"  # under Đông Sơn (405) until 2024-12-31, under Thanh Hóa city (380) until 2025-06-30


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_the_reference_files_describe_both_eras():
    assert len(REGISTRY.at_level(3, D(2025, 6, 30))) == 548
    assert len(REGISTRY.at_level(3, D(2025, 7, 1))) == 166
    assert len(REGISTRY.at_level(2, D(2024, 6, 30))) == 27
    assert len(REGISTRY.at_level(2, D(2025, 6, 30))) == 26  # Đông Sơn ended with 2024
    assert REGISTRY.at_level(2, D(2025, 7, 1)) == []
    assert [u.code for u in REGISTRY.at_level(1, D(2026, 1, 1))] == ["38"]


def test_a_reused_code_denotes_the_unit_of_the_day():
    before, after = REGISTRY.get("14758", D(2025, 6, 30)), REGISTRY.get("14758", D(2025, 7, 1))
    assert before is not None and after is not None
    assert (before.full_name, after.full_name) == ("Phường Đông Thọ", "Phường Hàm Rồng")
    assert before.key != after.key and REGISTRY.get("14758") == after
    assert REGISTRY.lineage("14758", D(2025, 6, 30)) == ("14758", "380", "38")
    assert REGISTRY.lineage("14758", D(2025, 7, 1)) == ("14758", "38")


def test_parents_change_over_time():
    assert REGISTRY.lineage(DONG_SON_COMMUNE, D(2024, 12, 31)) == (DONG_SON_COMMUNE, "405", "38")
    assert REGISTRY.lineage(DONG_SON_COMMUNE, D(2025, 1, 1)) == (DONG_SON_COMMUNE, "380", "38")
    unit = REGISTRY.get(DONG_SON_COMMUNE, D(2025, 1, 1))
    assert unit is not None and len(unit.parents) == 2  # one unit, two parents


@pytest.mark.parametrize(
    ("code", "moment", "valid"),
    [
        ("14758", "2025-06-30T23:59:59+07:00", True),  # Đông Thọ's last second
        ("14758", "2025-07-01T00:00:00+07:00", True),  # Hàm Rồng's first
        ("14755", "2025-06-30T23:59:59+07:00", True),  # old Hàm Rồng, absorbed
        ("14755", "2025-07-01T00:00:00+07:00", False),
        ("395", "2025-06-30T16:00:00+07:00", True),  # a district's own agencies, for its lifetime
        ("395", "2025-07-01T08:00:00+07:00", False),
        ("405", "2025-01-01T00:00:00+07:00", False),
        ("38", "2100-01-01T00:00:00+07:00", True),
    ],
)
def test_validity_is_enforced_at_both_ends_on_the_vietnamese_day(code, moment, valid):
    assert (REGISTRY.check(code, at(moment)) is None) is valid


def test_a_unit_is_not_valid_before_it_began_and_problems_say_when_it_was():
    reg = UnitRegistry.from_rows(rows(("1", "P", None, None, None), ("100", "W", "1", "2025-07-01", None)))
    error = reg.check("100", at("2025-06-30T23:59:59+07:00"))
    assert error is not None and error[0] == "unit_not_valid" and "2025-07-01" in error[1]
    assert reg.check("100", at("2025-07-01T00:00:00+07:00")) is None
    assert REGISTRY.check("99999", at("2025-06-01T08:00:00+07:00"))[0] == "unknown_unit"  # type: ignore[index]


def test_every_old_commune_is_restated_in_full_across_its_successors():
    reform = D(2025, 7, 1)
    shares: dict[str, float] = {}
    for link in REGISTRY.successions:
        shares[link.old_code] = shares.get(link.old_code, 0.0) + REGISTRY.weight(link)
    assert len(shares) == 548 and all(abs(v - 1.0) < 1e-9 for v in shares.values())
    hàm_rồng = REGISTRY.get("14758", reform)
    assert hàm_rồng is not None
    predecessors = {(old.code, link.share) for old, link in REGISTRY.predecessors(hàm_rồng)}
    assert ("14758", "partial") in predecessors and ("14755", "full") in predecessors


def test_population_is_own_or_the_sum_below():
    assert REGISTRY.population(REGISTRY.get("38"), D(2026, 1, 1)) == 4_320_947  # type: ignore[arg-type]
    assert REGISTRY.population(REGISTRY.get("38"), D(2024, 1, 1)) == 3_640_128  # type: ignore[arg-type]
    assert REGISTRY.get("14758", D(2025, 6, 30)).population is None  # type: ignore[union-attr]


def test_memberships_follow_parents_over_time():
    city = REGISTRY.get("380", D(2025, 3, 1))
    dong_son = REGISTRY.get("405", D(2024, 3, 1))
    assert city is not None and dong_son is not None
    of_city = {c: (a, b) for c, a, b in REGISTRY.memberships(city, D(2024, 12, 1), D(2025, 1, 31))}
    of_dong_son = {c: (a, b) for c, a, b in REGISTRY.memberships(dong_son, D(2024, 12, 1), D(2025, 1, 31))}
    assert of_city[DONG_SON_COMMUNE] == (D(2025, 1, 1), D(2025, 1, 31))
    assert of_dong_son[DONG_SON_COMMUNE] == (D(2024, 12, 1), D(2024, 12, 31))


def rows(*items: tuple[str, str, str | None, str | None, str | None]) -> list[UnitRow]:
    kinds = {"1": "province"}
    return [
        UnitRow(code, name, name, kinds.get(code, "district" if len(code) == 2 else "commune"), parent,
                D.fromisoformat(a) if a else None, D.fromisoformat(b) if b else None)
        for code, name, parent, a, b in items
    ]  # fmt: skip


def test_rows_of_a_code_with_the_same_name_are_one_unit_unless_a_succession_starts():
    data = rows(("1", "P", None, None, None), ("10", "D", "1", None, None), ("11", "E", "1", None, None),
                ("100", "W", "10", None, "2024-12-31"), ("100", "W", "11", "2025-01-01", "2025-06-30"),
                ("100", "W", "1", "2025-07-01", None))  # fmt: skip
    merged = UnitRegistry.from_rows(data)
    assert len(merged.versions("100")) == 1 and len(merged.versions("100")[0].parents) == 3
    split = UnitRegistry.from_rows(data, [Succession("100", "100", "full", D(2025, 7, 1))])
    assert [u.valid_to for u in split.versions("100")] == [D(2025, 6, 30), None]


def test_contradictory_data_is_refused_with_the_reason():
    with pytest.raises(UnitDataError, match="overlap"):
        UnitRegistry.from_rows(rows(("1", "P", None, None, None), ("100", "W", "1", None, "2025-06-30"),
                                    ("100", "X", "1", "2025-06-01", None)))  # fmt: skip
    with pytest.raises(UnitDataError, match="parent 10 does not exist to this day"):
        UnitRegistry.from_rows(rows(("1", "P", None, None, None), ("10", "D", "1", None, "2024-12-31"),
                                    ("100", "W", "10", None, None)))  # fmt: skip
    with pytest.raises(UnitDataError, match="not valid"):
        UnitRegistry.from_rows(rows(("1", "P", None, None, None)), [Succession("7", "1", "full", D(2025, 7, 1))])


def test_lineage_terminates_on_a_cycle():
    reg = UnitRegistry.from_rows(rows(("10", "A", "11", None, None), ("11", "B", "10", None, None)), ())
    assert reg.lineage("10", D(2025, 1, 1)) == ("10", "11")
