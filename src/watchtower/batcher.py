"""The two loops that drive the engine: batches from the inbox, and event time when idle.

A batch is everything already waiting (up to ``daemon.batch_size``); when only one mention was
waiting (the engine is keeping up), also what arrives within ``daemon.batch_wait`` of it, so
that a trickle is decided a few at a time, not one by one. When more were waiting the engine is
behind, and waiting would only put it further behind (at 5k mentions/s, waiting after every
batch made the p50 latency 21-26 ms instead of 6-17; see the README). With ``batch_wait`` 0 it never
waits: batches grow by themselves under load and a mention waits for nothing at low load, at the
cost of a store round trip per mention or two (1.75 x the CPU per mention at 1k/s).

A batch also ends before a mention more than ``batch_span.BATCH_SPAN`` of event time after its
first: a backlog (drained after a store outage, a backfill posted at once) is then decided in
the batches a replay of the same stream cuts, so it gets the same alerts.
"""

from __future__ import annotations

import asyncio
import logging

from watchtower.backoff import backoff_delay
from watchtower.batch_span import spans_too_long
from watchtower.errors import is_outage
from watchtower.heap import settle
from watchtower.logs import kv
from watchtower.runtime import Runtime
from watchtower.sources.inbox import Arrival

log = logging.getLogger(__name__)

POISON_AFTER = 5  # a batch failing this often for a reason that is not an outage is dropped
IDLE_CHECK_MAX = 10.0  # seconds between idle checks at most, whatever alerts.tick says


class Batcher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue = runtime.inbox.queue
        self._held: Arrival | None = None  # taken from the queue, too late for the last batch

    async def run(self) -> None:
        while True:
            batch = await self.collect()
            await self.process(batch)
            settle()  # the collector's work between batches, not inside one
            # With the memory store nothing above suspends while mentions wait: yield once per
            # batch so sources, the API, signals and the watchdog keep running under load.
            await asyncio.sleep(0)

    async def collect(self) -> list[Arrival]:
        """Block for the first mention, then take what waits and what comes within batch_wait."""
        size = self.runtime.config.daemon.batch_size
        first, self._held = self._held, None
        batch = [first if first is not None else await self.queue.get()]
        if not self._drain(batch, size):
            return batch
        wait = self.runtime.config.daemon.batch_wait
        if len(batch) > 1 or wait <= 0:  # mentions were waiting already: no time to wait
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while len(batch) < size:
            try:
                async with asyncio.timeout_at(deadline):
                    coming = await self.queue.get()
            except TimeoutError:
                break
            if not (self._join(batch, coming) and self._drain(batch, size)):
                break
        return batch

    def _drain(self, batch: list[Arrival], size: int) -> bool:
        """Take what waits into ``batch``; False once a mention was held for the next one."""
        queue = self.queue
        while len(batch) < size and not queue.empty():
            if not self._join(batch, queue.get_nowait()):
                return False
        return True

    def _join(self, batch: list[Arrival], coming: Arrival) -> bool:
        if spans_too_long(batch[0].mention, coming.mention):
            self._held = coming
            return False
        batch.append(coming)
        return True

    async def process(self, batch: list[Arrival]) -> None:
        """Decide ``batch``, retrying with backoff; every mention is marked done either way."""
        try:
            attempt = 0
            while True:
                try:
                    await self.runtime.decide(batch)
                except Exception as exc:
                    attempt += 1
                    if not self._should_retry(exc, attempt, len(batch)):
                        self.runtime.set_aside(batch, exc)
                        return
                    await asyncio.sleep(backoff_delay(attempt - 1))
                else:
                    return
        except asyncio.CancelledError:
            # shutdown ran out of time with this batch undecided (the store down, say): kept
            # in the dead letter, not lost with the process, with the mention held for the next
            held, self._held = self._held, None
            self.runtime.set_aside_at_shutdown([*batch, *([held] if held else [])])
            if held is not None:
                self.queue.task_done()
            raise
        finally:
            for _ in batch:
                self.queue.task_done()

    def _should_retry(self, exc: Exception, attempt: int, size: int) -> bool:
        failures = self.runtime.metrics.batch_failures
        outage = is_outage(exc)
        if outage or attempt < POISON_AFTER:
            failures.labels("retried").inc()
            log.warning(
                "batch failed, retrying",
                extra=kv(mentions=size, attempt=attempt, outage=outage, error=repr(exc)),
            )
            return True
        failures.labels("dropped").inc()
        log.error("batch dropped after repeated failures", exc_info=exc, extra=kv(mentions=size))
        return False


async def advance_when_idle(runtime: Runtime) -> None:
    """Move event time on with the clock while no mention arrives, so quiet threads resolve.

    Only when idle for a whole ``alerts.tick``: a stream sent faster than real time (a replay,
    the demo) must not have its event time overtaken by the wall clock mid-stream.
    """
    clock = runtime.clock
    runtime.last_activity = clock.now()
    while True:
        tick = runtime.config.alerts.tick
        await clock.sleep(min(tick, IDLE_CHECK_MAX))
        if clock.now() - runtime.last_activity < tick or runtime.engine.watermark is None:
            continue  # busy, or no mention yet: nothing could resolve
        try:
            transitions = await runtime.advance()
        except Exception as exc:
            log.warning("idle advance failed", extra=kv(error=repr(exc)))
            continue
        runtime.metrics.idle_advances.inc()
        runtime.last_activity = clock.now()  # the next advance is one tick later
        if transitions:
            log.info("idle advance", extra=kv(transitions=len(transitions)))
