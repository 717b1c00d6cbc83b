"""Liveness, readiness and Prometheus metrics endpoints, the same for every service."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import Scope

from services.runtime.middleware import Observer, ResponseMiddleware

ReadinessCheck = Callable[[], Awaitable[bool]]

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def health_router(checks: Callable[[], dict[str, ReadinessCheck]]) -> APIRouter:
    """``/healthz`` (process alive), ``/readyz`` (every dependency reachable), ``/metrics``.

    ``checks`` is called per request so the app can supply checks built in its lifespan.
    """
    router = APIRouter(tags=["operations"])
    # Concurrent probes share one round of checks: a probe storm while the broker is down
    # (each check then takes its full timeout, on a thread) must not exhaust the thread pool.
    in_flight: asyncio.Task[dict[str, bool]] | None = None

    async def run_checks() -> dict[str, bool]:
        named = checks()
        results = await asyncio.gather(*(_bounded(check) for check in named.values()))
        return dict(zip(named, results, strict=True))

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/readyz",
        summary="Every dependency (broker, database) is reachable",
        responses={503: {"description": "A dependency is not reachable"}},
    )
    async def readyz() -> JSONResponse:
        nonlocal in_flight
        if in_flight is None or in_flight.done():
            in_flight = asyncio.ensure_future(run_checks())
        status = await asyncio.shield(in_flight)  # a client that gives up does not cancel it
        ready = bool(status) and all(status.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": status},
            status_code=200 if ready else 503,
            headers={} if ready else {"Retry-After": "2"},
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _bounded(check: ReadinessCheck, timeout_s: float = 3.0) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            return await check()
    except Exception:
        return False


def observe_metrics(scope: Scope, status: int, elapsed_s: float) -> None:
    """Count a finished request and its latency per route template (not per raw path)."""
    route = scope.get("route")
    template = getattr(route, "path", "unmatched")
    method = scope.get("method", "")
    HTTP_REQUESTS.labels(method, template, str(status)).inc()
    HTTP_LATENCY.labels(method, template).observe(elapsed_s)


def install_operations(
    app: FastAPI,
    checks: Callable[[], dict[str, ReadinessCheck]],
    *,
    observers: Sequence[Observer] = (),
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add the health router and the response middleware (metrics, then ``observers``, and
    fixed ``headers``) to an app."""
    app.include_router(health_router(checks))
    app.add_middleware(ResponseMiddleware, observers=[observe_metrics, *observers], headers=headers or {})
