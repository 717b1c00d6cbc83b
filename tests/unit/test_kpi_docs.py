"""The KPI catalogue page is generated from the registry and must not go stale."""

from schemas.kpi import load_registry
from schemas.kpi_docs import DOC_PATH, render


def test_committed_catalogue_page_matches_the_registry() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(load_registry()), (
        "docs/kpi-catalogue.md is stale: run `python -m schemas.kpi_docs`"
    )


def test_every_kpi_of_the_registry_is_on_the_page() -> None:
    page = DOC_PATH.read_text(encoding="utf-8")
    for kpi in load_registry().kpis:
        assert f"`{kpi.id}`" in page
