"""edXML messages from the national document exchange axis: ``POST /v1/edxml``, one message
(a new / revoked / updated / replacing document, or a status) per request."""

import asyncio
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.connectors_api import ConnectorAnswerPublic
from services.connectors import edxml
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
from services.connectors.signatures import PdfSignatures, read_signatures
from services.runtime.problems import problem_responses

log = structlog.get_logger(__name__)
router = APIRouter(tags=["edXML documents"])
_BODY = {"required": True, "content": {t: {"schema": {"type": "string"}} for t in ("application/xml", "text/xml")}}


async def _signatures(ctx: ConnectorContext, msg: edxml.DocumentMessage) -> PdfSignatures:
    """Signatures of every PDF attachment together (read off the event loop: CPU-bound)."""
    classes: list[str] = []
    broken = 0
    for pdf in msg.attachments:
        found = await asyncio.to_thread(read_signatures, pdf, ctx.rule)
        classes += found.classes
        broken += found.broken
    return PdfSignatures(tuple(classes), broken, True)


async def derive(ctx: ConnectorContext, body: bytes, outcome: Outcome) -> list[Event]:
    mappings = ctx.current_mappings()
    source = f"/connectors/edxml/{ctx.settings.edxml_system_id}"
    try:
        msg = edxml.parse_message(body, ctx.settings.max_attachment_bytes)
    except RecordError as exc:
        outcome.reject(exc.as_dict())
        return []
    if isinstance(msg, edxml.StatusMessage):
        outcome.ref = edxml.incoming_ref(msg.document_id, msg.responder)
        return edxml.derive_status(msg, mappings, source)
    outcome.ref = edxml.document_ref(msg.document_id)
    signatures = await _signatures(ctx, msg) if edxml.is_outgoing(msg, mappings) else None
    return edxml.derive_document(msg, mappings, signatures, source)


@router.post(
    "/v1/edxml",
    summary="One edXML message (QCVN 102:2016): document or status",
    response_model=ConnectorAnswerPublic,
    responses={
        422: {"model": ConnectorAnswerPublic, "description": "Message rejected (the reason in results)"},
        503: {"model": ConnectorAnswerPublic, "description": "Not durable: resend"},
        **problem_responses(401, 403, 413, 415, 429),
    },
    openapi_extra={"requestBody": _BODY},
)
async def post_edxml(request: Request) -> Response:
    ctx: ConnectorContext = request.app.state.ctx
    principal = await authenticate(ctx, request)
    require_xml(request)
    body = await read_body(request, ctx.settings.max_body_bytes)
    outcome = Outcome(0, None)
    events = await derive(ctx, body, outcome)
    await publish(ctx, principal, "edxml", [(outcome, events)])
    log.info("edxml message", status=outcome.status, events=outcome.events, errors=[e["code"] for e in outcome.errors])
    status, answer = results_answer([outcome])
    headers: dict[str, Any] = {"Retry-After": "5"} if status == 503 else {}
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json", headers=headers)
