"""The one bounded queue every source feeds, and the counting each record gets on the way in.

Bounded so a flood turns into backpressure (MQTT stops reading, HTTP answers 503, or holds a
request larger than the whole queue until it is in) instead of memory. A record is counted once
as received, then either accepted (queued) or rejected (by the field at fault, and
dead-lettered), so received = accepted + rejected per source.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from watchtower.clock import Clock
from watchtower.deadletter import DeadLetter
from watchtower.mention import Mention
from watchtower.metrics import Metrics
from watchtower.sources.records import Decoded, refuse_future


@dataclass(slots=True)
class Arrival:
    mention: Mention
    arrived: float  # perf_counter at receipt: the processing-latency histogram starts here
    source: str


class Inbox:
    def __init__(
        self, size: int, metrics: Metrics, dead_letter: DeadLetter, clock: Clock, max_future: float
    ) -> None:
        self.queue: asyncio.Queue[Arrival] = asyncio.Queue(size)
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.accepting = True  # cleared at shutdown: HTTP ingest answers 503 from then on
        self.clock = clock
        self.max_future = max_future  # input.max_future; a reload may change it
        # the labelled counters by source: labels() costs more than inc(), on every MQTT message
        self._received: dict[str, Counter] = {}
        self._accepted: dict[str, Counter] = {}

    def screen(self, decoded: Decoded) -> None:
        """Refuse mentions from the future (a source's bad clock), before anything is queued."""
        refuse_future(decoded, self.clock.now() + self.max_future)

    def room(self) -> int:
        return self.queue.maxsize - self.queue.qsize()

    def count(self, source: str, where: str, decoded: Decoded) -> None:
        """Count a body's records as received and dead-letter its rejections."""
        self.received(source, decoded.total)
        self.reject(source, where, decoded)

    def received(self, source: str, records: int) -> None:
        """Count ``records`` as received (each also counted accepted or rejected)."""
        _labelled(self._received, self.metrics.mentions_received, source).inc(records)

    def reject(self, source: str, where: str, decoded: Decoded) -> None:
        """Count a body's rejections by field and dead-letter them."""
        m = self.metrics
        for r in decoded.rejected:
            m.mentions_rejected.labels(source, r.error.field).inc()
            self.dead_letter.reject(source, f"{where} record {r.index}", r.error, r.raw)

    def offer(self, source: str, mentions: Sequence[Mention]) -> bool:
        """Queue all of ``mentions`` or none: a refused request must not be half-taken."""
        if not self.accepting or len(mentions) > self.room():
            return False
        now = time.perf_counter()
        put = self.queue.put_nowait
        for mention in mentions:  # no await in this loop: nothing can take the room meanwhile
            put(Arrival(mention, now, source))
        _labelled(self._accepted, self.metrics.mentions_accepted, source).inc(len(mentions))
        return True

    async def put(self, source: str, mentions: Sequence[Mention]) -> None:
        """Queue ``mentions``, waiting while the queue is full (the caller stops reading)."""
        now = time.perf_counter()
        accepted = _labelled(self._accepted, self.metrics.mentions_accepted, source)
        for mention in mentions:
            await self.queue.put(Arrival(mention, now, source))
            accepted.inc()


def _labelled(cache: dict[str, Counter], family: Counter, source: str) -> Counter:
    child = cache.get(source)
    if child is None:
        child = cache[source] = family.labels(source)
    return child
