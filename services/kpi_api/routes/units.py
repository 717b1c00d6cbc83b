"""Units (as of a day, with their succession), scorecards, the composite score and the map."""

import datetime as dt
import hashlib
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas.kpi_api import ScorecardPublic, ScorePublic, UnitLinkPublic, UnitListPublic, UnitPublic
from services.core import calendar
from services.core.history import main_former
from services.core.units import LEVEL_NAMES, Succession, Unit, UnitRegistry
from services.kpi_api.deps import ContextDep, OperatorDep, now
from services.kpi_api.http import page, respond
from services.kpi_api.routes.kpis import AsOf, From, HistoryParam, LevelQuestionDep, Limit, To
from services.readmodels.kpis import Period
from services.runtime.problems import NotFound, problem_responses

router = APIRouter(tags=["units"], responses=problem_responses(401, 403, 404, 422, 429, 503))
GEOJSON = Path(__file__).resolve().parents[3] / "infra" / "reference" / "thanh_hoa_communes_2025.geojson"


def unit_public(registry: UnitRegistry, unit: Unit, links: bool = False) -> UnitPublic:
    former = main_former(registry, unit)
    return UnitPublic(
        code=unit.code,
        key=unit.key,
        name=unit.name,
        full_name=unit.full_name,
        kind=unit.kind,
        level=unit.level,
        parent_code=unit.parent_code,
        valid_from=unit.valid_from,
        valid_to=unit.valid_to,
        population=unit.population,
        area_km2=unit.area_km2,
        former_district=former.code if former else None,
        predecessors=[_link(registry, old, link) for old, link in registry.predecessors(unit)] if links else [],
        successors=[_link(registry, new, link) for new, link in registry.successors(unit)] if links else [],
    )


def _link(registry: UnitRegistry, unit: Unit, link: Succession) -> UnitLinkPublic:
    return UnitLinkPublic(
        code=unit.code,
        name=unit.name,
        valid_from=unit.valid_from,
        valid_to=unit.valid_to,
        share=link.share,
        weight=registry.weight(link),
        effective=link.effective,
    )


@router.get("/v1/units", response_model=UnitListPublic, summary="Units in the caller's scope, as of a day")
async def list_units(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    level: Annotated[str | None, Query(pattern="^(province|district|commune)$")] = None,
    as_of: Annotated[dt.date | None, Query(description="Units that existed this day; default: today")] = None,
) -> Response:
    registry = op.registry
    day = as_of or calendar.local(now(ctx)).date()
    units = [
        u
        for u in registry.all_units()
        if u.valid_on(day) and op.may_see(u) and (level is None or u.level == LEVEL_NAMES[level])
    ]
    items = [unit_public(registry, u) for u in sorted(units, key=lambda u: (u.level, u.code))]
    return respond(request, UnitListPublic(as_of=day, items=items), filename="units")


@router.get("/v1/units/{code}", response_model=UnitListPublic, summary="Every unit a code has denoted")
async def unit_history(request: Request, ctx: ContextDep, op: OperatorDep, code: str) -> Response:
    """The units a code denoted over time, with what each was formed from and went into."""
    registry = op.registry
    units = [u for u in registry.versions(code) if op.may_see(u)]
    if not registry.versions(code):
        raise NotFound(f"no administrative unit {code!r}")
    if not units:
        op.require(registry.versions(code)[-1])
    day = calendar.local(now(ctx)).date()
    return respond(request, UnitListPublic(as_of=day, items=[unit_public(registry, u, links=True) for u in units]))


@router.get(
    "/v1/units/{code}/scorecard", response_model=ScorecardPublic, summary="Every KPI of a unit against its target"
)
async def scorecard(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    code: str,
    from_: From = None,
    to: To = None,
    as_of: AsOf = None,
    history: HistoryParam = "restated",
) -> Response:
    service = ctx.service()
    period = Period.parse(from_, to, now(ctx))
    unit = service.unit(code, period, as_of)
    op.require(unit)
    items, subject, before = await service.scorecard(unit, period, history, now(ctx))
    payload = ScorecardPublic.model_validate(
        {
            "unit": code,
            "unit_name": unit.name,
            "unit_valid_from": unit.valid_from,
            "unit_valid_to": unit.valid_to,
            "basis": subject.basis,
            "previous_basis": before.basis,
            "history": history,
            "reforms": service.reforms(period, period.previous()),
            "from": period.start,
            "to": period.end,
            "items": items,
        }
    )
    return respond(request, payload, filename=f"scorecard-{code}")


@router.get("/v1/score", response_model=ScorePublic, summary="Decision 766 style composite score, ranked")
async def score(
    request: Request,
    op: OperatorDep,
    q: LevelQuestionDep,
    cursor: str | None = None,
    limit: Limit = 1000,
) -> Response:
    service, level, period, day, history = q.service, q.level, q.period, q.day, q.history
    rows = [r for r in await service.score(level, period, day, history, q.now) if op.may_see_key(r["unit_key"])]
    items, nxt = page(rows, cursor, limit)
    payload = {
        "level": level,
        "as_of": day,
        "history": history,
        "reforms": [d.isoformat() for d in service.reforms(period)],
        "from": period.start,
        "to": period.end,
        "items": items,
        "next_cursor": nxt,
    }  # ScorePublic, served without a second validation of every row (see respond)
    return respond(request, payload, filename=f"score-{level}")


@cache
def _geometry() -> tuple[bytes, str]:
    body = GEOJSON.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get(
    "/v1/map/communes",
    summary="Boundaries of today's communes and wards (GeoJSON, simplified)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}, "description": "A FeatureCollection, id = code"}},
)
async def communes_map(request: Request, _op: OperatorDep) -> Response:
    """The 166 communes of 2025-07-01, for the dashboard's map (no tile server, no CDN)."""
    body, etag = _geometry()
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)
