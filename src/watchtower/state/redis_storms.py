"""The StormBoard on Redis: workers' shares of brand-storm buckets, and the judging watch.

Each worker says how far its event time is (a heartbeat with every publish); a bucket is due
once every present worker (heard from within ``STALE`` seconds) is past its end, so every share
of it has been published. A judgement is optimistic: it WATCHes the state and the shares it
reads, decides in Python, and writes the new state with those shares deleted in one MULTI. If
another worker judged, or published a share being judged, meanwhile, EXEC fails and nothing is
kept: the caller tries again. So each bucket is judged once, from every share, and no lock can
be left behind by a worker that died.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import orjson
import redis.asyncio as redis
from redis.exceptions import WatchError

from watchtower.state import keys
from watchtower.state.redis_store import as_bytes, as_text

LEGACY_STATE = keys.blob_key("storm-watch")  # what a single worker saved at its stop
STALE = 120.0  # wall seconds without a heartbeat after which a worker is taken for gone


class RedisStormBoard:
    def __init__(self, client: redis.Redis, publisher: str) -> None:
        """``publisher``: unique per worker process (a worker restarted within a bucket adds a
        second share of it)."""
        self._client = client
        self.publisher = publisher
        self._published = 0

    async def publish(self, shares: Sequence[tuple[int, bytes]], watermark: float | None) -> None:
        ttl = keys.ttl_ms(keys.STORM_SHARES_TTL)
        async with self._client.pipeline(transaction=True) as pipe:
            for index, data in shares:
                self._published += 1
                key = keys.storm_shares_key(index)
                pipe.hset(key, f"{self.publisher}:{self._published}", data)
                pipe.pexpire(key, ttl)
                pipe.zadd(keys.STORM_PENDING, {str(index): index})
            if watermark is not None:
                beat = orjson.dumps([watermark, time.time()])
                pipe.hset(keys.STORM_WORKERS, self.publisher, beat)
            await pipe.execute()

    async def leave(self) -> None:
        await self._client.hdel(keys.STORM_WORKERS, self.publisher)

    async def judge(
        self, width: float, decide: Callable[[bytes | None, list[bytes], int], bytes]
    ) -> bool:
        async with self._client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.STORM_STATE, keys.STORM_PENDING, keys.STORM_JUDGED)
                present, gone = _present(await pipe.hgetall(keys.STORM_WORKERS))
                judged = await pipe.get(keys.STORM_JUDGED)
                through = math.floor(min(present) / width) - 1 if present else None
                if through is None or (judged is not None and through <= int(as_text(judged))):
                    return True  # nothing due (reset() unwatches on leaving the block)
                state = await pipe.get(keys.STORM_STATE)
                if state is None:  # the first judgement: carry on from a single worker's stop
                    state = await pipe.get(LEGACY_STATE)
                indices = await pipe.zrangebyscore(keys.STORM_PENDING, "-inf", through)
                share_keys = [keys.storm_shares_key(int(as_text(i))) for i in indices]
                shares: list[bytes] = []
                if share_keys:
                    await pipe.watch(*share_keys)  # a share written from here on fails EXEC
                    for key in share_keys:
                        shares += [as_bytes(v) for v in await pipe.hvals(key)]
                new_state = decide(None if state is None else as_bytes(state), shares, through)
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.set(keys.STORM_STATE, new_state)
                pipe.set(keys.STORM_JUDGED, through)
                if share_keys:
                    pipe.delete(*share_keys)
                    pipe.zremrangebyscore(keys.STORM_PENDING, "-inf", through)
                if gone:
                    pipe.hdel(keys.STORM_WORKERS, *gone)
                await pipe.execute()
            except WatchError:
                return False
        return True


def _present(workers: dict[bytes | str, bytes | str]) -> tuple[list[float], list[bytes | str]]:
    """The watermarks of the workers heard from within STALE, and the others' names."""
    now = time.time()
    present: list[float] = []
    gone: list[bytes | str] = []
    for name, beat in workers.items():
        watermark, wall = orjson.loads(beat)
        if now - wall <= STALE:
            present.append(float(watermark))
        else:
            gone.append(name)
    return present, gone
