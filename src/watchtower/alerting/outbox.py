"""Delivery: the outbox between alert transitions and the people who must hear of them.

Like Alertmanager's notify pipeline: record -> (dedup) -> send with retries -> mark done.

- ``submit`` records each transition once per matching route *before* anything is sent; an
  entry whose (transition key, route) was seen before is ignored, so a transition submitted
  again after a restart, or by a second worker, is not queued twice.
- ``run`` claims due entries (a lease: no other worker gets them meanwhile), sends each to its
  route's URLs and marks it done, or reschedules it with jittered, capped exponential backoff
  for the URLs that failed; after ``max_attempts`` (or at once, for a failure a retry cannot
  fix) those URLs are given up.
- A route's URLs are alternatives for reaching people (a pager route to PagerDuty and
  Opsgenie): an entry is sent (``notifications_sent``) once any URL took it. It is dead-lettered
  (``notifications_failed{final="true"}``, logged as an error) only when none ever did. A URL
  that failed is counted by its position, ``notification_url_failures{url="urls[1]"}``, and
  logged as ``urls[1]`` with its redacted form, whatever its neighbours did.
- Acks and silences are checked when an entry is about to go out (silence.py says what they hold
  back), so they also stop what is already queued; each entry held back is counted in
  ``notifications_suppressed{reason="silenced"|"acked"}``.

Delivery is at least once per (transition, route) only in one case: a worker that dies in the
middle of an HTTP call leaves its lease to expire, and the entry is sent again. Everything else
(restarts, retries, several workers) sends each pair once; a route's URLs that took a message,
and those that refused it for good (a 401, a 404), are recorded, so a retry goes only to the
ones whose failure may pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import render
from watchtower.alerting.notify import SEND_TIMEOUT, SendResult, print_console, send
from watchtower.alerting.outbox_store import (
    Entry,
    Lease,
    MemoryOutboxStore,
    OutboxStore,
)
from watchtower.alerting.routes import match_routes
from watchtower.alerting.silence import Suppression, suppressed
from watchtower.backoff import retry_delay
from watchtower.clock import Clock
from watchtower.config import Config, level_rank
from watchtower.errors import is_outage
from watchtower.metrics import Metrics

log = logging.getLogger(__name__)

LEASE = 4 * SEND_TIMEOUT  # a claimed entry is another worker's again after this (seconds)
BATCH = 32  # entries claimed and sent concurrently per round
POLL = 5.0  # idle re-check (seconds): entries other workers recorded, leases that ended
RECENT = 500  # transitions kept for GET /v1/alerts
ERROR_PAUSE = 5.0  # after the store itself failed (seconds)


class Delivery:
    def __init__(
        self,
        config: Config,
        store: OutboxStore,
        metrics: Metrics,
        clock: Clock,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()  # one batch in flight: run's, flush's or drain's
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.reload(config)

    def reload(self, config: Config) -> None:
        """New routes and retry settings; queued entries stay and go to the new routes."""
        self._config = config
        self._routes = {route.name: route for route in config.notify.routes}
        self._rank = level_rank(config.levels)
        self._wake.set()

    async def submit(self, transitions: Sequence[AlertTransition]) -> None:
        """Record every transition for each of its routes (one store call) and wake the sender."""
        notify = self._config.notify
        top_level = self._config.levels[-1].name
        now = self._clock.now()
        entries: list[Entry] = []
        episodes: dict[str, str | None] = {}
        matched = [(t, match_routes(notify, t)) for t in transitions]
        for t, routes in matched:
            episodes[t.episode_id] = None if t.state == "resolved" else t.level
            message = render(t, top_level)
            entries += [Entry.of(t, route.name, message, now) for route in routes]
        await self._store.note_episodes(episodes)
        added = await self._store.record(entries, now)
        for t, routes in matched:  # once recorded: a submit retried after a failure shows once
            if notify.console:
                print_console(t)
            self._recent.appendleft({**t.to_dict(), "routes": [r.name for r in routes]})
        if added < len(entries):
            log.info(
                "outbox: %d of %d entries were already recorded", len(entries) - added, len(entries)
            )
        await self._update_pending()
        self._wake.set()

    async def run(self) -> None:
        """Send due entries until cancelled; a failing store pauses the loop, never ends it."""
        while True:
            _raise_if_cancelled()
            self._wake.clear()
            try:
                if await self._send_due():
                    continue  # more may be due
                delay = await self._delay()
            except Exception as exc:  # the stage boundary: the store failed; try again later
                if is_outage(exc):  # the store is down: a line each time, not a traceback
                    log.warning(
                        "outbox: store unreachable; retrying in %.0f s: %r", ERROR_PAUSE, exc
                    )
                else:
                    log.exception("outbox: sending loop failed; retrying in %.0f s", ERROR_PAUSE)
                delay = ERROR_PAUSE
            await self._idle(delay)

    async def flush(self, timeout: float) -> int:  # noqa: ASYNC109 - as asyncio.timeout's
        """Send what is due now within ``timeout`` seconds (entries waiting for a retry wait on);
        return how many remain pending."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._send_all_due()
        return sum((await self._store.pending()).values())

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - the daemon's API
        """On shutdown: deliver until nothing is pending or ``timeout`` seconds are spent,
        waiting for the retries whose backoff ends before then; log and return what is left.

        ``run`` may go on meanwhile: the two never send at once, so each look at the store sees
        none of this process's sends in flight. A store error propagates: the caller's shutdown
        logs it and goes on.
        """
        deadline = self._clock.now() + timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (due := await self._send_all_due()) is not None and due <= deadline:
                    # the clock, not _idle: run clears the wake-up, and a submission is its job
                    await self._clock.sleep(due - self._clock.now())
        left = await self._store.pending()
        if left:
            log.warning(
                "outbox: %d notifications left unsent at shutdown (%s): %s",
                sum(left.values()),
                ", ".join(f"{route} {n}" for route, n in sorted(left.items())),
                "kept in the outbox for the next start" if self._store.durable else "lost",
            )
        return sum(left.values())

    async def ack(self, episode_id: str) -> bool:
        """Quiet an open episode (see silence.py); False if no open episode has this id."""
        acked = await self._store.ack(episode_id, self._clock.now())
        if acked is None:
            return False
        log.info("outbox: episode %s acknowledged at %s", episode_id, acked.level)
        return True

    async def acks(self, episode_ids: Iterable[str]) -> dict[str, str]:
        """The level each of these episodes was acknowledged at, where one was: the outbox
        store's record, which every worker on one Redis shares."""
        return {eid: ack.level for eid, ack in (await self._store.acks(episode_ids)).items()}

    async def silence(self, brand: str, until: float) -> None:
        """A maintenance window: nothing for ``brand`` (``*``: any) goes out before ``until``."""
        await self._store.silence(brand, until)
        log.info("outbox: %s silenced until %.0f", brand, until)

    async def silences(self) -> dict[str, float]:
        return await self._store.silences(self._clock.now())

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The latest transitions this process submitted, newest first, with their routes."""
        return list(islice(self._recent, max(0, limit)))

    # --- sending ----------------------------------------------------------------------------

    async def _send_due(self) -> int:
        """Claim and send one batch of due entries; return how many were claimed."""
        async with self._sending:
            return await self._send_batch()

    async def _send_all_due(self) -> float | None:
        """Send every entry due now; then when the next one is due (None: nothing pending).

        A lease seen then is another worker's: this process has no send in flight.
        """
        async with self._sending:
            while await self._send_batch():
                _raise_if_cancelled()
            return await self._store.next_due()

    async def _send_batch(self) -> int:
        now = self._clock.now()
        leases = await self._store.claim(now, LEASE, BATCH)
        if not leases:
            return 0
        acks = await self._store.acks({lease.entry.episode_id for lease in leases})
        silences = await self._store.silences(now)
        async with asyncio.TaskGroup() as group:
            for lease in leases:
                why = suppressed(
                    lease.entry, acks.get(lease.entry.episode_id), silences, self._rank
                )
                group.create_task(self._deliver(lease, why), name=f"deliver {lease.entry.id}")
        await self._update_pending()
        return len(leases)

    async def _deliver(self, lease: Lease, suppressed_why: Suppression | None) -> None:
        entry = lease.entry
        try:
            route = self._routes.get(entry.route)
            if suppressed_why is not None:
                await self._suppress(lease, suppressed_why)
            elif route is None:
                await self._drop(lease)
            else:
                skip = entry.delivered + entry.refused
                result = await send(route, entry.message, skip=skip)
                await self._settle(lease, result)
        except Exception:  # one entry's stage boundary: its lease ends and it is retried then
            log.exception("outbox: delivering %s to %s failed", entry.key, entry.route)

    async def _drop(self, lease: Lease) -> None:
        """A reload removed the entry's route: nothing is left to send it to."""
        entry = lease.entry
        await self._store.finish(lease, self._clock.now())
        if entry.delivered:  # counted sent already: people heard of it
            log.warning("outbox: route %s is gone (reload): %s not retried", entry.route, entry.key)
            return
        log.error("outbox: route %s is gone (reload): dropped %s", entry.route, entry.key)
        self._metrics.notifications_failed.labels(entry.route, "true").inc()

    async def _suppress(self, lease: Lease, why: Suppression) -> None:
        entry = lease.entry
        log.info("outbox: %s to %s suppressed: %s", entry.key, entry.route, why)
        # counted only by the worker whose finish took: a lost lease is suppressed (and
        # counted) once more by whoever claims the entry next
        if await self._store.finish(lease, self._clock.now()):
            self._metrics.notifications_suppressed.labels(entry.route, why.reason).inc()

    async def _settle(self, lease: Lease, result: SendResult) -> None:
        """Count what this attempt did, then finish the entry or schedule its retry.

        A notification counts as sent when the first of its route's URLs takes it: people heard
        of it. A URL that keeps failing beside it is retried, counted and logged by its position
        (``urls[1]``), and given up after ``max_attempts`` without calling the notification
        lost; only one that no URL ever took is dead-lettered. A URL that refused it for good
        is given up at once, even while its neighbours are retried.
        """
        entry, now, notify = lease.entry, self._clock.now(), self._config.notify
        attempts = entry.attempts + 1
        updated = replace(
            entry,
            attempts=attempts,
            delivered=entry.delivered + result.delivered,
            refused=entry.refused + result.refused,
            last_error=result.describe(),
        )
        reached = bool(updated.delivered)
        retry = not result.ok and result.retryable and attempts < notify.max_attempts
        self._count(entry, result, reached=reached, final=not retry)
        if result.ok:
            if await self._store.finish(lease, now):
                log.info("outbox: sent %s to %s", entry.key, entry.route)
            else:  # the send outlived the lease: another worker may have sent it too
                log.warning("outbox: sent %s to %s after its lease ended", entry.key, entry.route)
            return
        if retry:
            delay = retry_delay(attempts, notify.retry_initial, notify.retry_max, self._rng)
            await self._store.retry(lease, updated, now + delay)
            _log_failure(updated, retry_in=delay)
        else:
            await self._store.finish(lease, now)
            _log_failure(updated, retry_in=None)

    def _count(self, entry: Entry, result: SendResult, *, reached: bool, final: bool) -> None:
        m, route = self._metrics, entry.route
        if reached and not entry.delivered:  # the first URL took it just now
            m.notifications_sent.labels(route).inc()
        if not reached:
            m.notifications_failed.labels(route, str(final).lower()).inc()
        for url in result.failed:  # a URL that refused it is given up now, whatever the rest do
            given_up = final or not url.retryable
            m.notification_url_failures.labels(route, url.target, str(given_up).lower()).inc()

    # --- waiting ----------------------------------------------------------------------------

    async def _delay(self) -> float:
        """How long to idle: until the next entry is due, at most POLL."""
        due = await self._store.next_due()
        if due is None:
            return POLL
        return min(POLL, max(0.0, due - self._clock.now()))

    async def _idle(self, delay: float) -> None:
        """Sleep ``delay`` on the clock, or less if ``submit``/``reload`` wakes us."""
        _raise_if_cancelled()
        if delay <= 0 or self._wake.is_set():
            return
        wake = asyncio.ensure_future(self._wake.wait())
        nap = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait({wake, nap}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (wake, nap):
                task.cancel()
            await asyncio.gather(wake, nap, return_exceptions=True)

    async def _update_pending(self) -> None:
        counts = await self._store.pending()
        gauge = self._metrics.notifications_pending
        for route in set(counts) | set(self._routes):
            gauge.labels(route).set(counts.get(route, 0))


def _log_failure(entry: Entry, retry_in: float | None) -> None:
    """One line for a failed attempt (``entry`` as it updated it; ``retry_in`` None: final)."""
    where, attempts, error = f"{entry.key} to {entry.route}", entry.attempts, entry.last_error
    if retry_in is not None:
        how = "reached some URLs, not all" if entry.delivered else "failed"
        log.warning(
            "outbox: %s %s (attempt %d, retry in %.1f s): %s", where, how, attempts, retry_in, error
        )
    elif entry.delivered:  # people heard; the URLs that failed this last time are given up
        log.warning(
            "outbox: %s delivered, but not to every URL after %d attempts: %s",
            where,
            attempts,
            error,
        )
    else:
        log.error("outbox: dead-lettered %s after %d attempts: %s", where, attempts, error)


def _raise_if_cancelled() -> None:
    """Honour a cancellation that a library swallowed.

    redis-py can eat a CancelledError that lands mid-command (redis/redis-py#2028, still seen
    with 8.1): the task stays "cancelling" and would idle forever instead of stopping.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def build_outbox_store(config: Config) -> OutboxStore:
    """The outbox next to the thread state: in memory, or shared in Redis by every worker."""
    if config.state.backend == "redis" and config.state.redis_url is not None:
        from watchtower.alerting.outbox_redis import RedisOutboxStore  # noqa: PLC0415
        from watchtower.state.redis_store import connect  # noqa: PLC0415 - optional backend

        return RedisOutboxStore(connect(config.state.redis_url), owned=True)
    return MemoryOutboxStore()
