"""One error root for every service and its mapping to RFC 9457 problem details.

Domain and adapter code raise :class:`ServiceError` subclasses; one set of handlers turns
them - and FastAPI's own validation errors - into ``application/problem+json`` responses.
``retriable`` tells a client (and our own retry logic) whether trying again can help.
"""

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://smartcity.thanhhoa.gov.vn/problems/"

log = structlog.get_logger(__name__)


class ServiceError(Exception):
    """Root of every error a service answers with a problem document."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal error"
    retriable: bool = False

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "retriable": self.retriable,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class Malformed(ServiceError):
    status, slug, title = 400, "malformed", "Malformed request"


class Unauthenticated(ServiceError):
    status, slug, title = 401, "unauthenticated", "Missing or unknown credential"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="smartcity"'})


class Forbidden(ServiceError):
    status, slug, title = 403, "forbidden", "Credential not allowed"


class NotFound(ServiceError):
    status, slug, title = 404, "not-found", "Not found"


class PayloadTooLarge(ServiceError):
    status, slug, title = 413, "too-large", "Request too large"


class UnsupportedMediaType(ServiceError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"


class InvalidEvent(ServiceError):
    status, slug, title = 422, "invalid-event", "Invalid event"


class InvalidQuery(ServiceError):
    status, slug, title = 422, "invalid-query", "Invalid query"


class RateLimited(ServiceError):
    status, slug, title, retriable = 429, "rate-limited", "Too many requests", True

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class Unavailable(ServiceError):
    """A dependency (broker, database) cannot be reached; nothing was accepted."""

    status, slug, title, retriable = 503, "unavailable", "Service unavailable", True

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or unknown credential",
    403: "Credential not allowed",
    404: "Not found",
    413: "Request too large",
    415: "Unsupported content type",
    422: "Invalid request, with per-field errors",
    429: "Rate limit exceeded (Retry-After)",
    503: "A dependency is unavailable (Retry-After)",
}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes: by its declared length before reading
    it, and while streaming it for a body that does not declare one."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents with these status codes."""
    from schemas.ingest_api import ProblemPublic

    return {
        code: {
            "model": ProblemPublic,
            "description": _DESCRIPTIONS[code],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}},
        }
        for code in codes
    }


def problem_response(error: ServiceError, instance: str | None = None) -> Response:
    return Response(
        content=orjson.dumps(error.problem(instance)),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to an RFC 9457 response."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if exc.status >= 500:  # an operator must be able to tell why clients were turned away
            log.warning(
                "answered with a server-side problem", status=exc.status, detail=exc.detail, path=request.url.path
            )
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())),
                "message": str(err.get("msg", "")),
                "code": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return problem_response(InvalidQuery("invalid request parameters", errors=errors), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = ServiceError(str(exc.detail))
        error.status = exc.status_code
        error.slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        error.title = "HTTP error"
        return problem_response(error, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(ServiceError("unexpected server error"), request.url.path)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
