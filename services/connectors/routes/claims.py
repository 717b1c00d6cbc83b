"""Health-insurance claim XML: ``POST /v1/claims`` takes a ``GIAMDINHHS`` envelope (one
result per ``HOSO``), or one ``TONG_HOP`` (XML1) or check-in table."""

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.connectors_api import ConnectorAnswerPublic
from services.connectors import claims
from services.connectors.common import Event, RecordError
from services.connectors.service import (
    ConnectorContext,
    Outcome,
    authenticate,
    publish,
    read_body,
    require_xml,
    results_answer,
)
from services.runtime.problems import PayloadTooLarge, problem_responses

log = structlog.get_logger(__name__)
router = APIRouter(tags=["Health insurance claims"])
_BODY = {"required": True, "content": {t: {"schema": {"type": "string"}} for t in ("application/xml", "text/xml")}}


@router.post(
    "/v1/claims",
    summary="Claim XML (Decision 130/4750): GIAMDINHHS envelope, XML1 TONG_HOP or check-in table",
    response_model=ConnectorAnswerPublic,
    responses={
        422: {"model": ConnectorAnswerPublic, "description": "Every record rejected (reasons per record)"},
        503: {"model": ConnectorAnswerPublic, "description": "Not durable: resend"},
        **problem_responses(401, 403, 413, 415, 429),
    },
    openapi_extra={"requestBody": _BODY},
)
async def post_claims(request: Request) -> Response:
    ctx: ConnectorContext = request.app.state.ctx
    principal = await authenticate(ctx, request)
    require_xml(request)
    body = await read_body(request, ctx.settings.max_body_bytes)
    mappings = ctx.current_mappings()
    try:
        parsed: list[claims.Outcome] = claims.parse_body(body, ctx.settings.max_attachment_bytes)
    except RecordError as exc:
        parsed = [exc]
    if len(parsed) > ctx.settings.max_records:
        raise PayloadTooLarge(f"{len(parsed)} records; the limit is {ctx.settings.max_records}")
    groups: list[tuple[Outcome, list[Event]]] = []
    for index, item in enumerate(parsed):
        outcome = Outcome(index, None)
        events: list[Event] = []
        if isinstance(item, RecordError):
            outcome.reject(item.as_dict())
        else:
            outcome.ref = claims.visit_ref(item)
            try:
                events = claims.derive(item, mappings)
            except RecordError as exc:
                outcome.reject(exc.as_dict())
        groups.append((outcome, events))
    await publish(ctx, principal, "claims", groups)
    outcomes = [o for o, _ in groups]
    status, answer = results_answer(outcomes)
    log.info(
        "claim records", accepted=answer["accepted"], rejected=answer["rejected"], unavailable=answer["unavailable"]
    )
    headers = {"Retry-After": "5"} if status == 503 else {}
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json", headers=headers)
