"""Open and overdue dossiers now; e-government projects."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas.kpi_api import OverduePublic, ProjectsPublic
from services.core import calendar
from services.kpi_api.deps import ContextDep, OperatorDep, now
from services.kpi_api.http import decode_cursor, encode_cursor, page, respond
from services.kpi_api.routes.kpis import Limit
from services.readmodels.counters import NO_DUE
from services.runtime.problems import InvalidQuery, NotFound, problem_responses

router = APIRouter(tags=["operations"], responses=problem_responses(401, 403, 404, 422, 429, 503))


@router.get("/v1/dossiers/overdue", response_model=OverduePublic, summary="Open dossiers past due now")
async def overdue(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    unit: Annotated[str | None, Query(description="Default: the caller's scope")] = None,
    cursor: str | None = None,
    limit: Limit = 200,
) -> Response:
    code = unit or op.scope
    target = ctx.service().unit(code, as_of=calendar.local(now(ctx)).date()) if unit else op.scope_unit
    if target is None:
        raise NotFound(f"no administrative unit {code!r} today")
    op.require(target)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            after = (dt.datetime.fromisoformat(after[0]), str(after[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise InvalidQuery("invalid cursor") from None
        if after[0].tzinfo is None or "\x00" in after[1]:  # what this API never issues
            raise InvalidQuery("invalid cursor")
    at = now(ctx)
    per_unit, items = await ctx.entities().overdue(target, at, after, limit)
    last = items[-1] if len(items) == limit else None
    nxt = encode_cursor([(last.due_at or NO_DUE).isoformat(), last.dossier_id]) if last else None
    payload = OverduePublic(unit=code, as_of=at, per_unit=per_unit, items=items, next_cursor=nxt)  # type: ignore[arg-type]
    return respond(request, payload, filename=f"overdue-{code}")


@router.get(
    "/v1/projects", response_model=ProjectsPublic, summary="E-government projects by stage, with schedule status"
)
async def projects(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    stage: Annotated[str | None, Query(pattern="^(proposal|design|appraisal|in_progress|completed)$")] = None,
    unit: str | None = None,
    cursor: str | None = None,
    limit: Limit = 500,
) -> Response:
    code = unit or op.scope
    target = ctx.service().unit(code) if unit else op.scope_unit
    if target is None:
        raise NotFound(f"no administrative unit {code!r}")
    op.require(target)
    counts, rate, items = await ctx.entities().projects(target, stage, now(ctx))
    chunk, nxt = page(items, cursor, limit)
    payload = ProjectsPublic(
        unit=code, stage=stage, counts_by_stage=counts, on_schedule_rate=rate, items=chunk, next_cursor=nxt
    )
    return respond(request, payload, filename="projects")
