"""MQTT: mentions in (QoS 1, persistent session, optional shared subscription), alerts out.

A message is acknowledged only once its mentions are in the inbox. With the queue full we stop
reading, so the broker's in-flight window fills and the broker holds the rest (size its
``max_queued_messages`` for that, see config/mosquitto.conf): backpressure without dropping.
A message read but not yet acknowledged when the connection drops (or at shutdown) is sent again
by the broker on the next session. A graceful stop drains the inbox, so nothing is lost; a
process killed outright loses what its inbox held (up to ``daemon.queue_size`` mentions).

aiomqtt is pinned to 2.x; it hides paho's manual acknowledgement, which is reached here (and only
here) through ``Client._client``, as are four costs of paho's loop this module takes off the
hot path (see ``_GreedyReader``, ``_take_publishes``, ``_ack`` and ``_NoFilterWalk``): one
event loop wakeup per message read, paho's and aiomqtt's objects and calls per message, one
socket write per acknowledgement, a topic filter walk per message.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
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
    _GreedyReader(client._client, client._queue)
    client._client._on_message_filtered = _NoFilterWalk()
    return client


class Received(Protocol):
    """What the reader needs of a message: aiomqtt's Message, or a ``Publish`` read here."""

    @property
    def topic(self) -> object: ...
    @property
    def payload(self) -> object: ...
    @property
    def qos(self) -> int: ...
    @property
    def mid(self) -> int: ...


class Publish(NamedTuple):
    """A PUBLISH read by ``_take_publishes``: what aiomqtt's Message would carry, built once."""

    topic: str
    payload: bytes
    qos: int
    mid: int


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


class _GreedyReader:
    """Read what has arrived in one recv() and parse all of it, per socket wakeup.

    aiomqtt calls ``loop_read`` once per readable event, and paho's parses one packet there,
    reading it with three or four recv() calls (type, length bytes, body): per message a loop
    iteration, a selector poll and four system calls. Here a wakeup reads up to RECV_BYTES at
    once and parses every packet in them: the QoS 0 and 1 PUBLISH packets that are whole in the
    buffer by ``_take_publishes`` straight into aiomqtt's queue, everything else (and anything
    odd) with paho's own packet reader and error handling. The buffer is always empty when
    ``loop_read`` returns (it stops only on "nothing left to read"), so no byte waits where the
    selector cannot see it; what did not fit waits in the socket.
    """

    def __init__(self, paho: paho_client.Client, queue: asyncio.Queue[Any]) -> None:
        self.paho, self.deliver = paho, queue.put_nowait
        self.recv, self.read_packet = paho._sock_recv, paho._packet_read
        self.buffer, self.position, self.refills = b"", 0, 0
        # Publishes are read here only as paho would deliver them to aiomqtt: MQTT 3.1.1 (no
        # properties), and no callbacks of paho's own that would want them.
        self.fast = paho._protocol != paho_client.MQTTv5 and paho.on_message is not None
        paho._sock_recv = self.sock_recv  # type: ignore[method-assign]
        paho.loop_read = self.loop_read  # type: ignore[method-assign]

    def sock_recv(self, bufsize: int) -> bytes:
        """paho's reads, served from the buffer."""
        if self.position == len(self.buffer):
            if not self.refills:
                raise BlockingIOError  # this wakeup's read is done: paho's "try again later"
            self.refills -= 1
            self.buffer, self.position = self.recv(RECV_BYTES), 0  # b"": paho sees a lost link
        chunk = self.buffer[self.position : self.position + bufsize]
        self.position += len(chunk)
        return chunk

    def fill(self) -> bool:
        """Bytes to parse, read now if the buffer is empty and this wakeup has not read yet.
        Nothing is taken when the read fails or finds the link closed: paho's own read then
        meets the same (a closed socket reads b"" every time) and handles it."""
        if self.position == len(self.buffer) and self.refills:
            try:
                data = self.recv(RECV_BYTES)
            except OSError:  # BlockingIOError: nothing yet, and real errors: paho's turn
                return False
            if data:
                self.buffer, self.position, self.refills = data, 0, self.refills - 1
        return self.position < len(self.buffer)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        paho = self.paho
        self.refills = 1
        while True:
            if paho._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if self.fast and paho._in_packet["command"] == 0 and self.fill():
                taken = _take_publishes(self.buffer, self.position, self.deliver)
                if taken != self.position:
                    self.position = taken
                    paho._last_bytes_received = time.monotonic()  # paho's keepalive clock
            rc = self.read_packet()
            if rc > 0:
                return paho._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS


def _take_publishes(buffer: bytes, position: int, deliver: Any) -> int:
    """Deliver the whole QoS 0/1 PUBLISH packets of MQTT 3.1.1 from ``position`` on, as
    ``Publish`` tuples; return where the first other packet (or a part of one) begins.

    paho builds an MQTTMessage per message, logs it, walks its callbacks, and aiomqtt then
    builds a Message of it: about a fifth of the daemon's CPU per mention at full speed. Here
    a publish is sliced out of the buffer and built once. Whatever is not plainly a whole,
    well-formed publish of that kind (QoS 2, a broken length, a topic not UTF-8) stops this
    and is left to paho, which handles or refuses it as it always does.
    """
    end = len(buffer)
    while position + 2 <= end:
        header = buffer[position]
        if header & 0xF4 != PacketTypes.PUBLISH << 4:  # not a PUBLISH of QoS 0 or 1
            break
        qos = (header >> 1) & 0x03
        length, shift, at = 0, 0, position + 1
        while at < end and shift <= 21:  # the remaining length: 1 to 4 bytes, 7 bits each
            byte = buffer[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        else:
            break  # cut off in the buffer, or longer than MQTT allows: paho's turn
        stop = at + length
        if stop > end or length < 2:
            break  # not all here yet, or too short to hold a topic
        topic_end = at + 2 + (buffer[at] << 8 | buffer[at + 1])
        payload_at = topic_end + 2 * qos
        if topic_end == at + 2 or payload_at > stop:
            break  # malformed (an empty topic, or one longer than the packet)
        try:
            topic = buffer[at + 2 : topic_end].decode()
        except UnicodeDecodeError:
            break
        mid = buffer[topic_end] << 8 | buffer[topic_end + 1] if qos else 0
        deliver(Publish(topic, buffer[payload_at:stop], qos, mid))
        position = stop
    return position


def _ack(paho: paho_client.Client, messages: Sequence[Received]) -> None:
    """Acknowledge ``messages``, in order: their QoS 1 PUBACKs leave in one socket write.

    ``paho.ack`` queues each PUBACK as a packet of its own, written with a send() each; a
    PUBACK is four fixed bytes, so the run of them is one packet instead. And while nothing
    else waits to be written, it is sent at once: paho's queue would register the socket for
    writing, wait a loop iteration for it, send, and unregister (four system calls and a
    wakeup more, per read at 5k messages/s). What is not sent at once is queued after all.
    """
    pubacks = bytearray()
    for message in messages:
        if message.qos == 1:
            pubacks += _PUBACK.pack(paho_client.PUBACK, 2, message.mid)
        elif message.qos == 2:  # not subscribed at QoS 2, yet never left unacknowledged
            paho.ack(message.mid, message.qos)
    if not pubacks:
        return
    sent = 0
    if not paho._out_packet and paho._sock is not None:  # nothing queued to keep order with
        try:
            sent = paho._sock_send(pubacks)
        except OSError:  # would block, or the link broke: paho's writer meets it queued
            sent = 0
        else:
            paho._last_msg_out = time.monotonic()  # paho's keepalive clock
    if sent < len(pubacks):
        paho._packet_queue(paho_client.PUBACK, bytes(pubacks[sent:]), 0, 0)


async def _disconnection(client: aiomqtt.Client) -> None:
    """Raise MqttError once the client's link is gone, as aiomqtt's message iterator does."""
    try:
        # shielded: cancelling this watcher must not cancel aiomqtt's own future
        await asyncio.shield(client._disconnected)
    except aiomqtt.MqttError:
        raise
    except Exception as exc:
        raise aiomqtt.MqttError("disconnected") from exc
    raise aiomqtt.MqttError("disconnected")


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
                # "lost" only if it had been connected: a broker never reached is another story
                log.warning(
                    "mqtt connection lost, reconnecting"
                    if self.connected
                    else "mqtt connection failed, retrying",
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
                group.create_task(_disconnection(client), name="mqtt-watch")
                if self.config.alerts_topic is not None:
                    group.create_task(self._publish(client), name="mqtt-publish")
        except* aiomqtt.MqttError as lost:
            raise lost.exceptions[0] from None  # one reconnect, whichever task noticed first

    async def _read(self, client: aiomqtt.Client) -> None:
        """Take what has arrived into the inbox, then acknowledge it, in order, in one write.

        aiomqtt's message iterator costs a task and a wait per message; its queue is read
        directly instead (``_disconnection`` watches the link, as the iterator would). A
        message is acknowledged only once its mentions are in the inbox; when the inbox is
        full, what was taken so far is acknowledged before waiting for room, so a stop while
        we wait leaves no taken message unacknowledged.
        """
        paho, waiting = client._client, client._queue
        inbox = self.inbox
        while True:
            messages: list[Received] = [await waiting.get()]
            while len(messages) < READ_CHUNK and not waiting.empty():
                messages.append(waiting.get_nowait())
            bodies = [self._decode(message) for message in messages]
            # The usual case, room for the whole read: queued and counted at once, not per
            # message (each count is a lock and a label lookup in prometheus-client).
            if inbox.offer(SOURCE, [m for decoded in bodies for m in decoded.mentions]):
                inbox.received(SOURCE, sum(decoded.total for decoded in bodies))
                for message, decoded in zip(messages, bodies, strict=True):
                    if decoded.rejected:
                        inbox.reject(SOURCE, str(message.topic), decoded)
                _ack(paho, messages)
                continue
            taken = 0
            for i, (message, decoded) in enumerate(zip(messages, bodies, strict=True)):
                if not inbox.offer(SOURCE, decoded.mentions):
                    _ack(paho, messages[taken:i])
                    taken = i
                    await inbox.put(SOURCE, decoded.mentions)  # backpressure
                inbox.count(SOURCE, str(message.topic), decoded)
            _ack(paho, messages[taken:])

    def _decode(self, message: Received) -> Decoded:
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
