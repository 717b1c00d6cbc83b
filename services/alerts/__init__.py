"""Alerts: KPIs crossing their thresholds and units gone silent (faust-streaming worker).

See ``docs/alerts.md``. ``python -m services.alerts`` runs the worker and its health server.
"""
