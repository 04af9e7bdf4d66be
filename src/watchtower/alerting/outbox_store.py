"""Where the outbox keeps its entries: one small Protocol, an in-memory and a Redis backend.

An entry is one (transition key, route) pair with its rendered message. Its life: ``record``
(ignored when the pair was seen before, pending or finished) -> ``claim`` (a lease: nobody else
gets it until the lease ends, so two workers never send one entry at once) -> ``finish`` (sent,
dead-lettered or suppressed: remembered for ``DONE_RETENTION`` so it is never recorded or sent
again) or ``retry`` (back in the queue at a later time). ``finish`` and ``retry`` only apply
while the caller's lease is still the current one; a worker that stalled past its lease finds its
result ignored rather than overwriting the newer holder's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import Message
from watchtower.state import keys

DONE_RETENTION = keys.OUTBOX_DONE_TTL  # seconds a finished entry is remembered: dedup window
MAX_EPISODES = 100_000  # memory backend: open episodes remembered for ack


@dataclass(frozen=True)
class Entry:
    """One notification to deliver: self-contained, so no URL or secret is ever stored."""

    key: str  # the transition's idempotency key, episode_id#sequence
    route: str
    episode_id: str
    level: str
    state: str
    repeat: bool
    brand: str | None
    title: str
    body: str
    notify_type: str
    created: float  # wall clock, when recorded
    attempts: int = 0
    delivered: tuple[str, ...] = ()  # digests of the route's URLs that already took it
    refused: tuple[str, ...] = ()  # ... and of those that refused it for good (a 401, a 404)
    last_error: str = ""

    @property
    def id(self) -> str:
        return f"{self.key}|{self.route}"

    @property
    def message(self) -> Message:
        return Message(self.title, self.body, self.notify_type)

    @classmethod
    def of(cls, t: AlertTransition, route: str, message: Message, now: float) -> Entry:
        return cls(
            key=t.key,
            route=route,
            episode_id=t.episode_id,
            level=t.level,
            state=t.state,
            repeat=t.repeat,
            brand=t.brand,
            title=message.title,
            body=message.body,
            notify_type=message.notify_type,
            created=now,
        )

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> Entry:
        fields: dict[str, Any] = orjson.loads(data)
        fields["delivered"] = tuple(fields.get("delivered", ()))
        fields["refused"] = tuple(fields.get("refused", ()))  # absent in older entries
        return cls(**fields)


@dataclass(frozen=True)
class Lease:
    entry: Entry
    token: int  # the lease's end in epoch ms; identifies this claim


@dataclass(frozen=True)
class Ack:
    level: str  # the episode's level when it was acknowledged
    at: float  # wall clock


class OutboxStore(Protocol):
    durable: bool  # entries outlive the process (for the next start, or another worker)

    async def record(self, entries: Sequence[Entry], now: float) -> int:
        """Queue entries due now, skipping any pair already pending or finished; count added."""

    async def claim(self, now: float, lease: float, limit: int) -> list[Lease]:
        """Up to ``limit`` entries due at ``now``, leased to the caller for ``lease`` seconds."""

    async def finish(self, lease: Lease, now: float) -> bool:
        """Done with the entry for good (sent, dead or suppressed); False if the lease was lost."""

    async def retry(self, lease: Lease, entry: Entry, due: float) -> bool:
        """Store the updated entry, due again at ``due``; False if the lease was lost."""

    async def next_due(self) -> float | None:
        """When the earliest entry is due (or its lease ends); None when nothing is pending."""

    async def pending(self) -> dict[str, int]:
        """Unfinished entries by route."""

    async def note_episodes(self, levels: Mapping[str, str | None]) -> None:
        """Each episode's current level; None: it resolved (forget it and its ack)."""

    async def ack(self, episode_id: str, now: float) -> Ack | None:
        """Acknowledge an open episode at its current level; None if it is not open."""

    async def acks(self, episode_ids: Iterable[str]) -> dict[str, Ack]:
        """The acks among these episodes."""

    async def silence(self, brand: str, until: float) -> None:
        """Suppress every notification for ``brand`` (``*``: all) until ``until`` (epoch s)."""

    async def silences(self, now: float) -> dict[str, float]:
        """Silences still in force at ``now``: brand -> until."""

    async def close(self) -> None:
        """Release connections; calling it twice is harmless."""


def ms(seconds: float) -> int:
    """Epoch seconds as whole milliseconds: exact scores and lease tokens."""
    return math.floor(seconds * 1000)


class MemoryOutboxStore:
    """One process: the outbox survives a Delivery restart, not a process restart."""

    durable = False

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.due: dict[str, int] = {}  # entry id -> due or lease end (ms)
        self.done: dict[str, float] = {}  # entry id -> finished at, oldest first
        self.episodes: OrderedDict[str, str] = OrderedDict()  # open episode -> level
        self.ack_by_episode: dict[str, Ack] = {}
        self.silenced: dict[str, float] = {}

    async def record(self, entries: Sequence[Entry], now: float) -> int:
        self._forget_done(now)
        added = 0
        for entry in entries:
            if entry.id in self.done or entry.id in self.entries:
                continue
            self.entries[entry.id] = entry
            self.due[entry.id] = ms(now)
            added += 1
        return added

    async def claim(self, now: float, lease: float, limit: int) -> list[Lease]:
        now_ms, token = ms(now), ms(now + lease)
        ready = sorted((at, eid) for eid, at in self.due.items() if at <= now_ms)[:limit]
        for _, eid in ready:
            self.due[eid] = token
        return [Lease(self.entries[eid], token) for _, eid in ready]

    async def finish(self, lease: Lease, now: float) -> bool:
        eid = lease.entry.id
        if self.due.get(eid) != lease.token:
            return False
        del self.due[eid], self.entries[eid]
        self.done[eid] = now
        return True

    async def retry(self, lease: Lease, entry: Entry, due: float) -> bool:
        if self.due.get(entry.id) != lease.token:
            return False
        self.entries[entry.id] = entry
        self.due[entry.id] = ms(due)
        return True

    async def next_due(self) -> float | None:
        return min(self.due.values()) / 1000 if self.due else None

    async def pending(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries.values():
            counts[entry.route] = counts.get(entry.route, 0) + 1
        return counts

    async def note_episodes(self, levels: Mapping[str, str | None]) -> None:
        for episode_id, level in levels.items():
            if level is None:
                self.episodes.pop(episode_id, None)
                self.ack_by_episode.pop(episode_id, None)
                continue
            self.episodes[episode_id] = level
            self.episodes.move_to_end(episode_id)
        while len(self.episodes) > MAX_EPISODES:  # episodes whose resolve never came
            episode_id, _ = self.episodes.popitem(last=False)
            self.ack_by_episode.pop(episode_id, None)

    async def ack(self, episode_id: str, now: float) -> Ack | None:
        level = self.episodes.get(episode_id)
        if level is None:
            return None
        ack = self.ack_by_episode[episode_id] = Ack(level, now)
        return ack

    async def acks(self, episode_ids: Iterable[str]) -> dict[str, Ack]:
        found = self.ack_by_episode
        return {eid: found[eid] for eid in episode_ids if eid in found}

    async def silence(self, brand: str, until: float) -> None:
        self.silenced[brand] = until

    async def silences(self, now: float) -> dict[str, float]:
        self.silenced = {brand: until for brand, until in self.silenced.items() if until > now}
        return dict(self.silenced)

    async def close(self) -> None:
        return None

    def _forget_done(self, now: float) -> None:
        cutoff = now - DONE_RETENTION
        if self.done and next(iter(self.done.values())) < cutoff:  # oldest first (insertion)
            self.done = {eid: at for eid, at in self.done.items() if at >= cutoff}
