"""DVCQG dossier sync: the URLs a one-stop system pushes to, as it pushes to the portal.

- ``POST /v1/dvcqg/hoso/add``, ``/v1/dvcqg/hoso/update``: a plain JSON array of dossiers
  (Thanh Hóa's system); ``POST /v1/dvcqg/tiendo``: a plain array of progress steps;
- ``POST /v1/dvcqg``: the envelope ``{session, madonvi, service, isUpdating, data}`` with
  ``service`` = ``DongBoHoSoMC`` or ``CapNhatTienDoHoSoMC`` (OpenCPS).

Credential: ``Authorization: Bearer <connector key>``, or the key in the envelope's
``session``. Every answer is ``{"error_code", "message", "results"}``.
"""

import re
from typing import Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.connectors_api import DvcqgAnswerPublic
from services.connectors import dvcqg
from services.connectors.adapters import dossier_store
from services.connectors.common import Event, RecordError, digest
from services.connectors.dossier_state import DossierFacts, derive, home, merge_snapshot, merge_step, unpublished
from services.connectors.service import ConnectorContext, Outcome, authenticate, publish
from services.runtime.auth import Principal
from services.runtime.problems import ServiceError, read_body

log = structlog.get_logger(__name__)
router = APIRouter(tags=["DVCQG dossier sync"])
Kind = Literal["add", "update", "progress"]
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STATUS = {401: "-1", 403: "-1", 413: "-1", 429: "-2", 503: "-2"}

_ARRAY = {"required": True, "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}
_ENVELOPE = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["service", "data"],
                "properties": {
                    "session": {"type": "string"},
                    "madonvi": {"type": "string"},
                    "service": {"type": "string", "enum": ["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]},
                    "isUpdating": {"type": "string"},
                    "data": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": DvcqgAnswerPublic, "description": text}
    for code, text in {
        400: "Body not usable (error_code -1)",
        401: "Missing or unknown credential",
        403: "Not a connector credential",
        413: "Body or record count over the limit",
        429: "Rate limit (Retry-After)",
        503: "Some records not durable, or a dependency down: resend (Retry-After)",
    }.items()
}


def answer(
    error_code: str,
    message: str,
    results: list[dict[str, Any]] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error_code": error_code, "message": message, "results": results or []}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _failure(exc: ServiceError) -> Response:
    return answer(_STATUS.get(exc.status, "-1"), exc.detail, status=exc.status, headers=exc.headers)


def _source(ctx: ConnectorContext, madonvi: str) -> str:
    system = madonvi or ctx.settings.dvcqg_system_id
    return f"/connectors/dvcqg/{system if _SAFE.match(system) else digest(system)}"


def _parse(kind: Kind, raw: Any) -> dvcqg.Snapshot | dvcqg.Step:
    return dvcqg.parse_step(raw) if kind == "progress" else dvcqg.parse_dossier(raw)


async def _process(
    ctx: ConnectorContext, principal: Principal, kind: Kind, records: list[Any], madonvi: str
) -> tuple[list[Outcome], set[str]]:
    """Merge, derive, publish, store. Returns one outcome per record and the dossiers that
    were already known (with a snapshot) before this request."""
    mappings = ctx.current_mappings()
    outcomes = [Outcome(i, dvcqg.peek_dossier_id(raw)) for i, raw in enumerate(records)]
    parsed: dict[int, tuple[dvcqg.Snapshot | dvcqg.Step, tuple[str, str] | None]] = {}
    for outcome, raw in zip(outcomes, records, strict=True):
        try:
            item = _parse(kind, raw)
            place = home(item, mappings, madonvi) if isinstance(item, dvcqg.Snapshot) else None
            parsed[outcome.index] = (item, place)
        except RecordError as exc:
            outcome.reject(exc.as_dict())
    ids = sorted({item.dossier_id for item, _ in parsed.values()})
    if not ids:
        return outcomes, set()
    async with ctx.pool.acquire() as conn, conn.transaction():
        facts = await dossier_store.lock_facts(conn, ids)
        known = {d for d, f in facts.items() if f.has_snapshot}
        for _, (item, place) in sorted(parsed.items()):
            _merge(ctx, facts[item.dossier_id], item, place)
        groups = _groups(ctx, facts, madonvi)
        await publish(ctx, principal, "dvcqg", [(g, events) for g, events in groups.values()])
        done = []
        for dossier_id, (group, events) in groups.items():
            if group.status == "accepted":
                facts[dossier_id].published += [e.id for e in events]
                done.append(facts[dossier_id])
        await dossier_store.save_facts(conn, done)
        await dossier_store.drop_empty(conn, ids)
    for index, (item, _) in parsed.items():
        group = groups[item.dossier_id][0]
        outcomes[index].status, outcomes[index].errors = group.status, list(group.errors)
    return outcomes, known


def _merge(
    ctx: ConnectorContext, facts: DossierFacts, item: dvcqg.Snapshot | dvcqg.Step, place: tuple[str, str] | None
) -> None:
    if isinstance(item, dvcqg.Step):
        merge_step(facts, item)
    else:
        assert place is not None
        merge_snapshot(facts, item, place[0], place[1], ctx.settings.dvcqg_default_channel)


def _groups(
    ctx: ConnectorContext, facts: dict[str, DossierFacts], madonvi: str
) -> dict[str, tuple[Outcome, list[Event]]]:
    source = _source(ctx, madonvi)
    return {d: (Outcome(0, d), unpublished(f, derive(f, source))) for d, f in facts.items()}


def _record(ctx: ConnectorContext, outcome: Outcome, exists: bool) -> dict[str, Any]:
    settings = ctx.settings
    if outcome.status == "accepted":
        code = settings.dvcqg_exists_code if exists else settings.dvcqg_success_code
        message = "Hồ sơ đã tồn tại (trạng thái đã được ghi nhận)" if exists else "Đồng bộ thành công"
    elif outcome.status == "rejected":
        code, message = (
            "-1",
            "Dữ liệu không hợp lệ: " + "; ".join(f"{e['field']} {e['message']}" for e in outcome.errors),
        )
    else:
        code, message = "-2", "Chưa lưu được, vui lòng gửi lại"
    return {
        "index": outcome.index,
        "MaHoSo": outcome.ref,
        "error_code": code,
        "message": message,
        "errors": outcome.errors,
    }


async def handle(ctx: ConnectorContext, principal: Principal, kind: Kind, records: Any, madonvi: str) -> Response:
    if not isinstance(records, list):
        return answer("-1", "data must be a JSON array", status=400)
    if len(records) > ctx.settings.max_records:
        return answer("-1", f"{len(records)} records; the limit is {ctx.settings.max_records}", status=413)
    outcomes, known = await _process(ctx, principal, kind, records, madonvi)
    results = [_record(ctx, o, kind == "add" and o.ref in known) for o in outcomes]
    codes = {r["error_code"] for r in results}
    counts = {s: sum(o.status == s for o in outcomes) for s in ("accepted", "rejected", "unavailable")}
    log.info("dvcqg records", kind=kind, **counts)
    summary = f"{counts['accepted']}/{len(outcomes)} hồ sơ thành công"
    if "-2" in codes:
        return answer("-2", summary + "; gửi lại các hồ sơ lỗi -2", results, 503, {"Retry-After": "5"})
    if "-1" in codes:
        return answer("-1", summary + "; xem results", results)
    if ctx.settings.dvcqg_exists_code in codes:
        return answer(ctx.settings.dvcqg_exists_code, "Hồ sơ đã tồn tại; gửi cập nhật qua URL update", results)
    return answer(ctx.settings.dvcqg_success_code, "Đồng bộ thành công " + summary, results)


async def _arrive(request: Request, kind: Kind | None) -> Response:
    ctx: ConnectorContext = request.app.state.ctx
    try:
        principal = await authenticate(ctx, request) if request.headers.get("authorization") else None
        body = await read_body(request, ctx.settings.max_body_bytes)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return answer("-1", "body is not valid JSON", status=400)
        madonvi = ""
        if kind is None:
            if not isinstance(payload, dict):
                return answer(
                    "-1", "the envelope must be a JSON object {session, madonvi, service, isUpdating, data}", status=400
                )
            kind = _envelope_kind(payload)
            if kind is None:
                return answer("-1", "service must be DongBoHoSoMC or CapNhatTienDoHoSoMC", status=400)
            raw_unit = payload.get("madonvi")
            madonvi = raw_unit if isinstance(raw_unit, str) else ""
            session = payload.get("session") if isinstance(payload.get("session"), str) else None
            principal = principal or await authenticate(ctx, request, session)
            payload = payload.get("data")
        principal = principal or await authenticate(ctx, request)
        return await handle(ctx, principal, kind, payload, madonvi.strip())
    except ServiceError as exc:
        return _failure(exc)


def _envelope_kind(payload: dict[str, Any]) -> Kind | None:
    service = payload.get("service")
    if service == "CapNhatTienDoHoSoMC":
        return "progress"
    if service == "DongBoHoSoMC":
        updating = str(payload.get("isUpdating", "")).strip().lower() == "true"
        return "update" if updating else "add"
    return None


@router.post(
    "/v1/dvcqg/hoso/add",
    summary="New dossiers (plain array)",
    response_model=DvcqgAnswerPublic,
    responses=_RESPONSES,
    openapi_extra={"requestBody": _ARRAY},
)
async def post_add(request: Request) -> Response:
    return await _arrive(request, "add")


@router.post(
    "/v1/dvcqg/hoso/update",
    summary="Updated dossiers (plain array)",
    response_model=DvcqgAnswerPublic,
    responses=_RESPONSES,
    openapi_extra={"requestBody": _ARRAY},
)
async def post_update(request: Request) -> Response:
    return await _arrive(request, "update")


@router.post(
    "/v1/dvcqg/tiendo",
    summary="Progress steps (plain array)",
    response_model=DvcqgAnswerPublic,
    responses=_RESPONSES,
    openapi_extra={"requestBody": _ARRAY},
)
async def post_progress(request: Request) -> Response:
    return await _arrive(request, "progress")


@router.post(
    "/v1/dvcqg",
    summary="OpenCPS envelope (DongBoHoSoMC / CapNhatTienDoHoSoMC)",
    response_model=DvcqgAnswerPublic,
    responses=_RESPONSES,
    openapi_extra={"requestBody": _ENVELOPE},
)
async def post_envelope(request: Request) -> Response:
    return await _arrive(request, None)
