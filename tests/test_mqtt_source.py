"""The MQTT source on a real Mosquitto: what it reads, in order, and when it acknowledges.

Each test has its own topic and client id on the session's broker (which keeps every message in
flight: ``max_inflight_messages 0``), an inbox of its own and no engine behind it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import orjson
import paho.mqtt.client as paho_client
import pytest

from watchtower.clock import SystemClock
from watchtower.config import MqttConfig
from watchtower.deadletter import DeadLetter
from watchtower.metrics import Metrics
from watchtower.sources.inbox import Inbox
from watchtower.sources.mqtt import RECV_BYTES, MqttSource, Publish, _take_publishes

from servers import MosquittoServer, free_port


def mqtt_config(mosquitto: MosquittoServer, topic: str, client_id: str) -> MqttConfig:
    return MqttConfig(
        enabled=True, host=mosquitto.host, port=mosquitto.port, topics=(topic,), client_id=client_id
    )


def new_inbox(size: int) -> Inbox:
    return Inbox(size, Metrics(), DeadLetter(None), SystemClock(), max_future=3600.0)


@asynccontextmanager
async def reading(source: MqttSource) -> AsyncIterator[None]:
    """The source running until the block ends (then cancelled, as the daemon stops it)."""
    task = asyncio.create_task(source.run(), name="mqtt")
    try:
        await wait_until(lambda: source.connected, "the MQTT session")
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_until(check: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def publish(mosquitto: MosquittoServer, topic: str, payloads: Sequence[bytes]) -> None:
    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=f"pub-{uuid.uuid4()}"
    ) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


def record(mention_id: str, text: str = "hello") -> bytes:
    return orjson.dumps({"id": mention_id, "created_at": time.time(), "text": text})


def queued_ids(inbox: Inbox) -> list[str]:
    out = []
    while not inbox.queue.empty():
        out.append(inbox.queue.get_nowait().mention.id)
    return out


async def test_a_message_is_acknowledged_once_its_mentions_are_in_the_inbox(
    mosquitto: MosquittoServer,
) -> None:
    """A full inbox stops the source; what it took is acked, what waits goes to the next session.

    The messages wait at the broker first, so they arrive (and are read) together.
    """
    topic, client_id = f"t/{uuid.uuid4()}/mentions", f"wt-{uuid.uuid4()}"
    config = mqtt_config(mosquitto, topic, client_id)
    async with reading(MqttSource(config, new_inbox(1), 10_000)):
        pass  # the broker keeps the session's subscription from here on
    ids = [f"m{i}" for i in range(12)]
    await publish(mosquitto, topic, [record(i) for i in ids])
    first = new_inbox(5)
    async with reading(MqttSource(config, first, 10_000)):
        await wait_until(first.queue.full, "a full inbox")
        await asyncio.sleep(0.3)  # room for a wrong ack (or a sixth mention) to happen
    assert queued_ids(first) == ids[:5]
    second = new_inbox(100)
    async with reading(MqttSource(config, second, 10_000)):
        await wait_until(lambda: second.queue.qsize() >= len(ids) - 5, "the rest, sent again")
        await asyncio.sleep(0.3)  # room for a message acked by the first session to come back
    assert queued_ids(second) == ids[5:]


async def test_many_messages_arrive_in_order_once_across_reads(
    mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several socket reads' worth, of mixed sizes, one bigger than a read, and an array; most
    of them read by ``_take_publishes``, the rest (such as one cut by a read) by paho."""
    by_paho = 0
    handle = paho_client.Client._handle_publish

    def counted(client: paho_client.Client) -> Any:
        nonlocal by_paho
        by_paho += 1
        return handle(client)

    monkeypatch.setattr(paho_client.Client, "_handle_publish", counted)
    topic = f"t/{uuid.uuid4()}/mentions"
    payloads, ids = [], []
    for i in range(1500):
        ids.append(f"m{i}")
        payloads.append(record(ids[-1], "x" * (i % 700)))
    ids.append("big")
    payloads.append(record("big", "y" * (3 * RECV_BYTES)))
    array = [f"a{i}" for i in range(50)]
    ids += array
    now = time.time()
    payloads.append(orjson.dumps([{"id": i, "created_at": now, "text": "hi"} for i in array]))
    inbox = new_inbox(len(ids))
    source = MqttSource(mqtt_config(mosquitto, topic, f"wt-{uuid.uuid4()}"), inbox, 10 * RECV_BYTES)
    async with reading(source):
        await publish(mosquitto, topic, payloads)
        await wait_until(lambda: inbox.queue.qsize() >= len(ids), "every mention")
    assert queued_ids(inbox) == ids
    received = inbox.metrics.registry.get_sample_value(
        "watchtower_mentions_received_total", {"source": "mqtt"}
    )
    assert received == len(ids)
    assert 0 < by_paho < len(payloads) / 10


async def test_a_payload_that_cannot_be_decoded_is_counted_and_reading_goes_on(
    mosquitto: MosquittoServer,
) -> None:
    """Garbage, and JSON nested deeper than the dead letter's encoder goes: each one rejected
    record, counted; the mentions around them still arrive."""
    topic = f"t/{uuid.uuid4()}/mentions"
    deep = b"[" * 300 + b"]" * 300
    payloads = [record("before"), b"\x00\xff garbage", deep, record("after")]
    inbox = new_inbox(10)
    source = MqttSource(mqtt_config(mosquitto, topic, f"wt-{uuid.uuid4()}"), inbox, 10_000)
    async with reading(source):
        await publish(mosquitto, topic, payloads)
        await wait_until(lambda: inbox.queue.qsize() >= 2, "the mentions around the bad ones")
    assert queued_ids(inbox) == ["before", "after"]
    registry = inbox.metrics.registry
    rejected = registry.get_sample_value(
        "watchtower_mentions_rejected_total", {"source": "mqtt", "reason": "(record)"}
    )
    assert rejected == 2
    # received = accepted + rejected, however the read grouped the messages
    for name, count in (("received", 4), ("accepted", 2)):
        sample = f"watchtower_mentions_{name}_total"
        assert registry.get_sample_value(sample, {"source": "mqtt"}) == count


def publish_packet(topic: bytes, payload: bytes, qos: int, mid: int = 0, flags: int = 0) -> bytes:
    """A PUBLISH of MQTT 3.1.1 as the broker writes it (``flags``: dup 0x08, retain 0x01)."""
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    body += payload
    length, size = b"", len(body)
    while True:
        size, digit = divmod(size, 128)
        length += bytes([digit | (0x80 if size else 0)])
        if not size:
            break
    return bytes([0x30 | qos << 1 | flags]) + length + body


def test_whole_publishes_are_read_here_and_the_rest_left_to_paho() -> None:
    big = b"x" * 20_000  # a three-byte remaining length
    packets = [
        publish_packet(b"a/b", b'{"id": 1}', 1, mid=1),
        publish_packet(b"a/\xc3\xa9", b"", 0, flags=0x01),  # QoS 0, retained, empty payload
        publish_packet(b"a/b", big, 1, mid=65535, flags=0x08),  # a resend (dup)
    ]
    got: list[Publish] = []
    buffer = b"".join(packets)
    assert _take_publishes(buffer, 0, got.append) == len(buffer)
    assert got == [
        Publish("a/b", b'{"id": 1}', 1, 1),
        Publish("a/é", b"", 0, 0),
        Publish("a/b", big, 1, 65535),
    ]
    for rest in (
        publish_packet(b"a/b", b"p", 2, mid=3),  # QoS 2: paho's handshake
        bytes([0x40, 0x02, 0x00, 0x01]),  # a PUBACK
        publish_packet(b"a/b", b"p", 1, mid=4)[:-1],  # not all here yet
        publish_packet(b"a/b", big, 1, mid=4)[:3],  # cut inside its length
        publish_packet(b"", b"p", 1, mid=5),  # an empty topic: malformed in 3.1.1
        publish_packet(b"\xff", b"p", 1, mid=6),  # a topic that is not UTF-8
        bytes([0x32, 0x01, 0x00]),  # too short to hold a topic length
        bytes([0x32, 0x03, 0x00, 0x01, 0x61]),  # no room for the message id
        bytes([0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),  # a length of five bytes
    ):
        got.clear()
        assert _take_publishes(packets[0] + rest, 0, got.append) == len(packets[0])
        assert got == [Publish("a/b", b'{"id": 1}', 1, 1)]


async def test_a_broker_never_reached_is_a_failed_connection_not_a_lost_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = MqttConfig(enabled=True, host="127.0.0.1", port=free_port(), client_id="nobody")
    source = MqttSource(config, new_inbox(10), max_text_chars=100)
    task = asyncio.create_task(source.run())
    try:
        await wait_until(lambda: source._failures >= 1, "a first failed attempt")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    said = [r.getMessage() for r in caplog.records if r.name == "watchtower.sources.mqtt"]
    assert said[0] == "mqtt connection failed, retrying"
    assert "mqtt connection lost, reconnecting" not in said
