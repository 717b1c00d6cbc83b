"""The pure parts of alerting: working time, the threshold and silence state machines, and
when a KPI value may be judged at all (:mod:`services.core.alerting.threshold`)."""
