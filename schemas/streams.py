"""Messages on the internal topics: counter changes (``kpi-updates``) and the dead-letter
headers. Sector topics carry CloudEvents (``schemas.envelope``)."""

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import UnitCode
from schemas.sectors import Sector

# Headers the aggregator adds to a record it dead-letters (original headers are kept).
DLQ_HEADERS: dict[str, str] = {
    "dlq_reason": "Why the record could not be processed (UTF-8, at most 1000 bytes).",
    "dlq_topic": "Topic the record was read from.",
    "dlq_partition": "Partition the record was read from (decimal).",
    "dlq_offset": "Offset of the record in that partition (decimal).",
}


class KpiUpdate(BaseModel):
    """The counters of one (unit, sector) that a committed batch changed, and the span of
    event hours they changed in. Published only after the batch is committed in PostgreSQL."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    unit: UnitCode
    sector: Sector
    metrics: list[str] = Field(min_length=1, description="Changed counters (schemas.metrics).")
    from_: AwareDatetime = Field(alias="from", description="Start of the first hour (UTC).")
    to: AwareDatetime = Field(description="End of the last hour (UTC, exclusive).")

    @classmethod
    def of(cls, unit: str, sector: str, metrics: set[str], hours: list[int]) -> "KpiUpdate":
        return cls(
            unit=unit,
            sector=Sector(sector),
            metrics=sorted(metrics),
            from_=dt.datetime.fromtimestamp(min(hours) * 3600, dt.UTC),
            to=dt.datetime.fromtimestamp((max(hours) + 1) * 3600, dt.UTC),
        )
