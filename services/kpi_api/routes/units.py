"""Units, scorecards and the composite score."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas.kpi_api import ScorecardPublic, ScorePublic, UnitListPublic, UnitPublic
from services.kpi_api.deps import ContextDep, OperatorDep, now
from services.kpi_api.http import page, respond
from services.kpi_api.routes.kpis import From, Level, Limit, To
from services.readmodels.kpis import Period
from services.runtime.problems import problem_responses

router = APIRouter(tags=["units"], responses=problem_responses(401, 403, 404, 422, 429, 503))


@router.get("/v1/units", response_model=UnitListPublic, summary="Units in the caller's scope")
async def list_units(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    level: Annotated[str | None, Query(pattern="^(province|district|commune)$")] = None,
) -> Response:
    registry = op.registry
    codes = [op.scope, *registry.descendants(op.scope)]
    items = [
        UnitPublic(
            code=u.code,
            name=u.name,
            full_name=u.full_name,
            kind=u.kind,
            level=u.level,
            parent_code=u.parent_code,
            valid_from=u.valid_from,
            valid_to=u.valid_to,
        )
        for u in sorted((registry.units[c] for c in codes), key=lambda u: (u.level, u.code))
        if level is None or u.level == {"province": 1, "district": 2, "commune": 3}[level]
    ]
    return respond(request, UnitListPublic(items=items), filename="units")


@router.get(
    "/v1/units/{code}/scorecard", response_model=ScorecardPublic, summary="Every KPI of a unit against its target"
)
async def scorecard(
    request: Request, ctx: ContextDep, op: OperatorDep, code: str, from_: From = None, to: To = None
) -> Response:
    service = ctx.service()
    unit = service.unit(code)
    op.require(code)
    period = Period.parse(from_, to, now(ctx))
    items = await service.scorecard(code, period, now(ctx))
    payload = ScorecardPublic.model_validate(
        {"unit": code, "unit_name": unit.name, "from": period.start, "to": period.end, "items": items}
    )
    return respond(request, payload, filename=f"scorecard-{code}")


@router.get("/v1/score", response_model=ScorePublic, summary="Decision 766 style composite score, ranked")
async def score(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    level: Level = "district",
    from_: From = None,
    to: To = None,
    cursor: str | None = None,
    limit: Limit = 1000,
) -> Response:
    service = ctx.service()
    period = Period.parse(from_, to, now(ctx))
    rows = [r for r in await service.score(level, period, now(ctx)) if op.may_see(r.unit)]
    items, nxt = page(rows, cursor, limit)
    payload = ScorePublic.model_validate(
        {"level": level, "from": period.start, "to": period.end, "items": items, "next_cursor": nxt}
    )
    return respond(request, payload, filename=f"score-{level}")
