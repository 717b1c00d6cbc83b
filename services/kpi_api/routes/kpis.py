"""KPI catalogue, time series and rankings."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas.kpi_api import KpiListPublic, KpiPublic, RankingPublic, SeriesPublic
from services.core.calendar import Granularity
from services.kpi_api.deps import ContextDep, OperatorDep, now
from services.kpi_api.http import page, respond
from services.kpi_api.service import note_of
from services.readmodels.kpis import Period
from services.runtime.problems import problem_responses

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], responses=problem_responses(401, 403, 404, 422, 429, 503))

From = Annotated[
    dt.datetime | None, Query(alias="from", description="Start (inclusive), ISO 8601; default: 30 days ago")
]
To = Annotated[dt.datetime | None, Query(description="End (exclusive), ISO 8601; default: end of today")]
Sector = Annotated[
    str | None, Query(pattern="^(education|health|transport|culture|general)$", description="Default: all sectors")
]
Level = Annotated[str, Query(pattern="^(province|district|commune)$")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("", response_model=KpiListPublic, summary="The KPI catalogue")
async def list_kpis(request: Request, ctx: ContextDep, _op: OperatorDep) -> Response:
    items = [
        KpiPublic(
            id=k.id,
            name_vi=k.name_vi,
            name_en=k.name_en,
            description=k.description,
            kind=k.kind,
            basis=k.basis,
            formula=k.formula(),
            computed_in=k.computed_in,
            unit=k.unit,
            direction=k.direction,
            target=k.target,
            bands=k.bands,
            score=k.score,
            sectors=list(k.sectors) if k.sectors else None,
            window_days=k.window_days,
            alert=k.alert,
            source=k.source,
            source_kind=k.source_kind,
            note=k.note,
        )
        for k in ctx.kpis.kpis
    ]
    return respond(request, KpiListPublic(version=ctx.kpis.version, items=items), filename="kpis")


@router.get("/{kpi}/series", response_model=SeriesPublic, summary="Time series of a KPI for a unit")
async def series(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    kpi: str,
    unit: Annotated[str, Query(description="Unit code; includes its descendants")] = "38",
    sector: Sector = None,
    from_: From = None,
    to: To = None,
    granularity: Granularity = "day",
) -> Response:
    service = ctx.service()
    definition = service.kpi(kpi)
    target = service.unit(unit)
    op.require(unit)
    period = Period.parse(from_, to, now(ctx))
    points = await service.series(definition, unit, sector, period, granularity, now(ctx))
    payload = SeriesPublic.model_validate(
        {
            "kpi": kpi,
            "unit": unit,
            "unit_name": target.name,
            "sector": sector,
            "granularity": granularity,
            "from": points[0].start if points else period.start,
            "to": points[-1].end if points else period.end,
            "note": note_of(definition, "series"),
            "items": points,
        }
    )
    return respond(request, payload, filename=f"{kpi}-{unit}-series")


@router.get("/{kpi}/ranking", response_model=RankingPublic, summary="Units of a level ranked by a KPI")
async def ranking(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    kpi: str,
    level: Level = "district",
    sector: Sector = None,
    from_: From = None,
    to: To = None,
    cursor: str | None = None,
    limit: Limit = 1000,
) -> Response:
    service = ctx.service()
    definition = service.kpi(kpi)
    period = Period.parse(from_, to, now(ctx))
    rows, ranked = await service.ranking(definition, level, period, sector, now(ctx))
    visible = [r for r in rows if op.may_see(r.unit)]
    items, nxt = page(visible, cursor, limit)
    previous = period.previous()
    payload = RankingPublic.model_validate(
        {
            "kpi": kpi,
            "level": level,
            "sector": sector,
            "from": period.start,
            "to": period.end,
            "previous_from": previous.start,
            "previous_to": previous.end,
            "ranked_units": ranked,
            "note": note_of(definition, "previous"),
            "items": items,
            "next_cursor": nxt,
        }
    )
    return respond(request, payload, filename=f"{kpi}-{level}-ranking")
