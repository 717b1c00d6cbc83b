"""Health-insurance claim XML: ``POST /v1/claims`` takes a ``GIAMDINHHS`` envelope (one
result per ``HOSO``), or one ``TONG_HOP`` (XML1) or check-in table."""

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.connectors import claims
from services.connectors.common import Event, RecordError
from services.connectors.service import Outcome, answer_response, publish, results_answer, xml_arrival, xml_route
from services.runtime.problems import PayloadTooLarge

log = structlog.get_logger(__name__)
router = APIRouter(tags=["Health insurance claims"])


@router.post(
    "/v1/claims",
    summary="Claim XML (Decision 130/4750): GIAMDINHHS envelope, XML1 TONG_HOP or check-in table",
    **xml_route("Every record rejected (reasons per record)"),
)
async def post_claims(request: Request) -> Response:
    ctx, principal, body = await xml_arrival(request)
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
    return answer_response(status, answer)
