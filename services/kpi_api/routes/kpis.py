"""KPI catalogue, time series and rankings."""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from schemas.kpi_api import HistoryMode, KpiListPublic, KpiPublic, RankingPublic, SeriesPublic
from services.core.calendar import Granularity
from services.kpi_api.deps import ContextDep, OperatorDep, now
from services.kpi_api.http import page, respond
from services.kpi_api.service import KpiService, note_of
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
Level = Annotated[
    str,
    Query(
        pattern="^(province|district|commune|former_district)$",
        description="commune: the commune-level units of the `as_of` day (today's 166 communes and wards "
        "after 1 July 2025); former_district: the districts as they were on their last day, followed "
        "after the reform through the communes formed mostly from each",
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
AsOf = Annotated[
    dt.date | None,
    Query(
        description="Which units: those of this day (a code denotes different units over time); "
        "default: the last day of the period"
    ),
]
HistoryParam = Annotated[
    HistoryMode,
    Query(
        description="restated (default): before a unit existed, its values are summed from what it was "
        "made of, flagged per point; observed: only its own counters"
    ),
]


@dataclass(frozen=True)
class LevelQuestion:
    """The units of a level over a period, as of a day: what a ranking or a score asks."""

    service: KpiService
    level: str
    period: Period
    day: dt.date
    history: HistoryMode
    now: dt.datetime


def level_question(
    ctx: ContextDep,
    level: Level = "commune",
    from_: From = None,
    to: To = None,
    as_of: AsOf = None,
    history: HistoryParam = "restated",
) -> LevelQuestion:
    service, moment = ctx.service(), now(ctx)
    period = Period.parse(from_, to, moment)
    return LevelQuestion(service, level, period, service.as_of(period, as_of), history, moment)


LevelQuestionDep = Annotated[LevelQuestion, Depends(level_question)]


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
    unit: Annotated[str, Query(description="Unit code; includes the units below it")] = "38",
    sector: Sector = None,
    from_: From = None,
    to: To = None,
    granularity: Granularity = "day",
    as_of: AsOf = None,
    history: HistoryParam = "restated",
) -> Response:
    service = ctx.service()
    definition = service.kpi(kpi)
    period = Period.parse(from_, to, now(ctx))
    target = service.unit(unit, period, as_of)
    op.require(target)
    points = await service.series(definition, target, sector, period, granularity, history, now(ctx))
    payload = SeriesPublic.model_validate(
        {
            "kpi": kpi,
            "unit": unit,
            "unit_name": target.name,
            "unit_valid_from": target.valid_from,
            "unit_valid_to": target.valid_to,
            "sector": sector,
            "granularity": granularity,
            "from": points[0].start if points else period.start,
            "to": points[-1].end if points else period.end,
            "history": history,
            "reforms": service.reforms(period),
            "note": note_of(definition, "series"),
            "items": points,
        }
    )
    return respond(request, payload, filename=f"{kpi}-{unit}-series")


@router.get("/{kpi}/ranking", response_model=RankingPublic, summary="Units of a level ranked by a KPI")
async def ranking(
    request: Request,
    op: OperatorDep,
    kpi: str,
    q: LevelQuestionDep,
    sector: Sector = None,
    cursor: str | None = None,
    limit: Limit = 1000,
) -> Response:
    service, level, period, day, history = q.service, q.level, q.period, q.day, q.history
    definition = service.kpi(kpi)
    rows, ranked = await service.ranking(definition, level, period, day, history, sector, q.now)
    items, nxt = page([r for r in rows if op.may_see_key(r["unit_key"])], cursor, limit)
    previous = period.previous()
    payload = {
        "kpi": kpi,
        "level": level,
        "as_of": day,
        "sector": sector,
        "from": period.start,
        "to": period.end,
        "previous_from": previous.start,
        "previous_to": previous.end,
        "history": history,
        "reforms": [d.isoformat() for d in service.reforms(period, previous)],
        "ranked_units": ranked,
        "note": note_of(definition, "previous"),
        "items": items,
        "next_cursor": nxt,
    }  # RankingPublic, served without a second validation of every row (see respond)
    return respond(request, payload, filename=f"{kpi}-{level}-ranking")
