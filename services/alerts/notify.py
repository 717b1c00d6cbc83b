"""Notifications: the payload of an alert event, its signature, and the delivery loop.

Targets are webhook URLs (``ALERTS_WEBHOOKS``) and the ``alerts`` topic (``topic:<name>``).
A webhook receives ``POST`` with the JSON payload and the headers

- ``X-Smartcity-Signature: sha256=<hex>`` - HMAC-SHA256 of the raw body with
  ``ALERTS_WEBHOOK_SECRET`` (absent when no secret is configured);
- ``X-Smartcity-Delivery: alert-<id>-<event>`` - stable per (alert, event): a receiver that
  sees it twice (a retry after a lost answer) must ignore the second;
- ``X-Smartcity-Event: alert.opened`` or ``alert.closed``.

Any 2xx answer is a delivery; anything else (or no answer) is retried with exponential
backoff, without limit, from the outbox table - a restart loses nothing and, because a
delivered row is never sent again, notifies nobody twice.
"""

import asyncio
import datetime as dt
import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import structlog
from prometheus_client import Counter

from services.readmodels.alerts import AlertStore
from services.runtime.clock import Clock
from services.runtime.db import UNAVAILABLE_ERRORS
from services.runtime.retry import delay_s

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Smartcity-Signature"
DELIVERY_HEADER = "X-Smartcity-Delivery"
EVENT_HEADER = "X-Smartcity-Event"
TOPIC_TARGET = "topic:"

DELIVERIES = Counter(
    "alerts_deliveries_total", "Notification attempts by target kind and outcome", ["target", "outcome"]
)

TopicSend = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alert_document(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The public shape of an alert in notifications."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "rule": row["rule_id"],
        "unit": row["unit_code"],
        "sector": row["sector"],
        "kpi": row["kpi"],
        "family": row["family"],
        "state": row["state"],
        "opened_at": _iso(row["opened_at"]),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "closed_at": _iso(row["closed_at"]),
        "details": row["details"],
    }


def payload(row: asyncpg.Record, event: str, delivery: str) -> str:
    """The body of one notification (stored in the outbox, so retries send the same bytes)."""
    return orjson.dumps(
        {"delivery_id": delivery, "event": f"alert.{event}", "alert": alert_document(row)},
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """What a receiver does: constant-time comparison with the expected signature."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Delay before the next attempt after ``attempts`` failed ones (≥ 1), with ±10 % jitter."""
    return delay_s(attempts, base_s, max_s) * random.uniform(0.9, 1.1)


class Deliverer:
    """Sends due outbox rows; woken after each transition, and every ``poll_s`` anyway."""

    def __init__(
        self,
        store: AlertStore,
        clock: Clock,
        send_topic: TopicSend,
        *,
        secret: str | None,
        timeout_s: float,
        backoff_s: float,
        backoff_max_s: float,
        poll_s: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.send_topic = send_topic
        self.secret = secret
        self.backoff = (backoff_s, backoff_max_s)
        self.poll_s = poll_s
        self.lease_s = timeout_s + 5  # an attempt outlives its lease only if the worker died
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.deliver_due()
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("outbox not reachable", error=str(exc))
                sent = 0
            if sent:
                continue  # more may be due
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass

    async def deliver_due(self, limit: int = 50) -> int:
        """Deliver what is due: targets in parallel, each target's rows one at a time in
        order (so "closed" never overtakes "opened", and a crash leaves at most one POST
        per target whose answer was not recorded)."""
        rows = await self.store.claim_due(limit, self.lease_s)
        by_target: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_target.setdefault(row["webhook"], []).append(row)
        await asyncio.gather(*(self._deliver_in_order(queue) for queue in by_target.values()))
        return len(rows)

    async def _deliver_in_order(self, queue: list[asyncpg.Record]) -> None:
        for index, row in enumerate(queue):
            retry_in = await self._deliver(row)
            if retry_in is not None:  # keep the order: the rest waits for this one
                await self.store.release([r["id"] for r in queue[index + 1 :]], retry_in)
                return

    async def _deliver(self, row: asyncpg.Record) -> float | None:
        """Deliver one row; None when delivered, else the delay before it is tried again."""
        target: str = row["webhook"]
        kind = "topic" if target.startswith(TOPIC_TARGET) else "webhook"
        try:
            if kind == "topic":
                document = orjson.loads(row["payload"])
                await self.send_topic(
                    target[len(TOPIC_TARGET) :], document["alert"]["unit"].encode(), row["payload"].encode()
                )
            else:
                await self._post(target, row)
        except Exception as exc:  # any failure of the target: retry later, never drop
            delay = backoff_s(row["attempts"] + 1, *self.backoff)
            DELIVERIES.labels(kind, "failed").inc()
            log.warning(
                "notification failed; will retry",
                target=target,
                delivery=row["delivery_id"],
                attempt=row["attempts"] + 1,
                retry_in_s=round(delay, 2),
                error=str(exc) or type(exc).__name__,
            )
            await self.store.failed(row, str(exc) or type(exc).__name__, delay)
            return delay
        DELIVERIES.labels(kind, "delivered").inc()
        await self.store.delivered(row, self.clock.now())
        log.info("notification delivered", target=target, delivery=row["delivery_id"], attempt=row["attempts"] + 1)
        return None

    async def _post(self, url: str, row: asyncpg.Record) -> None:
        body = row["payload"].encode()
        event = orjson.loads(body)["event"]
        headers = {"content-type": "application/json", DELIVERY_HEADER: row["delivery_id"], EVENT_HEADER: event}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        answer = await self.client.post(url, content=body, headers=headers)
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"HTTP {answer.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
