"""Event ``data`` models and the catalogue mapping every CloudEvents ``type`` to its model."""

from schemas.events.catalogue import EVENT_SPECS, EventSpec, spec_for, specs_of_sector

__all__ = ["EVENT_SPECS", "EventSpec", "spec_for", "specs_of_sector"]
