"""The shared store: thread state in Redis, two or three round trips per batch of mentions.

The only module that imports redis (the outbox borrows ``connect``). A batch costs one lookup
script call for its ids (the repeat check: which did a worker decide?) and the parents this
worker does not hold already (see the two "in process" notes below), one MGET to load the
threads it does not hold already, and one Lua script call to save them; the batch's new roots
(mention -> root) ride along in that same call.
The save script compare-and-sets every state on its ``version`` and keeps the indexes (active
episodes, last_seen for expiry) in step, so workers sharing the Redis never lose an update: it
returns the threads another worker changed, and the engine redoes just those.

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

import dataclasses
import math
import operator
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as redis

from watchtower.errors import ConfigError, UnreadableStates, WatchtowerError
from watchtower.state import keys
from watchtower.state.thread_state import Episode, ThreadState, TopMention

if TYPE_CHECKING:
    from watchtower.config import Config

_HEAD, _TAIL = len(keys.THREAD_KEY_HEAD.encode()), len(keys.THREAD_KEY_TAIL.encode())
_EXPIRE_CHUNK = 1000  # threads checked per script call: keeps each call short for others
# Roots kept in process (about 230 bytes each with 20-character ids: some 23 MB in all):
# replies mostly come within minutes of their parent, and a root not held is asked of Redis.
CACHED_ROOTS = 100_000
CACHED_THREADS = 20_000  # the default of state.cached_threads

# KEYS: ACTIVE, INDEX, state keys..., root keys...; ARGV: ttl_ms, len(key head), len(key tail),
# number of states, root ttl_ms, payloads..., the roots' values as one JSON list (an argument
# costs redis-py ~1 us to pack). Everything per thread comes from its key and payload (see
# encode_state): few arguments to pack. Roots are written whatever the compare-and-set says.
# Returns {threads held, conflicting tids...}.
_SAVE = """
local ttl, head, tail = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local states, root_ttl = tonumber(ARGV[4]), ARGV[5]
local out = {0}
for i = 3, states + 2 do
  local key, payload = KEYS[i], ARGV[i + 3]
  local version, active, seen = string.match(payload, '^%[(%d+),"%x+",([01]),([^,]+),')
  local tid = string.sub(key, head + 1, -tail - 1)
  local stored = string.match(redis.call('GETRANGE', key, 0, 23), '^%[(%d+)')
  if (tonumber(stored) or 0) == tonumber(version) - 1 then
    redis.call('SET', key, payload, 'PX', ttl)
    redis.call('ZADD', KEYS[2], seen, tid)
    if active == '1' then
      redis.call('SADD', KEYS[1], tid)
    else
      redis.call('SREM', KEYS[1], tid)
    end
  else
    out[#out + 1] = tid
  end
end
local roots = cjson.decode(ARGV[states + 6])
for i = states + 3, #KEYS do
  redis.call('SET', KEYS[i], roots[i - states - 2], 'PX', root_ttl)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
out[1] = redis.call('ZCARD', KEYS[2])
return out
"""

# KEYS: ACTIVE, INDEX, state keys...; ARGV: now, ttl seconds (or '' to drop unconditionally:
# the size cap), tids... Expiry keeps a thread saved meanwhile with a later last_seen, and one
# with an open or pending episode: it must resolve, not vanish (see RedisStore.expire).
_DROP = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local dropped = 0
for i = 3, #KEYS do
  local tid = ARGV[i]
  local seen = tonumber(redis.call('ZSCORE', KEYS[2], tid))
  local idle = ttl == nil or (seen and seen + ttl <= now
    and redis.call('SISMEMBER', KEYS[1], tid) == 0)
  if seen and idle then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[2], tid)
    redis.call('SREM', KEYS[1], tid)
    dropped = dropped + 1
  end
end
return dropped
"""

# KEYS: root keys. Returns {key's position, value, PTTL in ms} per root found: the wall
# deadline of a root looked up here comes from Redis, not from when it was asked for. Nothing
# for a miss: most of a batch's own ids (the repeat check) are, and redis-py parses a reply
# item in ~4 us.
_LOOKUP = """
local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = i
    out[#out + 1] = value
    out[#out + 1] = redis.call('PTTL', KEYS[i])
  end
end
return out
"""


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
        self._save_script = self._client.register_script(_SAVE)
        self._drop_script = self._client.register_script(_DROP)
        self._lookup_script = self._client.register_script(_LOOKUP)
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


# --- the serialised form: an orjson list led by what the save script reads ------------------

_EPISODE_FIELDS = tuple(f.name for f in dataclasses.fields(Episode))
_TOP_FIELDS = tuple(f.name for f in dataclasses.fields(TopMention))
# The header carries thread_id (in the key), version and last_seen: the rest follow in order.
_STATE_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(ThreadState)
    if f.name not in ("thread_id", "version", "last_seen")
)
_state_values = operator.attrgetter(*_STATE_FIELDS)
_episode_values = operator.attrgetter(*_EPISODE_FIELDS)
_top_values = operator.attrgetter(*_TOP_FIELDS)
_HEADER = 4  # version, layout, active, last_seen
_EPISODE_AT = _HEADER + _STATE_FIELDS.index("episode")
_TOP_AT = _HEADER + _STATE_FIELDS.index("top")


def _layout(state: tuple[str, ...], episode: tuple[str, ...], top: tuple[str, ...]) -> str:
    """A fingerprint of a layout: a state written with other fields is never read into the
    wrong ones."""
    return format(zlib.crc32("|".join((*state, *episode, *top)).encode()), "08x")


LAYOUT = _layout(_STATE_FIELDS, _EPISODE_FIELDS, _TOP_FIELDS)
_WITHOUT_HEADLINE = tuple(f for f in _STATE_FIELDS if f != "headline")
_WITHOUT_RESOLVED_FORECAST = tuple(f for f in _EPISODE_FIELDS if f != "resolved_forecast")
# Earlier builds' layouts this one reads, by name, the fields added since taking their
# defaults: an upgrade keeps the threads (and their open episodes) a rolling restart left in
# Redis. When a field with a default is added, list the layout before it here.
_OLDER_LAYOUTS = {
    _layout(state, episode, top): (state, episode, top)
    for state, episode, top in [
        # before ThreadState.headline (the alert's title says what the thread is about)
        (_WITHOUT_HEADLINE, _EPISODE_FIELDS, _TOP_FIELDS),
        # and before Episode.resolved_forecast (quiet after a resolve)
        (_WITHOUT_HEADLINE, _WITHOUT_RESOLVED_FORECAST, _TOP_FIELDS),
    ]
}


class StateFormatError(WatchtowerError):
    """A stored thread state written with another layout of ThreadState."""


def encode_state(state: ThreadState, version: int) -> bytes:
    """``[version, layout, active 1/0, last_seen, field, ...]``; nested values as lists."""
    episode = state.episode
    active = 1 if episode.id is not None or episode.pending_level is not None else 0
    values: list[Any] = [version, LAYOUT, active, state.last_seen, *_state_values(state)]
    # one C call per object instead of a getattr per field: this runs for every saved thread
    values[_EPISODE_AT] = _episode_values(episode)
    values[_TOP_AT] = [_top_values(m) for m in state.top]
    return orjson.dumps(values)


def decode_state(thread_id: str, raw: bytes | str) -> ThreadState:
    version, layout, _, last_seen, *values = orjson.loads(raw)
    if layout == LAYOUT and len(values) == len(_STATE_FIELDS):
        fields = dict(zip(_STATE_FIELDS, values, strict=True))
        fields["episode"] = Episode(*fields["episode"])
        fields["top"] = [TopMention(*m) for m in fields["top"]]
    elif layout in _OLDER_LAYOUTS:
        fields = _older(thread_id, layout, values)
    else:
        raise StateFormatError(
            f"thread {thread_id!r} was stored with layout {layout}, which this build does not"
            f" read (it writes {LAYOUT}): drain the workers of the other version, or flush the"
            " wt:* keys"
        )
    return ThreadState(thread_id=thread_id, version=version, last_seen=last_seen, **fields)


def _older(thread_id: str, layout: str, values: list[Any]) -> dict[str, Any]:
    """The fields of a state an earlier build wrote, by name; what it lacks takes its default
    (a field it had that this build dropped would be refused: none yet)."""
    state, episode, top = _OLDER_LAYOUTS[layout]
    if len(values) != len(state):
        raise StateFormatError(f"thread {thread_id!r}: {len(values)} fields for layout {layout}")
    fields = dict(zip(state, values, strict=True))
    fields["episode"] = Episode(**dict(zip(episode, fields["episode"], strict=True)))
    fields["top"] = [TopMention(**dict(zip(top, m, strict=True))) for m in fields["top"]]
    return fields
