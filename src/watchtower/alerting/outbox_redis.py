"""The outbox on Redis, shared by every worker: each step one Lua script, so atomic.

A sorted set of due entry ids (score: due time in ms) and a hash of the entries. ``claim`` moves
due ids to their lease's end in the same script that reads them, so two workers never claim one
entry; the lease end is the claim's token and ``finish``/``retry`` check it. Finished ids go to
the ``done`` sorted set (the "sent" marker) that ``record`` consults, so a transition recorded
again (a restart, a second worker) is never queued twice. All keys share the ``{outbox}`` hash
tag, so the scripts also run on a Redis Cluster. Names and TTLs live in state/keys.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import orjson

from watchtower.alerting.outbox_store import DONE_RETENTION, Ack, Entry, Lease, ms
from watchtower.state import keys
from watchtower.state.redis_store import as_text

if TYPE_CHECKING:
    import redis.asyncio as redis

_CLAIM_KEYS = [keys.OUTBOX_DUE, keys.OUTBOX_ENTRIES]
_FINISH_KEYS = [keys.OUTBOX_DUE, keys.OUTBOX_ENTRIES, keys.OUTBOX_DONE, keys.OUTBOX_PENDING]

# KEYS: entries, due, done, pending. ARGV: now ms, done cutoff ms, then (id, route, json)...
_RECORD = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local added = 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if not redis.call('ZSCORE', KEYS[3], id) and redis.call('HSETNX', KEYS[1], id, ARGV[i + 2]) == 1
  then
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    redis.call('HINCRBY', KEYS[4], ARGV[i + 1], 1)
    added = added + 1
  end
end
return added
"""

# KEYS: due, entries. ARGV: now ms, lease end ms (the token), limit. Returns entry JSONs.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', KEYS[2], id)
  if entry then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = entry
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# KEYS: due, entries, done, pending. ARGV: id, token, now ms, route. 1 done, 0 lease lost.
_FINISH = """
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held or tonumber(held) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if redis.call('HINCRBY', KEYS[4], ARGV[4], -1) <= 0 then redis.call('HDEL', KEYS[4], ARGV[4]) end
return 1
"""

# KEYS: due, entries. ARGV: id, token, due ms, entry JSON. 1 rescheduled, 0 lease lost.
_RETRY = """
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held or tonumber(held) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


class RedisOutboxStore:
    """The OutboxStore protocol on a shared Redis."""

    durable = True

    def __init__(self, client: redis.Redis, *, owned: bool = False) -> None:
        """``owned``: the store closes the client on ``close``."""
        self._client = client
        self._owned = owned
        self._closed = False
        self._record = client.register_script(_RECORD)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._retry = client.register_script(_RETRY)

    async def record(self, entries: Sequence[Entry], now: float) -> int:
        if not entries:
            return 0
        args: list[str | int | bytes] = [ms(now), ms(now - DONE_RETENTION)]
        for entry in entries:
            args += [entry.id, entry.route, entry.to_json()]
        keys_ = [keys.OUTBOX_ENTRIES, keys.OUTBOX_DUE, keys.OUTBOX_DONE, keys.OUTBOX_PENDING]
        return int(await self._record(keys=keys_, args=args))

    async def claim(self, now: float, lease: float, limit: int) -> list[Lease]:
        token = ms(now + lease)
        found = await self._claim(keys=_CLAIM_KEYS, args=[ms(now), token, limit])
        return [Lease(Entry.from_json(data), token) for data in found]

    async def finish(self, lease: Lease, now: float) -> bool:
        entry = lease.entry
        args: list[str | int] = [entry.id, lease.token, ms(now), entry.route]
        return bool(await self._finish(keys=_FINISH_KEYS, args=args))

    async def retry(self, lease: Lease, entry: Entry, due: float) -> bool:
        args: list[str | int | bytes] = [entry.id, lease.token, ms(due), entry.to_json()]
        return bool(await self._retry(keys=_CLAIM_KEYS, args=args))

    async def next_due(self) -> float | None:
        first = await self._client.zrange(keys.OUTBOX_DUE, 0, 0, withscores=True)
        return float(first[0][1]) / 1000 if first else None

    async def pending(self) -> dict[str, int]:
        counts = await self._client.hgetall(keys.OUTBOX_PENDING)
        return {as_text(route): int(n) for route, n in counts.items() if int(n) > 0}

    async def note_episodes(self, levels: Mapping[str, str | None]) -> None:
        if not levels:
            return
        ttl = keys.ttl_ms(keys.OUTBOX_EPISODE_TTL)
        async with self._client.pipeline(transaction=False) as pipe:
            for episode_id, level in levels.items():
                key = keys.outbox_episode_key(episode_id)
                if level is None:
                    pipe.delete(key, keys.outbox_ack_key(episode_id))
                else:
                    pipe.set(key, level, px=ttl)
            await pipe.execute()

    async def ack(self, episode_id: str, now: float) -> Ack | None:
        level = await self._client.get(keys.outbox_episode_key(episode_id))
        if level is None:
            return None
        ack = Ack(as_text(level), now)
        data = orjson.dumps({"level": ack.level, "at": ack.at})
        ttl = keys.ttl_ms(keys.OUTBOX_EPISODE_TTL)
        await self._client.set(keys.outbox_ack_key(episode_id), data, px=ttl)
        return ack

    async def acks(self, episode_ids: Iterable[str]) -> dict[str, Ack]:
        ids = list(episode_ids)
        if not ids:
            return {}
        found = await self._client.mget([keys.outbox_ack_key(eid) for eid in ids])
        acks = {}
        for eid, data in zip(ids, found, strict=True):
            if data is not None:
                fields = orjson.loads(data)
                acks[eid] = Ack(str(fields["level"]), float(fields["at"]))
        return acks

    async def silence(self, brand: str, until: float) -> None:
        await self._client.hset(keys.OUTBOX_SILENCES, brand, repr(until))

    async def silences(self, now: float) -> dict[str, float]:
        found = await self._client.hgetall(keys.OUTBOX_SILENCES)
        # Ended silences stay (a handful of brands); deleting them could race a new silence.
        live = {as_text(brand): float(until) for brand, until in found.items()}
        return {brand: until for brand, until in live.items() if until > now}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned:
            await self._client.aclose()
