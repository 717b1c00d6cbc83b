"""How much of the full rate an hour of history gets.

``make run`` first sends history back to 1 January 2025, so that an operator sees the months
before and after the reform of 1 July 2025 within minutes. Sending every hour of two years
at the full rate would take hours; instead, hours from ``full_from`` on get the full rate and
older hours less, growing towards ``full_from``. The e-government families (dossiers and
documents: what rankings and scores are made of) keep a floor, so that every month has enough
dossiers per commune; service usage (fares, visits, tickets…) thins out fast - monthly usage
counts of the history are a sample, not the province's volume.
"""

from dataclasses import dataclass

EGOV_KINDS = frozenset({"dossier", "incoming", "outgoing"})


@dataclass(frozen=True, slots=True)
class Density:
    """Scales of the full rate per hour: ``(usage, e-government)``.

    ``full_from`` (epoch seconds): hours ending after it get the full rate; ``None``: every
    hour does. An hour ``age`` days older gets ``near × days / (days + age)`` of the full rate,
    never less than ``floor`` - per family.
    """

    full_from: float | None = None
    egov_near: float = 0.3
    egov_days: float = 7.0
    egov_floor: float = 0.045
    usage_near: float = 0.03
    usage_days: float = 1.0
    usage_floor: float = 0.0002

    def scales(self, hour: int) -> tuple[float, float]:
        """(usage scale, e-government scale) of the hour starting at ``hour × 3600``."""
        if self.full_from is None:
            return 1.0, 1.0
        age = (self.full_from - (hour + 1) * 3600) / 86400
        if age < 0:
            return 1.0, 1.0
        usage = max(self.usage_floor, self.usage_near * self.usage_days / (self.usage_days + age))
        egov = max(self.egov_floor, self.egov_near * self.egov_days / (self.egov_days + age))
        return usage, egov

    def scale(self, hour: int, kind: str) -> float:
        usage, egov = self.scales(hour)
        return egov if kind in EGOV_KINDS else usage


FULL = Density()
