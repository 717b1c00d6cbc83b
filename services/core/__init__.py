"""The KPI core: every rule that decides a KPI, pure (no I/O library is imported here).

- ``calendar``: the one time zone (Asia/Ho_Chi_Minh), event hours, series buckets, periods;
- ``units``: administrative units and their rules (validity, parents, succession);
- ``kpis/``: one module per KPI family - where each KPI of ``schemas/kpi_registry.toml`` is
  computed (``dossiers``, ``documents``, ``projects``, ``usage``), the registry formulas
  (``formulas``) and the Decision 766 composite score (``score``);
- ``alerting/``: working time and the threshold and silence state machines.

Every deployable may import it; it imports no deployable (``tests/unit/test_layering.py``).
"""
