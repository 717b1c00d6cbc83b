"""edXML messages from the national document exchange axis: ``POST /v1/edxml``, one message
(a new / revoked / updated / replacing document, or a status) per request."""

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.connectors import edxml
from services.connectors.common import Event, RecordError
from services.connectors.service import (
    ConnectorContext,
    Outcome,
    answer_response,
    publish,
    results_answer,
    xml_arrival,
    xml_route,
)
from services.connectors.signatures import PdfSignatures, read_signatures

log = structlog.get_logger(__name__)
router = APIRouter(tags=["edXML documents"])


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
    **xml_route("Message rejected (the reason in results)"),
)
async def post_edxml(request: Request) -> Response:
    ctx, principal, body = await xml_arrival(request)
    outcome = Outcome(0, None)
    events = await derive(ctx, body, outcome)
    await publish(ctx, principal, "edxml", [(outcome, events)])
    log.info("edxml message", status=outcome.status, events=outcome.events, errors=[e["code"] for e in outcome.errors])
    status, answer = results_answer([outcome])
    return answer_response(status, answer)
