"""The delivery bookkeeping of DurableProducer.publish: a batch resolves once every message
is settled - by librdkafka's poll thread or, for messages never produced, by the loop."""

import asyncio
import threading

from confluent_kafka import KafkaError

from services.runtime.kafka import _Batch, needs_new_producer


async def test_resolves_only_when_the_last_message_is_settled_from_the_poll_thread() -> None:
    batch = _Batch(1000, asyncio.get_running_loop())
    callbacks = [batch.callback(i) for i in range(1000)]
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)

    def poll_thread(part: list) -> None:  # two threads settle concurrently: no lost decrement
        for cb in part:
            cb(timed_out if cb.index == 7 else None, None)

    threads = [threading.Thread(target=poll_thread, args=(callbacks[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    await asyncio.wait_for(batch.done, 5)
    assert batch.remaining == 0
    assert [i for i, e in enumerate(batch.errors) if e is not None] == [7]


async def test_messages_never_produced_fail_with_the_fatal_error() -> None:
    batch = _Batch(5, asyncio.get_running_loop())
    batch.callback(0)(None, None)
    batch.callback(1)(None, None)
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    batch.fail_from(2, fatal)
    assert batch.remaining == 0
    await asyncio.wait_for(batch.done, 5)
    assert batch.errors[:2] == [None, None]
    assert all(e is fatal for e in batch.errors[2:])


async def test_a_partly_settled_batch_stays_pending() -> None:
    batch = _Batch(3, asyncio.get_running_loop())
    batch.callback(0)(None, None)
    await asyncio.sleep(0)  # let any scheduled resolution run
    assert not batch.done.done() and batch.remaining == 2


def test_a_refused_producer_id_replaces_the_producer_and_ordinary_failures_do_not() -> None:
    # the embedded broker restarted empty answers PRODUCER_FENCED to every later message
    fenced = KafkaError(KafkaError.PRODUCER_FENCED)
    assert needs_new_producer([None, fenced]) == "producer id refused (PRODUCER_FENCED)"
    assert needs_new_producer([KafkaError(KafkaError.UNKNOWN_PRODUCER_ID)]) is not None
    assert needs_new_producer([KafkaError(KafkaError._FATAL, "x", fatal=True)]) == "fatal idempotence error"
    assert needs_new_producer([KafkaError(KafkaError._MSG_TIMED_OUT)]) == "deliveries timed out"
    assert needs_new_producer([None, None]) is None
    assert needs_new_producer([KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)]) is None
    assert needs_new_producer([KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)]) is None
