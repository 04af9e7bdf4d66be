"""The live object graph of one daemon, and what the HTTP API asks of it.

One lock serialises the engine: batches, idle clock ticks and reload swaps never interleave
(the engine is not re-entrant: it orders transitions by input position and compare-and-sets
thread states). Reload builds everything new first and swaps last, so a failure changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.silence import brand_key, covers
from watchtower.clock import Clock
from watchtower.config import Config, level_rank
from watchtower.engine import Engine
from watchtower.engine_records import SetAside
from watchtower.logs import kv
from watchtower.mention import Mention, format_time
from watchtower.metrics import Metrics
from watchtower.persist import save_sentiment
from watchtower.sources.http import Feedback
from watchtower.sources.inbox import Arrival, Inbox
from watchtower.sources.mqtt import MqttSource
from watchtower.state.store import Store
from watchtower.views import thread_views

log = logging.getLogger(__name__)

_REMEMBERED_TEXTS = 50_000  # recent mention texts, so feedback can name a mention by id
_STORE_CHECK_TIMEOUT = 2.0
_REMEMBERED_UNREADABLE = 10_000  # threads logged as unreadable (a tick re-checks each one)


class Delivery(Protocol):
    """The alert delivery stage as the daemon drives it (alerting.outbox.Delivery)."""

    async def submit(self, transitions: Sequence[AlertTransition]) -> None: ...

    async def run(self) -> None: ...

    async def drain(self, timeout: float) -> int: ...  # noqa: ASYNC109 - its API

    async def ack(self, episode_id: str) -> bool: ...

    async def acks(self, episode_ids: Iterable[str]) -> dict[str, str]: ...

    async def silence(self, brand: str, until: float) -> None: ...

    async def silences(self) -> dict[str, float]: ...

    def reload(self, config: Config) -> None: ...

    def recent(self, limit: int) -> list[dict[str, Any]]: ...


class RecentTexts:
    """The last texts seen by mention id, bounded (feedback by ``mention_id`` looks here)."""

    def __init__(self, size: int = _REMEMBERED_TEXTS) -> None:
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def add(self, mentions: Sequence[Mention]) -> None:
        texts = self._texts
        for m in mentions:
            texts[m.id] = m.text
        while len(texts) > self._size:
            texts.popitem(last=False)

    def get(self, mention_id: str) -> str | None:
        return self._texts.get(mention_id)


@dataclass
class Runtime:
    config: Config
    metrics: Metrics
    inbox: Inbox
    store: Store
    engine: Engine
    delivery: Delivery
    clock: Clock
    mqtt: MqttSource | None = None
    started: bool = False  # set once every task runs: /readyz
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    texts: RecentTexts = field(default_factory=RecentTexts)
    last_activity: float = 0.0  # clock time of the last engine call: idle detection
    last_progress: float = field(default_factory=time.monotonic)  # the watchdog reads it
    unreadable_logged: set[str] = field(default_factory=set)  # threads left out, logged once
    # Decided but not in the outbox: its store failed them (an outage between the threads'
    # save and the outbox's record). Their batch is retried, but its mentions are repeats by
    # then and their thread states saved: deciding it again cannot give these back.
    unsubmitted: list[AlertTransition] = field(default_factory=list)

    async def decide(self, arrivals: Sequence[Arrival]) -> list[AlertTransition]:
        """One batch through the engine into the outbox; the metrics of what happened."""
        mentions = [a.mention for a in arrivals]
        async with self.lock:
            repeats = self.engine.stats.repeats
            transitions = await self.engine.process(mentions)
            self.metrics.mentions_repeated.inc(self.engine.stats.repeats - repeats)
            self._left_out(self.engine.take_set_aside())
            transitions = await self._hand_over(transitions)
        done = time.perf_counter()
        observe = self.metrics.processing_seconds.observe
        for a in arrivals:
            observe(done - a.arrived)
        self.texts.add(mentions)
        self.last_activity = self.clock.now()
        self._published(transitions)
        return transitions

    async def advance(self) -> list[AlertTransition]:
        """Let event time pass with no mention, so quiet threads resolve while the stream sleeps."""
        async with self.lock:
            transitions = await self.engine.advance(self.clock.now())
            self._left_out(self.engine.take_set_aside())
            transitions = await self._hand_over(transitions)
        self._published(transitions)
        return transitions

    async def _hand_over(self, transitions: list[AlertTransition]) -> list[AlertTransition]:
        """Into the outbox, after what an earlier failure left (``unsubmitted``): all that
        went in. Recording is idempotent by key: what a failed call recorded is not twice."""
        waiting = self.unsubmitted + transitions
        if not waiting:  # most batches decide nothing: spare the outbox its round trips
            return waiting
        try:
            await self.delivery.submit(waiting)
        except Exception:
            self.unsubmitted = waiting
            raise
        self.unsubmitted = []
        return waiting

    def set_aside(self, arrivals: Sequence[Arrival], error: Exception) -> None:
        """A batch given up on (it kept failing): its mentions dead-lettered, and counted."""
        reason = f"batch dropped after repeated failures: {error!r}"
        self._keep_aside([(a.mention, reason) for a in arrivals], "(batch)", "batch_dropped")

    def set_aside_at_shutdown(self, arrivals: Sequence[Arrival]) -> None:
        """Mentions still undecided when shutdown's time ran out: dead-lettered, and counted.
        (One cut off inside a batch whose store write did land may be decided twice if it is
        ingested again: at least once, never silently lost.)"""
        if not arrivals:
            return
        reason = "not decided before daemon.shutdown_timeout ran out (was the store reachable?)"
        self._keep_aside([(a.mention, reason) for a in arrivals], "(shutdown)", "shutdown")
        log.error("mentions undecided at shutdown, dead-lettered", extra=kv(mentions=len(arrivals)))

    def _left_out(self, aside: SetAside) -> None:
        """Mentions too late for the stream, and threads the engine left out (their stored
        state is unreadable): counted, each thread logged once, their mentions dead-lettered.
        The others of the batch were decided."""
        if aside.too_late:
            self._keep_aside(aside.too_late, "created_at", "too_late")
            log.warning(
                "mentions too old for the stream set aside",
                extra=kv(mentions=len(aside.too_late), first=aside.too_late[0][1]),
            )
        if not aside.unreadable:
            return
        self.metrics.thread_states_unreadable.inc(len(aside.unreadable))
        if aside.mentions:
            self._keep_aside(aside.mentions, "(thread state)", "unreadable_state")
        for tid, reason in aside.unreadable.items():
            if tid not in self.unreadable_logged:
                log.error(
                    "thread state unreadable, thread left out",
                    extra=kv(thread_id=tid, error=reason),
                )
                self.unreadable_logged.add(tid)
        while len(self.unreadable_logged) > _REMEMBERED_UNREADABLE:
            self.unreadable_logged.pop()

    def _keep_aside(self, mentions: list[tuple[Mention, str]], field: str, reason: str) -> None:
        """Mentions accepted but not decided, each with why: to the dead letter (as ``field``)
        and counted in ``mentions_set_aside{reason}``."""
        self.inbox.dead_letter.set_aside(mentions, field)
        self.metrics.mentions_set_aside.labels(reason).inc(len(mentions))

    def _published(self, transitions: Sequence[AlertTransition]) -> None:
        counter = self.metrics.alert_transitions
        for t in transitions:
            counter.labels(t.level, t.state).inc()
            if self.mqtt is not None:
                self.mqtt.publish_nowait(t.to_json())
        self.last_progress = time.monotonic()

    def stalled(self, seconds: float) -> bool:
        """Mentions wait, yet no batch finished for ``seconds``: the watchdog stops pinging."""
        waiting = self.inbox.queue.qsize() > 0
        return waiting and time.monotonic() - self.last_progress > seconds

    # --- reload: validate, build, then swap -----------------------------------------------

    async def reload(self, new: Config) -> list[str]:
        """Apply ``new`` but what only a restart can apply (those keys are returned, and keep
        their running values); raises ConfigError (and changes nothing) when it cannot."""
        new, held = hold_restart_only(self.config, new)
        self.delivery.reload(new)  # the last fallible step: it keeps its old routes on error
        async with self.lock:
            # thread state, event time and learned models carry over (Engine.reconfigure)
            self.engine.reconfigure(new)
            self.config = new
            self.inbox.max_future = new.input.max_future
            if self.mqtt is not None:
                self.mqtt.max_text_chars = new.input.max_text_chars
        self.metrics.config_restart_pending.set(len(held))
        return held

    # --- the HTTP API (sources.http.Service) -----------------------------------------------

    async def readiness(self) -> dict[str, bool]:
        checks = {"started": self.started, "accepting": self.inbox.accepting}
        checks["store"] = await self._store_reachable()
        if self.mqtt is not None:
            checks["mqtt"] = self.mqtt.connected
        return checks

    async def _store_reachable(self) -> bool:
        try:
            async with asyncio.timeout(_STORE_CHECK_TIMEOUT):
                await self.store.thread_count()
        except Exception as exc:
            log.warning("state store unreachable", extra=kv(error=repr(exc)))
            return False
        return True

    async def recent_alerts(self, limit: int) -> list[dict[str, Any]]:
        """The latest transitions, each marked ``acked`` when an ack covers its level."""
        return await self._mark_acked([dict(a) for a in self.delivery.recent(limit)])

    async def ack(self, episode_id: str) -> bool:
        return await self.delivery.ack(episode_id)

    async def threads(self) -> list[dict[str, Any]]:
        """The threads with an open or pending episode, ``acked`` as in ``recent_alerts``."""
        return await self._mark_acked(await thread_views(self.engine))

    async def _mark_acked(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``acked``: the item's episode was acknowledged at its level or above, by any worker
        (the outbox's record, not this process's memory); an escalation above it is not."""
        ids = {i["episode_id"] for i in items if i.get("episode_id")}
        acks = await self.delivery.acks(ids) if ids else {}
        rank = level_rank(self.config.levels)
        for item in items:
            acked_level = acks.get(item.get("episode_id") or "")
            item["acked"] = acked_level is not None and covers(acked_level, item.get("level"), rank)
        return items

    async def feedback(self, label: str, text: str | None, mention_id: str | None) -> Feedback:
        if not self.config.sentiment.learn:
            return "learning is off"
        if text is None and mention_id is not None:
            text = self.texts.get(mention_id)
        if text is None:
            return "unknown mention"
        self.engine.sentiment.learn(text, label)
        log.info("sentiment feedback learned", extra=kv(label=label, mention_id=mention_id))
        try:  # keep what an operator taught across a crash, not only a clean stop
            await save_sentiment(self.store, self.engine.sentiment)
        except Exception as exc:
            log.warning("sentiment model not saved", extra=kv(error=repr(exc)))
        return "learned"

    async def silence(self, brand: str, until: float) -> str:
        """A maintenance window for ``brand`` (``*``: all) until ``until``, replacing any other;
        returns the brand as it is kept (``brand_key``)."""
        brand = brand_key(brand)
        await self.delivery.silence(brand, until)
        length = round(until - self.clock.now())
        log.info("silence set", extra=kv(brand=brand, until=format_time(until), seconds=length))
        return brand

    async def silences(self) -> dict[str, float]:
        return await self.delivery.silences()

    async def lift_silence(self, brand: str) -> str | None:
        """End ``brand``'s silence now (a window ending now is over): the brand as kept, or None
        if it had none in force."""
        brand = brand_key(brand)
        if brand not in await self.delivery.silences():
            return None
        await self.delivery.silence(brand, self.clock.now())
        log.info("silence lifted", extra=kv(brand=brand))
        return brand


# Sections and keys whose change needs new sockets, a new store or new model state.
_RESTART_KEYS = (
    "state",
    "features",
    "sentiment",
    "mqtt",
    "http.enabled",
    "http.host",
    "http.port",
    "daemon.queue_size",
    "input.dead_letter",
    "input.root_memory",
    "input.max_remembered_roots",
)


def hold_restart_only(running: Config, new: Config) -> tuple[Config, list[str]]:
    """``new`` with what only a restart can apply kept at its ``running`` value, and those
    keys: a route or level edited with them is not lost with them."""
    held = [key for key in _RESTART_KEYS if _lookup(running, key) != _lookup(new, key)]
    for key in held:
        new = _replaced(new, key.split("."), _lookup(running, key))
    return new, held


def _lookup(config: Config, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _replaced(section: Any, path: list[str], value: object) -> Any:
    head, *rest = path
    inner = _replaced(getattr(section, head), rest, value) if rest else value
    return replace(section, **{head: inner})


def config_summary(config: Config) -> dict[str, Any]:
    """What a log line may say about a config: never a secret (tokens, URLs, passwords)."""
    return {
        "state": config.state.backend,
        "levels": ",".join(f"{lvl.name}>={lvl.enter}" for lvl in config.levels),
        "routes": len(config.notify.routes),
        "http": f"{config.http.host}:{config.http.port}" if config.http.enabled else "off",
        "mqtt": f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt.enabled else "off",
    }
