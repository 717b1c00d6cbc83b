"""The one ASGI middleware around every request of every service.

It adds fixed response headers (the KPI API's security headers), captures the response
status once, and tells each observer - request metrics, the operators' access audit - about
the finished request. One wrapper of ``send`` per request, whatever is observed.
"""

import time
from collections.abc import Callable, Mapping, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Called after every HTTP request with its scope, response status and duration in seconds.
Observer = Callable[[Scope, int, float], None]


class ResponseMiddleware:
    def __init__(
        self, app: ASGIApp, observers: Sequence[Observer] = (), headers: Mapping[str, str] | None = None
    ) -> None:
        self.app = app
        self.observers = tuple(observers)
        self.headers = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what a request that never started its response counts as

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.headers:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    message["headers"] = [
                        *message.get("headers", []),
                        *((k, v) for k, v in self.headers if k not in present),
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            for observe in self.observers:
                observe(scope, status, elapsed)
