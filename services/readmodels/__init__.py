"""PostgreSQL read models shared by several deployables (a library, not a deployable).

- ``tables``: the layout of the entity tables (``dossiers``, ``documents``, ``projects``),
  which the aggregator writes and the KPI API and alerts read;
- ``counters``: reads of counters, live dossier counts, overdue dossiers and projects;
- ``kpis``: KPI values of units over a period (counters + registry formulas), the read side
  the KPI API and the alerts worker share;
- ``alerts``: the alerts table, written by the alerts worker, read and acknowledged through
  the KPI API.
"""
