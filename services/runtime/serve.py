"""Run an ASGI app with uvicorn (uvloop, httptools) from its settings."""

from typing import Protocol

import uvicorn


class _Listens(Protocol):
    host: str
    port: int


def serve(app_path: str, settings: _Listens) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn drains in-flight requests on shutdown."""
    uvicorn.run(
        app_path,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        loop="uvloop",
        http="httptools",
    )
