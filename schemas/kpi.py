"""The KPI registry: every KPI as data (``schemas/kpi_registry.toml``), validated at load.

A KPI is a formula over counters (``schemas.metrics``):

    value = scale × Σ numerator terms ÷ Σ denominator terms      (kind "ratio")
    value = scale × Σ numerator terms                            (kind "sum")
    value = Σ numerator ÷ (population ÷ per)                     (kind "per_capita")
    value = q-quantile of a cumulative histogram, × scale        (kind "quantile")
    no value: the registry says why                              (kind "not_computable")

A term is a counter name, prefixed with "-" to subtract it. ``basis`` says what the counters
are: ``events`` - sums of event counters over a period (ratios of sums, so any roll-up over
time, units or sectors is exact); ``snapshot`` - counts of entity state now (projects).
Adding a KPI over existing counters is an edit of the TOML file, not of code; the formulas
are evaluated in ``services/core/kpis/formulas.py``.
"""

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.metrics import ALL_METRICS, FAMILY_MODULES, SNAPSHOT_METRICS, USAGE_MODULE

REGISTRY_PATH = Path(__file__).parent / "kpi_registry.toml"

Direction = Literal["higher", "lower"]
Status = Literal["green", "amber", "red", "no_data", "no_target"]
SourceKind = Literal["verified", "practice", "derived"]
Kind = Literal["ratio", "sum", "per_capita", "quantile", "not_computable"]
Basis = Literal["events", "snapshot"]

# Decision 766/QĐ-TTg service quality index: groups and their points (out of 100), with the
# national portal's split of "online service provision" into online services + payment.
SCORE_GROUPS: dict[str, tuple[str, int]] = {
    "publicity": ("Publicity and transparency", 18),
    "progress": ("Progress and results of resolution", 20),
    "digitisation": ("Digitisation of dossiers", 22),
    "online_services": ("Online public services", 12),
    "online_payment": ("Online payment", 10),
    "satisfaction": ("Satisfaction", 18),
}


class Bands(BaseModel):
    """Red/amber/green: for "higher" KPIs green at ≥ ``green``, red below ``red``; for
    "lower" KPIs green at ≤ ``green``, red above ``red``; amber in between."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    green: float
    red: float


class ScoreRule(BaseModel):
    """Points an indicator earns in the composite score: ``points × min(1, value ÷ full_at)``
    where value is a rate in [0, 1] (percent ÷ 100)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str
    points: float = Field(gt=0)
    full_at: float = Field(default=1.0, gt=0, le=1)


class KpiDefinition(BaseModel):
    """One KPI of the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_vi: str
    name_en: str
    description: str = ""
    kind: Kind
    basis: Basis = Field(default="events", description="events: counters over a period; snapshot: state now.")
    numerator: tuple[str, ...] = ()
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    per: float = Field(default=100_000, gt=0, description="per_capita: residents per unit of the value.")
    quantile: float | None = Field(default=None, gt=0, lt=1)
    unit: str
    direction: Direction = "higher"
    target: float | None = None
    bands: Bands | None = None
    score: ScoreRule | None = None
    sectors: tuple[str, ...] | None = Field(
        default=None, description="Sectors whose events drive it (None: every sector)."
    )
    alert: bool = Field(default=False, description="Watched by threshold alerts.")
    window_days: int = Field(default=7, ge=1, description="Rolling window of threshold alerts.")
    source: str
    source_kind: SourceKind
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "KpiDefinition":
        for term in (*self.numerator, *self.denominator):
            name = term.removeprefix("-")
            if self.kind == "quantile" and name.endswith("_le_*h"):
                continue
            if name not in ALL_METRICS:
                raise ValueError(f"KPI {self.id}: unknown counter {name!r}")
        if self.kind == "ratio" and not (self.numerator and self.denominator):
            raise ValueError(f"KPI {self.id}: a ratio needs a numerator and a denominator")
        if self.kind in ("sum", "per_capita") and (not self.numerator or self.denominator):
            raise ValueError(f"KPI {self.id}: a {self.kind} has a numerator only")
        snapshot_terms = self.metrics & frozenset(SNAPSHOT_METRICS)
        if self.basis == "snapshot" and snapshot_terms != self.metrics:
            raise ValueError(f"KPI {self.id}: a snapshot KPI reads snapshot counters only")
        if self.basis == "events" and snapshot_terms:
            raise ValueError(f"KPI {self.id}: snapshot counters {sorted(snapshot_terms)} need basis = 'snapshot'")
        if self.kind == "not_computable" and (self.numerator or self.denominator or not self.note):
            raise ValueError(f"KPI {self.id}: a not_computable KPI has no formula and a note saying why")
        if self.kind == "quantile" and self.quantile is None:
            raise ValueError(f"KPI {self.id}: a quantile needs `quantile`")
        if self.score is not None and self.score.group not in SCORE_GROUPS:
            raise ValueError(f"KPI {self.id}: unknown score group {self.score.group!r}")
        if self.score is not None and self.kind not in ("ratio", "not_computable"):
            raise ValueError(f"KPI {self.id}: only rates can earn score points")
        if self.bands is not None:
            ordered = (
                self.bands.green >= self.bands.red if self.direction == "higher" else self.bands.green <= self.bands.red
            )
            if not ordered:
                raise ValueError(f"KPI {self.id}: green and red bands are in the wrong order")
        return self

    @property
    def computable(self) -> bool:
        return self.kind != "not_computable"

    @property
    def computed_in(self) -> list[str]:
        """The core modules that compute the counters this KPI reads."""
        return sorted({FAMILY_MODULES.get(m.split(".", 1)[0], USAGE_MODULE) for m in self.metrics})

    def formula(self, code: bool = False) -> str:
        """The formula as operators read it; ``code``: counter names in Markdown code spans."""

        def terms(items: tuple[str, ...]) -> str:
            quote = "`" if code else ""
            text = " ".join(f"− {quote}{t[1:]}{quote}" if t.startswith("-") else f"+ {quote}{t}{quote}" for t in items)
            return text.removeprefix("+ ")

        scale = "" if self.scale == 1 else f"{self.scale:g} × "
        now = "now: " if self.basis == "snapshot" else ""
        if self.kind == "ratio":
            return f"{now}{scale}({terms(self.numerator)}) ÷ ({terms(self.denominator)})"
        if self.kind == "sum":
            return f"{now}{scale}({terms(self.numerator)})"
        if self.kind == "per_capita":
            return f"({terms(self.numerator)}) ÷ (population ÷ {self.per:,.0f})".replace(",", " ")
        if self.kind == "quantile":
            return f"p{round((self.quantile or 0) * 100)} of dossier.processing_le_<h>h over {terms(self.denominator)}"
        return "not computable from events"

    @property
    def metrics(self) -> frozenset[str]:
        """Every counter the formula reads (histogram placeholders expanded by the caller)."""
        return frozenset(t.removeprefix("-") for t in (*self.numerator, *self.denominator))

    def status(self, value: float | None) -> Status:
        """Where a value stands against the bands."""
        if value is None:
            return "no_data"
        if self.bands is None:
            return "no_target"
        if self.direction == "higher":
            return "green" if value >= self.bands.green else "red" if value < self.bands.red else "amber"
        return "green" if value <= self.bands.green else "red" if value > self.bands.red else "amber"


class KpiRegistry(BaseModel):
    """The whole registry file: a version and the KPIs in display order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    kpis: tuple[KpiDefinition, ...]

    @model_validator(mode="after")
    def _unique_and_scored(self) -> "KpiRegistry":
        ids = [k.id for k in self.kpis]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate KPI ids: {sorted(duplicates)}")
        points = sum(k.score.points for k in self.kpis if k.score)
        if self.kpis and any(k.score for k in self.kpis) and abs(points - 100) > 1e-9:
            raise ValueError(f"composite score points add up to {points}, not 100")
        return self

    def get(self, kpi_id: str) -> KpiDefinition | None:
        return next((k for k in self.kpis if k.id == kpi_id), None)


def parse_registry(text: str) -> KpiRegistry:
    """Parse and validate registry TOML; raises ValueError (pydantic) with the reason."""
    raw = tomllib.loads(text)
    return KpiRegistry.model_validate({"version": raw.get("version"), "kpis": raw.get("kpi", [])})


@cache
def load_registry(path: Path = REGISTRY_PATH) -> KpiRegistry:
    return parse_registry(path.read_text(encoding="utf-8"))
