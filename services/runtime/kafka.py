"""Durable publishing to Kafka from asyncio, on confluent-kafka (librdkafka).

:class:`DurableProducer` sends with the idempotent producer (``acks=all``) and resolves a
batch only when the broker has acknowledged - or definitively failed - every message in it.
librdkafka calls delivery callbacks from a poll thread; a batch keeps one counter and wakes
the event loop once, not once per message, which keeps publishing at ~100k+ messages/s.
"""

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.runtime.settings import KafkaSettings

log = structlog.get_logger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)  # one per event on the hot path: not frozen (5× cheaper to build)
class OutgoingMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


# Delivery errors that mean the broker no longer accepts this producer id or epoch. librdkafka
# reports them per message and keeps the id, so every later message fails the same way (seen
# on the embedded broker restarted empty: PRODUCER_FENCED for every event until a restart).
IDENTITY_ERRORS = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError._FENCED,
    }
)


def needs_new_producer(errors: Sequence[KafkaError | None]) -> str | None:
    """Why the producer must be replaced after a batch with these delivery errors, if so."""
    for err in errors:
        if err is None:
            continue
        if err.fatal():
            return "fatal idempotence error"
        if err.code() in IDENTITY_ERRORS:
            return f"producer id refused ({err.name()})"
    if any(err is not None and err.code() == KafkaError._MSG_TIMED_OUT for err in errors):
        # A broker that restarted empty (the embedded broker) no longer knows our producer
        # id and rejects every epoch librdkafka bumps locally; a new producer asks for a
        # new id. Against Apache Kafka this only costs a reconnect.
        return "deliveries timed out"
    return None


class BrokerUnavailable(RuntimeError):
    """The broker could not take a message; nothing about it may be reported as accepted."""

    retriable = True


class _Batch:
    """Delivery results of one publish call, filled in by librdkafka's poll thread."""

    __slots__ = ("done", "errors", "lock", "loop", "remaining")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.remaining = size
        self.errors: list[KafkaError | None] = [None] * size
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        # the poll thread settles messages; the event loop settles those it never produced
        self.lock = threading.Lock()

    def callback(self, index: int) -> "_DeliveryCallback":
        return _DeliveryCallback(self, index)

    def settle(self, count: int = 1) -> None:
        with self.lock:
            self.remaining -= count
            last = self.remaining == 0
        if last:
            self.loop.call_soon_threadsafe(_resolve, self.done)

    def fail_from(self, start: int, error: KafkaError) -> None:
        """Report messages ``start..`` failed without producing them."""
        for index in range(start, len(self.errors)):
            self.errors[index] = error
        self.settle(len(self.errors) - start)


class _DeliveryCallback:
    __slots__ = ("batch", "index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.batch.errors[self.index] = err
        self.batch.settle()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class DurableProducer:
    """Idempotent, acks=all producer with an awaitable batch publish.

    ``delivery_timeout_ms`` bounds how long a publish may wait for the broker before the
    messages are reported failed (the HTTP layer then answers 503).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        delivery_timeout_ms: int = 10_000,
        linger_ms: int = 5,
        client_id: str = "smartcity",
    ) -> None:
        self._conf: dict[str, str | int | bool] = {
            **settings.librdkafka(),
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": delivery_timeout_ms,
            "socket.connection.setup.timeout.ms": min(delivery_timeout_ms, 10_000),
            "reconnect.backoff.max.ms": 1000,
        }
        self._producer = Producer(self._conf)
        self._recreated_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                producer = self._producer
            try:
                producer.poll(0.05)
            except KafkaException as exc:
                # librdkafka raises its fatal errors (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER after a
                # broker lost its log) from poll: the producer is unusable, replace it now.
                # Its undelivered messages are purged and reported failed (clients get 503).
                log.warning("kafka producer failed", error=str(exc))
                if exc.args[0].fatal():
                    threading.Thread(target=self._recreate, args=("fatal error",), daemon=True).start()
            except Exception:  # a dead poll thread would leave every later publish hanging
                log.exception("kafka poll failed")

    def _recreate(self, reason: str) -> None:
        """Replace the producer with a fresh one (new producer id). Messages still queued in
        the old one are purged and reported failed: none was acknowledged, though one in
        flight may still have been written (a client retry then duplicates it in Kafka,
        which the aggregator counts once)."""
        with self._lock:
            if time.monotonic() - self._recreated_at < 2.0:
                return  # another request just did it
            old = self._producer
            self._producer = Producer(self._conf)
            self._recreated_at = time.monotonic()
        old.purge()
        old.flush(5)  # serve every purge report, including those of in-flight messages
        log.warning("kafka producer recreated", reason=reason)

    async def publish(self, messages: Sequence[OutgoingMessage]) -> list[KafkaError | None]:
        """Send every message; return one delivery error (or None) per message, in order.

        Never raises for broker trouble: a message the broker did not acknowledge within
        the delivery timeout comes back with its error. Raises BrokerUnavailable only when
        librdkafka's local queue cannot take the messages at all.
        """
        if not messages:
            return []
        loop = asyncio.get_running_loop()
        batch = _Batch(len(messages), loop)
        producer = self._producer
        fatal: KafkaError | None = None
        for index, message in enumerate(messages):
            while True:
                try:
                    producer.produce(
                        message.topic,
                        value=message.value,
                        key=message.key,
                        headers=message.headers,
                        on_delivery=batch.callback(index),
                    )
                    break
                except BufferError:
                    # Local queue full: let the poll thread drain it, then retry.
                    await asyncio.sleep(0.005)
                except KafkaException as exc:
                    error: KafkaError = exc.args[0]
                    if not error.fatal() and error.code() != KafkaError._FATAL:
                        raise BrokerUnavailable(str(exc)) from exc
                    fatal = error
                    break
            if fatal is not None:
                # The producer is in a fatal state (its producer id fenced by a broker that
                # restarted empty): fail the rest of this batch - the client retries on 503 -
                # and give the next request a fresh producer.
                batch.fail_from(index, fatal)
                await asyncio.to_thread(self._recreate, "fatal error on produce")
                break
        await batch.done
        reason = needs_new_producer(batch.errors)
        if reason is not None:
            await asyncio.to_thread(self._recreate, reason)
        return batch.errors

    def topics(self, timeout_s: float = 1.0) -> set[str]:
        """Topic names in the cluster metadata; raises KafkaException when unreachable.

        Blocking: call from a thread (``asyncio.to_thread``).
        """
        metadata = self._producer.list_topics(timeout=timeout_s)
        if not metadata.brokers:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no broker in metadata"))
        return set(metadata.topics)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush what is queued (bounded by ``timeout_s``) and stop the poll thread."""
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join(timeout=2)
