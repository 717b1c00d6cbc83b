"""History across reorganisations (services/core/history.py) and what scoped keys may read
(services/core/scopes.py), on Thanh Hóa's reference data."""

import datetime as dt

from infra.migrate import reference_registry
from services.core.history import (
    carried,
    compose,
    compose_former,
    day_start,
    formed_from,
    former_units,
    heir,
    main_former,
    worst,
)
from services.core.scopes import scope_unit, visible

REGISTRY = REGISTRY_ = reference_registry()
D = dt.date
REFORM = D(2025, 7, 1)
HAM_RONG = REGISTRY.get("14758", REFORM)
CITY = REGISTRY.get("380", D(2025, 3, 1))


def pieces(unit, first, last, history="restated"):
    return compose(REGISTRY, unit, day_start(first), day_start(last), history)


def test_a_new_commune_is_observed_after_the_reform_and_restated_before():
    found = {(p.code, p.start.date(), p.weight, p.basis) for p in pieces(HAM_RONG, D(2025, 6, 1), D(2025, 8, 1))}
    assert ("14758", REFORM, 1.0, "observed") in found
    assert ("14755", D(2025, 6, 1), 1.0, "restated_exact") in found  # old Hàm Rồng came in whole
    assert ("14758", D(2025, 6, 1), 0.5, "restated_approximate") in found  # Đông Thọ was split in two
    assert worst(p.basis for p in pieces(HAM_RONG, D(2025, 6, 1), D(2025, 8, 1))) == "restated_approximate"


def test_observed_history_has_nothing_before_the_unit_began():
    found = pieces(HAM_RONG, D(2025, 6, 1), D(2025, 8, 1), "observed")
    assert [(p.code, p.start.date(), p.basis) for p in found] == [("14758", REFORM, "observed")]


def test_a_commune_formed_only_from_whole_communes_is_restated_exactly():
    exact = [
        u for u in REGISTRY.at_level(3, REFORM) if all(link.share == "full" for _o, link in REGISTRY.predecessors(u))
    ]
    assert exact
    assert worst(p.basis for p in pieces(exact[0], D(2025, 1, 1), REFORM)) == "restated_exact"


def test_a_city_that_absorbed_a_district_is_restated_with_it_before_the_merger():
    found = pieces(CITY, D(2024, 12, 1), D(2025, 2, 1))
    assert ("405", D(2024, 12, 1), D(2025, 1, 1), "restated_exact") in {
        (p.code, p.start.date(), p.end.date(), p.basis) for p in found
    }
    as_of_2024 = REGISTRY.get("380", D(2024, 6, 1))
    assert as_of_2024 == CITY  # the same unit: what is restated depends on the period asked


def test_restating_every_new_commune_uses_every_old_commune_exactly_once():
    totals: dict[str, float] = {}
    for unit in REGISTRY.at_level(3, REFORM):
        for p in pieces(unit, D(2025, 6, 1), REFORM):
            totals[p.code] = totals.get(p.code, 0.0) + p.weight
    old = {u.code for u in REGISTRY.at_level(3, D(2025, 6, 30))}
    assert set(totals) == old and all(abs(w - 1.0) < 1e-9 for w in totals.values())


def test_former_districts_group_every_new_commune_once():
    formers = former_units(REGISTRY)
    assert len(formers) == 26
    groups = [formed_from(REGISTRY, f) for f in formers]
    assert sorted(u.key for g in groups for u in g) == sorted(u.key for u in REGISTRY.at_level(3, REFORM))
    cam_thuy = next(f for f in formers if f.code == "390")
    assert all(main_former(REGISTRY, u) == cam_thuy for u in formed_from(REGISTRY, cam_thuy))


def test_a_former_district_is_itself_before_the_reform_and_its_communes_after():
    tho_xuan = next(f for f in former_units(REGISTRY) if f.code == "395")
    found = compose_former(REGISTRY, tho_xuan, day_start(D(2025, 6, 1)), day_start(D(2025, 8, 1)))
    assert [p.code for p in found if p.end <= day_start(REFORM)] == ["395"]
    after = {p.code for p in found if p.start >= day_start(REFORM)}
    assert after == {u.code for u in formed_from(REGISTRY, tho_xuan)}


def test_open_work_of_an_ended_commune_goes_to_one_heir():
    dong_tho = REGISTRY.get("14758", D(2025, 6, 30))
    assert heir(REGISTRY, dong_tho) == HAM_RONG  # split in two: the one that kept the code
    for old in REGISTRY.at_level(3, D(2025, 6, 30)):
        assert heir(REGISTRY, old) is not None
    assert dong_tho in carried(REGISTRY, HAM_RONG)


def test_scopes_across_the_reform():
    province = visible(REGISTRY, scope_unit(REGISTRY, "38", D(2026, 1, 1)))
    assert len(province) == len(REGISTRY)
    tho_xuan = visible(REGISTRY, scope_unit(REGISTRY, "395", D(2024, 1, 1)))
    assert {u.key for u in formed_from(REGISTRY, REGISTRY.get("395"))} <= tho_xuan
    assert HAM_RONG.key not in tho_xuan
    ham_rong = visible(REGISTRY, scope_unit(REGISTRY, "14758", D(2026, 1, 1)))
    assert {old.key for old, _l in REGISTRY.predecessors(HAM_RONG)} <= ham_rong
    assert REGISTRY.get("380", D(2025, 1, 1)).key not in ham_rong  # not the old city
    dong_tho = visible(REGISTRY, scope_unit(REGISTRY, "14758", D(2024, 1, 1)))
    assert HAM_RONG.key in dong_tho and REGISTRY.get("14797", REFORM).key in dong_tho  # what it became
