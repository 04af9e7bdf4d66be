"""MQTT: mentions in (QoS 1, persistent session, optional shared subscription), alerts out.

A message is acknowledged only once its mentions are in the inbox. With the queue full we stop
reading, so the broker's in-flight window fills and the broker holds the rest (size its
``max_queued_messages`` for that, see config/mosquitto.conf): backpressure without dropping.
A message read but not yet acknowledged when the connection drops (or at shutdown) is sent again
by the broker on the next session. A graceful stop drains the inbox, so nothing is lost; a
process killed outright loses what its inbox held (up to ``daemon.queue_size`` mentions).

aiomqtt is pinned to 2.x; it hides paho's manual acknowledgement, which is reached here (and only
here) through ``Client._client``, as are three costs of paho's loop this module takes off the
hot path (see ``_read_greedily``, ``_ack`` and ``_NoFilterWalk``): one event loop wakeup per
message read, one socket write per acknowledgement, a topic filter walk per message.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.reasoncodes import ReasonCode

from watchtower.backoff import backoff_delay
from watchtower.config import MqttConfig
from watchtower.logs import kv
from watchtower.sources.inbox import Inbox
from watchtower.sources.records import Decoded, decode_body

SOURCE = "mqtt"
QOS = 1
READ_CHUNK = 256  # messages taken (then acknowledged) together at most
RECV_BYTES = 65_536  # read from the broker's socket per wakeup at most (~150 mentions)
_PUBACK = struct.Struct("!BBH")  # MQTT PUBACK: type 0x40, remaining length 2, message id
OUTGOING_LIMIT = 10_000  # alert payloads waiting for a connection; older ones are dropped first

log = logging.getLogger(__name__)


def subscriptions(config: MqttConfig) -> list[str]:
    """The topic filters, under ``$share/<group>/`` when workers split one stream."""
    if config.shared_group is None:
        return list(config.topics)
    return [f"$share/{config.shared_group}/{topic}" for topic in config.topics]


def make_client(config: MqttConfig) -> aiomqtt.Client:
    """A client with a stable id and a kept session: the broker holds our QoS 1 messages."""
    tls = None
    if config.tls:
        tls = aiomqtt.TLSParameters(ca_certs=config.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client = aiomqtt.Client(
        config.host,
        config.port,
        identifier=config.client_id,
        clean_session=False,
        username=config.username,
        password=None if config.password is None else str(config.password),
        tls_params=tls,
        keepalive=config.keepalive,
        logger=logging.getLogger("watchtower.mqtt.client"),
    )
    client._client.manual_ack_set(True)  # ack after the inbox took the mentions, not on receipt
    _read_greedily(client._client)
    client._client._on_message_filtered = _NoFilterWalk()
    return client


class _NoFilterWalk(MQTTMatcher):
    """paho's per-filter callbacks, which aiomqtt never registers: while there are none, a
    message does not walk its topic through the filter tree (~5% of our CPU per message)."""

    def __init__(self) -> None:
        # paho's matcher has no annotations
        super().__init__()  # type: ignore[no-untyped-call]

    def iter_match(self, topic: str) -> Iterator[Any]:
        if not self._root._children:
            return iter(())
        return super().iter_match(topic)  # type: ignore[no-untyped-call,no-any-return]


def _read_greedily(paho: paho_client.Client) -> None:
    """Read what has arrived in one recv() and parse all of it, per socket wakeup.

    aiomqtt calls ``loop_read`` once per readable event, and paho's parses one packet there,
    reading it with three or four recv() calls (type, length bytes, body): per message a loop
    iteration, a selector poll and four system calls. Here a wakeup reads up to RECV_BYTES at
    once and parses every packet in them with paho's own packet reader and error handling. The
    buffer is always empty when ``loop_read`` returns (it stops only on "nothing left to read"),
    so no byte waits where the selector cannot see it; what did not fit waits in the socket.
    """
    recv, read_packet, handle_error = paho._sock_recv, paho._packet_read, paho._loop_rc_handle
    buffer, position, refills = b"", 0, 0

    def sock_recv(bufsize: int) -> bytes:
        nonlocal buffer, position, refills
        if position == len(buffer):
            if not refills:
                raise BlockingIOError  # this wakeup's read is done: paho's "try again later"
            refills -= 1
            buffer, position = recv(RECV_BYTES), 0  # b"" when closed: paho sees a lost link
        chunk = buffer[position : position + bufsize]
        position += len(chunk)
        return chunk

    def loop_read(max_packets: int = 1) -> MQTTErrorCode:
        nonlocal refills
        refills = 1
        while True:
            if paho._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = read_packet()
            if rc > 0:
                return handle_error(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    paho._sock_recv = sock_recv  # type: ignore[method-assign]
    paho.loop_read = loop_read  # type: ignore[method-assign]


def _ack(paho: paho_client.Client, messages: Sequence[aiomqtt.Message]) -> None:
    """Acknowledge ``messages``, in order: their QoS 1 PUBACKs leave in one socket write.

    ``paho.ack`` queues each PUBACK as a packet of its own, written with a send() each; a
    PUBACK is four fixed bytes, so the run of them is queued as one packet instead.
    """
    pubacks = bytearray()
    for message in messages:
        if message.qos == 1:
            pubacks += _PUBACK.pack(paho_client.PUBACK, 2, message.mid)
        elif message.qos == 2:  # not subscribed at QoS 2, yet never left unacknowledged
            paho.ack(message.mid, message.qos)
    if pubacks:
        paho._packet_queue(paho_client.PUBACK, bytes(pubacks), 0, 0)


def _refused(code: object) -> bool:
    """A SUBACK code of failure (0x80 and up): a ReasonCode, or a plain granted QoS number."""
    if isinstance(code, ReasonCode):
        return bool(code.is_failure)
    return isinstance(code, int) and code >= 0x80


class MqttSource:
    """Reads mentions into the inbox and publishes alert payloads, reconnecting with backoff."""

    def __init__(self, config: MqttConfig, inbox: Inbox, max_text_chars: int) -> None:
        self.config = config
        self.inbox = inbox
        self.max_text_chars = max_text_chars
        self.connected = False
        self.connections = 0  # sessions opened so far (tests and logs)
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(OUTGOING_LIMIT)
        self.dropped_alerts = 0
        self._failures = 0  # consecutive failed sessions: the backoff exponent

    def publish_nowait(self, payload: bytes) -> None:
        """Queue an alert payload for ``mqtt.alerts_topic``; never blocks the engine."""
        if self.config.alerts_topic is None:
            return
        if self._outgoing.full():
            self._outgoing.get_nowait()  # alerts reach people through the outbox; this is a copy
            self.dropped_alerts += 1
        self._outgoing.put_nowait(payload)

    async def run(self) -> None:
        """Connect, read and publish until cancelled; reconnect after any broker error."""
        while True:
            try:
                async with make_client(self.config) as client:
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                delay = backoff_delay(self._failures)
                self._failures += 1
                log.warning(
                    "mqtt connection lost, reconnecting",
                    extra=kv(host=self.config.host, port=self.config.port, error=exc, wait=delay),
                )
                await asyncio.sleep(delay)
            finally:
                self.connected = False

    async def _session(self, client: aiomqtt.Client) -> None:
        filters = subscriptions(self.config)
        granted = await client.subscribe([(f, QOS) for f in filters])
        refused = [f for f, code in zip(filters, granted, strict=False) if _refused(code)]
        if refused:
            raise aiomqtt.MqttError(f"subscription refused by the broker: {refused}")
        self.connected = True
        self.connections += 1
        self._failures = 0  # reset only once subscribed: a broker refusing us still backs off
        log.info(
            "mqtt connected",
            extra=kv(client_id=self.config.client_id, topics=",".join(filters)),
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._read(client), name="mqtt-read")
                if self.config.alerts_topic is not None:
                    group.create_task(self._publish(client), name="mqtt-publish")
        except* aiomqtt.MqttError as lost:
            raise lost.exceptions[0] from None  # one reconnect, whichever task noticed first

    async def _read(self, client: aiomqtt.Client) -> None:
        """Take what has arrived into the inbox, then acknowledge it, in order, in one write.

        The iterator of aiomqtt costs a task per message; the messages already waiting in its
        queue are taken directly. A message is acknowledged only once its mentions are in the
        inbox; when the inbox is full, what was taken so far is acknowledged before waiting for
        room, so a stop while we wait leaves no taken message unacknowledged.
        """
        paho, waiting = client._client, client._queue
        async for first in client.messages:
            messages = [first]
            while len(messages) < READ_CHUNK and not waiting.empty():
                messages.append(waiting.get_nowait())
            taken = 0
            for i, message in enumerate(messages):
                decoded = self._decode(message)
                if not self.inbox.offer(SOURCE, decoded.mentions):
                    _ack(paho, messages[taken:i])
                    taken = i
                    await self.inbox.put(SOURCE, decoded.mentions)  # backpressure
                self.inbox.count(SOURCE, str(message.topic), decoded)
            _ack(paho, messages[taken:])

    def _decode(self, message: aiomqtt.Message) -> Decoded:
        payload = message.payload
        if isinstance(payload, str):
            body = payload.encode()
        elif isinstance(payload, bytes | bytearray):
            body = bytes(payload)
        else:
            body = str(payload).encode()  # numbers and None: rejected below as not a record
        decoded = decode_body(body, "auto", self.max_text_chars)
        self.inbox.screen(decoded)
        return decoded

    async def _publish(self, client: aiomqtt.Client) -> None:
        topic = self.config.alerts_topic
        assert topic is not None  # noqa: S101 - started only with a topic
        while True:
            payload = await self._outgoing.get()
            await client.publish(topic, payload, qos=QOS)
