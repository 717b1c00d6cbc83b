"""Where each KPI is computed: one module per family of counters.

``dossiers`` (Decision 766 dossier indicators), ``documents`` (incoming and outgoing
documents, signatures), ``projects`` (e-government projects, snapshot KPIs), ``usage``
(sector service usage); ``formulas`` turns counters into registry KPIs and ``score`` into
the composite score. ``formulas.computed_in(kpi)`` names the module of any registry KPI.
"""
