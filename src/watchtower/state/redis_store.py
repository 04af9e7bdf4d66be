"""The shared store: thread state in Redis, two or three round trips per batch of mentions.

Where Redis connections are made (``connect``, which the outbox borrows); the storm and note
boards (redis_storms.py, redis_notes.py) work on this store's client. A batch costs one lookup
script call for its ids (the repeat check: which did a worker decide?) and the parents this
worker does not hold already (see the two "in process" notes below), one MGET to load the
threads it does not hold already, and one Lua script call to save them; the batch's new roots
(mention -> root) ride along in that same call.
The save script compare-and-sets every state on its ``version`` and keeps the indexes (active
episodes, last_seen for expiry) in step, so workers sharing the Redis never lose an update: it
returns the threads another worker changed, and the engine redoes just those. The scripts'
texts are in redis_scripts, the bytes a state is stored as in state_codec.

Expiry, two clocks: each state key carries a Redis TTL of ``thread_ttl`` refreshed on every
save, which is *wall* time and bounds memory whatever happens; ``expire(now)`` drops threads by
*event* time (last_seen + thread_ttl <= now) from a sorted index, as MemoryStore does, so replays
faster than real time expire like the live daemon; a thread with an open or pending episode is
kept until it resolves. Roots likewise carry a wall TTL of ``root_memory`` and their event-time
deadline in the value: a lookup ignores those past the latest ``now`` this process remembered
roots at, which is when MemoryStore forgets them.

Roots in process: a mention's root is settled when it is remembered, so the roots this worker
remembered or looked up are also kept here (the latest ``cached_roots`` of them) with both
deadlines, the wall one no later than Redis's own, and a lookup asks Redis only for the rest.
One worker thus answers exactly as Redis would. A miss is never kept: with several workers on
one subscription the parent may be another worker's, so it is asked for again. (What is held
can only lag Redis if another worker re-remembers the same mention with another root meanwhile:
a duplicate delivered to both before either saved it, as the repeat check only drops one
decided; which of the two copies wins is a race with or without this.) Roots
remembered are written with the next save (``save([])`` writes just them; a lookup that must
ask Redis writes them first); the engine saves after every batch it resolves.

Threads in process: the states this worker saved last (the latest ``cached_threads``) are kept
here at the version they were saved with, and ``load`` hands them out without asking Redis; nor
does it ask for the threads the engine says are new (their root post is in the batch). So a
worker reading its own stream pays one round trip per batch, not two. Nothing is lost by it:
the save's compare-and-set still checks each version against Redis, so a thread another worker
saved, or that expired there meanwhile, or a "new" one that existed after all (a root post
delivered twice, or after its replies), comes back as a conflict and is redone from Redis. A
state handed out leaves the cache until it is saved again: a batch that fails midway, its states
half changed, is redone from Redis. Several workers whose mentions of one thread interleave (a
shared subscription) gain little from it and may turn it off (``state.cached_threads: 0``).

Redis Cluster: keys are hash-tagged per thread, but the save script also writes the global
indexes, so it runs on one node (standalone or a primary with replicas). Cluster would run one
script per slot group with per-slot indexes; not done yet.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as redis

from watchtower.errors import ConfigError, UnreadableStates
from watchtower.state import keys, redis_scripts
from watchtower.state.state_codec import StateFormatError, decode_state, encode_state
from watchtower.state.thread_state import ThreadState

if TYPE_CHECKING:
    from watchtower.config import Config

_HEAD, _TAIL = len(keys.THREAD_KEY_HEAD.encode()), len(keys.THREAD_KEY_TAIL.encode())
_EXPIRE_CHUNK = 1000  # threads checked per script call: keeps each call short for others
# Roots kept in process (about 230 bytes each with 20-character ids: some 23 MB in all):
# replies mostly come within minutes of their parent, and a root not held is asked of Redis.
CACHED_ROOTS = 100_000
CACHED_THREADS = 20_000  # the default of state.cached_threads


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (redis://host:port/db, rediss://, unix://) answering in bytes."""
    check_url(url)
    return redis.Redis.from_url(url, decode_responses=False)


def check_url(url: str) -> None:
    """Refuse a URL redis-py cannot parse (it would fail at start with a traceback), naming
    ``state.redis_url`` and not the URL, which may hold a password."""
    try:
        redis.connection.parse_url(url)
    except ValueError:
        reason = "not a Redis URL: redis://host:port/db, rediss://host:port/db or unix://path"
        raise ConfigError("state.redis_url", reason) from None


class RedisStore:
    """The Store protocol on Redis; the same results as MemoryStore on the same stream."""

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        thread_ttl: float,
        max_threads: int,
        root_memory: float,
        cached_roots: int = CACHED_ROOTS,
        cached_threads: int = CACHED_THREADS,
    ) -> None:
        """``client``: a URL (the store owns and closes the client) or a client it borrows;
        ``cached_roots``, ``cached_threads``: how many roots and thread states to keep in
        process too (0: ask Redis every time)."""
        self._owned = isinstance(client, str)
        self._client = connect(client) if isinstance(client, str) else client
        self._thread_ttl = thread_ttl
        self._max_threads = max_threads
        self._root_memory = root_memory
        self._save_script = self._client.register_script(redis_scripts.SAVE)
        self._drop_script = self._client.register_script(redis_scripts.DROP)
        self._lookup_script = self._client.register_script(redis_scripts.LOOKUP)
        self._roots_now: float | None = None  # the latest event time roots were remembered at
        # mention -> (root, event-time deadline, time.monotonic() deadline), oldest first
        self._roots: OrderedDict[str, tuple[str, float, float]] = OrderedDict()
        self._cached_roots = cached_roots
        self._unsaved: dict[str, str] = {}  # root key -> "deadline|root", for the next save
        # thread -> its state as saved by this worker (least recently saved first)
        self._states: OrderedDict[str, ThreadState] = OrderedDict()
        self._cached_threads = cached_threads
        self._closed = False
        self._epoch: str | None = None  # the EPOCH token this process saw (lost_state)
        self.evicted = 0  # threads this process dropped by the size cap before their TTL

    @classmethod
    def from_config(cls, config: Config) -> RedisStore:
        url = config.state.redis_url
        if url is None:
            raise ConfigError("state.redis_url", "required when state.backend is redis")
        return cls(
            str(url),
            thread_ttl=config.state.thread_ttl,
            max_threads=config.state.max_threads,
            root_memory=config.input.root_memory,
            cached_threads=config.state.cached_threads,
        )

    @property
    def client(self) -> redis.Redis:
        return self._client

    async def load(
        self, thread_ids: Iterable[str], *, new: Set[str] = frozenset(), keep: bool = False
    ) -> dict[str, ThreadState]:
        held = self._states
        take = held.get if keep else held.pop  # handed out to be changed: back once saved
        found: dict[str, ThreadState] = {}
        tids = []
        for tid in thread_ids:
            state = take(tid, None)
            if state is not None:
                found[tid] = state
            elif tid not in new:
                tids.append(tid)
        if tids:
            values = await self._client.mget([keys.thread_key(t) for t in tids])
            unreadable = {}
            for tid, value in zip(tids, values, strict=True):
                if value is not None:
                    try:
                        found[tid] = decode_state(tid, value)
                    except StateFormatError as exc:
                        unreadable[tid] = str(exc)
                    except (ValueError, TypeError) as exc:  # not JSON, or not a state's shape
                        unreadable[tid] = f"thread {tid!r} holds no readable state: {exc}"
            if unreadable:
                raise UnreadableStates(unreadable)
        return found

    async def save(self, states: Iterable[ThreadState]) -> list[str]:
        batch = list(states)
        roots, self._unsaved = self._unsaved, {}
        if not batch and not roots:
            return []
        script_keys = [keys.ACTIVE_THREADS, keys.THREAD_INDEX]
        script_keys += [keys.thread_key(s.thread_id) for s in batch]
        script_keys += roots
        args: list[bytes | int] = [keys.ttl_ms(self._thread_ttl), _HEAD, _TAIL, len(batch)]
        args.append(keys.ttl_ms(self._root_memory))
        args += [encode_state(s, s.version + 1) for s in batch]
        args.append(orjson.dumps(list(roots.values())))
        try:
            held, *raw = await self._save_script(keys=script_keys, args=args)
        except BaseException:
            roots.update(self._unsaved)  # not known to be written: send them again next time
            self._unsaved = roots
            self._forget_states(s.thread_id for s in batch)
            raise
        conflicts = [as_text(c) for c in raw]
        lost = set(conflicts)
        cache, keep = self._states, self._cached_threads
        for state in batch:
            tid = state.thread_id
            if tid in lost:
                cache.pop(tid, None)
            else:
                state.version += 1
                if keep:
                    cache[tid] = state
                    cache.move_to_end(tid)
        while len(cache) > keep:
            cache.popitem(last=False)
        if held > self._max_threads:
            await self._evict(held - self._max_threads)
        return conflicts

    async def lookup_roots(self, mention_ids: Iterable[str]) -> dict[str, str]:
        horizon = -math.inf if self._roots_now is None else self._roots_now
        wall = time.monotonic()
        held = self._roots
        found = {}
        missing = []
        for mid in mention_ids:
            entry = held.get(mid)
            if entry is not None and entry[1] > horizon and entry[2] > wall:
                found[mid] = entry[0]
            else:
                missing.append(mid)
        if missing:
            if self._unsaved:  # remembered without a save since: Redis must have them to answer
                await self.save(())
            found.update(await self._fetch_roots(missing, horizon))
        return found

    async def lookup_batch(
        self, parents: Iterable[str], mention_ids: Iterable[str]
    ) -> tuple[dict[str, str], set[str]]:
        """The decided: the mentions with a root in Redis (saved with some worker's batch) or
        held here (remembered by this worker, for a batch it decided or that failed: the engine
        tells those apart). One lookup for both, so one round trip at most."""
        ids = list(mention_ids)
        found = await self.lookup_roots(dict.fromkeys([*parents, *ids]))
        return found, {mid for mid in ids if mid in found}

    async def remember_roots(self, roots: Mapping[str, str], now: float) -> None:
        """Kept until now + root_memory of event time, and as long of wall time at most;
        written to Redis with the next save."""
        if self._roots_now is None or now > self._roots_now:
            self._roots_now = now
        until = now + self._root_memory
        wall = time.monotonic() + self._root_memory  # before Redis starts its TTL: no later
        prefix = f"{until!r}|"
        unsaved, held = self._unsaved, self._roots
        for mid, root in roots.items():
            unsaved[keys.root_key(mid)] = prefix + root
            held[mid] = (root, until, wall)
        self._forget_roots()

    async def active_threads(self) -> list[str]:
        members = await self._client.smembers(keys.ACTIVE_THREADS)
        return sorted(as_text(m) for m in members)

    async def expire(self, now: float) -> int:
        """Drop threads idle past thread_ttl as of event time ``now``; return how many.

        Idle: last_seen + thread_ttl <= now and no open or pending episode. MemoryStore keeps
        active threads too, by another route: they are saved on every tick, which puts them at
        the young end of its activity order.
        """
        ttl = self._thread_ttl
        dropped = kept = 0
        while True:
            # The index query is a superset (1 s of slack); the script applies the exact test.
            candidates = await self._client.zrangebyscore(
                keys.THREAD_INDEX, "-inf", now - ttl + 1.0, start=kept, num=_EXPIRE_CHUNK
            )
            tids = [as_text(c) for c in candidates]
            self._forget_states(tids)  # the script may drop any of them
            gone = int(await self._drop(tids, now, ttl)) if tids else 0
            dropped += gone
            kept += len(tids) - gone  # still in the index, ahead of the rest: skip them
            if len(tids) < _EXPIRE_CHUNK:
                return dropped

    async def thread_count(self) -> int:
        return int(await self._client.zcard(keys.THREAD_INDEX))

    async def lost_state(self) -> bool:
        """The EPOCH token set if absent and read back: another than the one seen before
        means the keys were lost (any worker that noticed first set the new one). What this
        process holds of the old state (cached threads and roots) is dropped with it."""
        mine = uuid.uuid4().hex
        await self._client.set(keys.EPOCH, mine, nx=True)
        raw = await self._client.get(keys.EPOCH)
        seen = mine if raw is None else as_text(raw)
        lost = self._epoch is not None and seen != self._epoch
        self._epoch = seen
        if lost:
            self._states.clear()
            self._roots.clear()
        return lost

    async def get_blob(self, name: str) -> bytes | None:
        """Opaque persisted bytes (model state), or None when never set."""
        value = await self._client.get(keys.blob_key(name))
        return None if value is None else as_bytes(value)

    async def set_blob(self, name: str, data: bytes) -> None:
        await self._client.set(keys.blob_key(name), data)

    async def close(self) -> None:
        """Write roots still unsaved (only after a failed save), then let go of the client."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.save(())
        finally:
            self._roots.clear()
            self._states.clear()
            if self._owned:
                await self._client.aclose()

    async def _fetch_roots(self, mids: list[str], horizon: float) -> dict[str, str]:
        """Ask Redis for roots not held here; keep the ones found, with Redis's wall TTL."""
        asked = time.monotonic()
        reply = await self._lookup_script(keys=[keys.root_key(m) for m in mids])
        held = self._roots
        found = {}
        for position, value, pttl in zip(reply[::3], reply[1::3], reply[2::3], strict=True):
            mid = mids[position - 1]
            deadline, root = as_text(value).split("|", 1)
            until = float(deadline)
            if until > horizon:
                found[mid] = root
                held[mid] = (root, until, asked + pttl / 1000 if pttl >= 0 else math.inf)
        self._forget_roots()
        return found

    def _forget_roots(self) -> None:
        """Keep the latest ``cached_roots`` roots here, dropping those past their event time."""
        held, horizon = self._roots, self._roots_now
        while held:
            _, until, _ = held[next(iter(held))]
            if len(held) <= self._cached_roots and (horizon is None or until > horizon):
                break
            held.popitem(last=False)

    async def _evict(self, excess: int) -> None:
        """The size cap: drop the threads least recently seen (event time)."""
        victims = [as_text(v) for v in await self._client.zrange(keys.THREAD_INDEX, 0, excess - 1)]
        self._forget_states(victims)
        self.evicted += int(await self._drop(victims, 0.0, None))

    def _forget_states(self, tids: Iterable[str]) -> None:
        held = self._states
        for tid in tids:
            held.pop(tid, None)

    async def _drop(self, tids: Sequence[str], now: float, ttl: float | None) -> Any:
        script_keys = [keys.ACTIVE_THREADS, keys.THREAD_INDEX]
        script_keys += [keys.thread_key(t) for t in tids]
        return await self._drop_script(
            keys=script_keys, args=[now, "" if ttl is None else ttl, *tids]
        )


def as_bytes(value: object) -> bytes:
    """A reply item as bytes (what our clients answer; str if a caller's client decodes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected Redis reply item {value!r}")


def as_text(value: object) -> str:
    """A reply item as text (bytes from our clients; str if a caller's client decodes)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"unexpected Redis reply item {value!r}")
