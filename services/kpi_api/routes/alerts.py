"""Alerts: list them (scoped like every other read) and acknowledge one.

Rows are written by the alerts worker (``services.alerts``); here they are only read, and
acknowledged: ``acknowledged`` is still live (the worker closes it when the condition ends).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response

from schemas.alerts_api import AcknowledgeRequest, AlertListPublic, AlertPublic
from services.kpi_api.deps import ContextDep, Operator, OperatorDep, now
from services.kpi_api.http import decode_cursor, encode_cursor, respond
from services.kpi_api.routes.kpis import Limit
from services.readmodels.alerts import AlertStore
from services.runtime.auth import audit
from services.runtime.problems import PROBLEM_MEDIA_TYPE, InvalidQuery, NotFound, ServiceError, problem_responses

# alert ids are PostgreSQL bigints: a larger number is a 422, never a driver overflow
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id")]

router = APIRouter(tags=["alerts"], responses=problem_responses(401, 403, 404, 422, 429, 503))


class Conflict(ServiceError):
    status, slug, title = 409, "conflict", "Conflict with the resource's state"


def public(row: Any, op: Operator) -> AlertPublic:
    details: dict[str, Any] = dict(row["details"] or {})
    unit = op.registry.get(row["unit_code"])
    return AlertPublic(
        id=row["id"],
        kind=row["kind"],
        rule=row["rule_id"],
        unit=row["unit_code"],
        unit_name=unit.name if unit else row["unit_code"],
        sector=row["sector"],
        kpi=row["kpi"],
        family=row["family"],
        title=str(details.get("title") or row["kpi"] or row["family"]),
        title_en=str(details.get("title_en") or details.get("title") or ""),
        state=row["state"],
        status="green" if row["state"] == "closed" else "red",
        value=details.get("value"),
        threshold=details.get("threshold"),
        close_threshold=details.get("close_threshold"),
        unit_of_measure=str(details.get("unit_of_measure") or ""),
        window_days=details.get("window_days"),
        opened_at=row["opened_at"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        closed_at=row["closed_at"],
        details=details,
    )


@router.get("/v1/alerts", response_model=AlertListPublic, summary="Alerts of units in the caller's scope")
async def list_alerts(
    request: Request,
    ctx: ContextDep,
    op: OperatorDep,
    state: Annotated[
        str | None, Query(pattern="^(open|acknowledged|closed)$", description="open: open or acknowledged")
    ] = None,
    unit: Annotated[str | None, Query(description="A unit and its descendants; default: the caller's scope")] = None,
    kpi: str | None = None,
    cursor: str | None = None,
    limit: Limit = 200,
) -> Response:
    code = unit or op.scope
    if code not in op.registry:
        raise NotFound(f"no administrative unit {code!r}")
    target = op.registry.get(code) if unit else op.scope_unit
    assert target is not None
    op.require(target)
    if kpi is not None and ctx.kpis.get(kpi) is None:  # only known ids reach SQL (no NUL bytes either)
        raise NotFound(f"no KPI {kpi!r}; GET /v1/kpis lists them")
    before = decode_cursor(cursor)
    if before is not None and not (isinstance(before, int) and 0 < before < 2**63):  # a bigint id
        raise InvalidQuery("invalid cursor")
    units = [code, *op.registry.descendants(code)]  # alerts name codes: any unit a code denoted below
    rows = await AlertStore(ctx.pool).list(units, state, kpi, before, limit)
    nxt = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    payload = AlertListPublic(items=[public(r, op) for r in rows], next_cursor=nxt)
    return respond(request, payload, filename="alerts")


@router.post(
    "/v1/alerts/{alert_id}/ack",
    response_model=AlertPublic,
    summary="Acknowledge an open alert",
    responses={
        409: {
            "description": "The alert is closed",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}},
        }
    },
)
async def acknowledge(
    ctx: ContextDep, op: OperatorDep, alert_id: AlertId, body: Annotated[AcknowledgeRequest | None, Body()] = None
) -> AlertPublic:
    principal = op.principal
    by = f"{principal.label} [{principal.key_id}]"
    note = body.note if body else None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await AlertStore.get_for_update(conn, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        alerted = op.registry.get(row["unit_code"], row["opened_at"].date())
        op.require(alerted or op.registry.get(row["unit_code"]))  # type: ignore[arg-type]
        if row["state"] == "closed":
            raise Conflict(f"alert {alert_id} is closed")
        if row["state"] == "acknowledged":
            return public(row, op)  # idempotent: the first acknowledgement stands
        row = await AlertStore.acknowledge(conn, alert_id, now(ctx), by, note)
        await audit(conn, principal.label, "alert.acknowledged", principal.key_id, alert_id=alert_id, note=note)
    return public(row, op)
