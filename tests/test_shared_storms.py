"""Brand storms judged together by workers that split one stream: the same storm alerts as one
worker seeing the whole stream, once, with the whole count; a worker that stops or dies does
not hold the others back."""

from __future__ import annotations

import math
import pickle
import random
import time
from collections.abc import Sequence
from typing import Any, Literal

import orjson
import pytest
import redis.asyncio as redis

from test_storms import CFG, bucketed, steady
from watchtower.config import Config, StateConfig
from watchtower.config_parse import Secret
from watchtower.decide.storms import StormWatch
from watchtower.engine import Engine
from watchtower.mention import Mention
from watchtower.persist import save_learned
from watchtower.scoring.baseline import Partial
from watchtower.scoring.sentiment import SentimentConfig, SentimentModel
from watchtower.state import keys
from watchtower.state.redis_store import RedisStore
from watchtower.state.redis_storms import RedisStormBoard
from watchtower.synth import DEFAULT_START, generate
from watchtower.wiring import build_engine

from streams import with_threads


def one_watch(mentions: Sequence[Mention], end: float) -> list[bytes]:
    watch = StormWatch(CFG)
    out = [t for m in mentions for t in watch.observe(m, m.id, 1.0)]
    return [t.to_json() for t in out + watch.advance(end)]


def shared_watches(mentions: Sequence[Mention], end: float, workers: int) -> list[bytes]:
    """Each mention to a random worker; every 50 mentions all close what they can and one
    judges what all have closed (what the board lets through)."""
    rng = random.Random(workers)
    local = [StormWatch(CFG, collect=True) for _ in range(workers)]
    judge = StormWatch(CFG)
    waiting: list[Partial] = []
    out = []

    def judged(now: float) -> list[bytes]:
        for w in local:
            w.advance(now)
            waiting.extend(w.take_partials())
        through = math.floor(now / CFG.bucket) - 1
        due = [p for p in waiting if p.index <= through]
        waiting[:] = [p for p in waiting if p.index > through]
        return [t.to_json() for t in judge.judge(due, through)]

    for i, m in enumerate(mentions):
        local[rng.randrange(workers)].observe(m, m.id, 1.0)
        if i % 50 == 0:
            out += judged(m.created_at)
    return out + judged(end)


@pytest.mark.parametrize("burst", [120, 40])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shares_judged_together_decide_as_one_watch(burst: int, workers: int) -> None:
    mentions = bucketed([*steady(24), burst, burst, *[12] * 12])
    end = mentions[-1].created_at + 3 * 3600
    expected = one_watch(mentions, end)
    assert len(expected) == 2  # fired and resolved: the comparison means something
    assert shared_watches(mentions, end, workers) == expected


def test_alone_two_workers_each_see_part_of_a_storm_that_judged_together_is_whole() -> None:
    """Why shares are pooled: 40 complaints a bucket against 12 expected, split in two, read
    as about 20 on each worker (which may fire, or not, on its half)."""
    mentions = bucketed([*steady(24), 40, 40, *[12] * 12])
    end = mentions[-1].created_at + 3 * 3600
    rng = random.Random(2)
    alone = [StormWatch(CFG), StormWatch(CFG)]
    out = [t for m in mentions for t in alone[rng.randrange(2)].observe(m, m.id, 1.0)]
    out += alone[0].advance(end) + alone[1].advance(end)
    assert all(t.explanation["observed"] < 30 for t in out if t.state == "firing")
    fired, _ = (orjson.loads(t) for t in shared_watches(mentions, end, 2))
    assert fired["explanation"]["observed"] == 40


# --- on Redis, through the engine ------------------------------------------------------------


def _config(backend: Literal["memory", "redis"], redis_url: str) -> Config:
    state = StateConfig(backend=backend, redis_url=Secret(redis_url))
    # no learning from labels: every worker then reads each text as the lone engine does
    return Config(state=state, sentiment=SentimentConfig(learn=False))


def _outage() -> list[Mention]:
    """A synthetic outage, each mention naming its thread: a reply handled by one worker before
    its parent reaches the other would otherwise start a thread of its own (roots are the
    thread store's business, not the storms')."""
    return with_threads(
        generate(5, 600, 6.0, outage_at=DEFAULT_START + 4 * 3600, outage_brand="shopfast")
    )


async def _feed(
    engines: Sequence[Engine], mentions: list[Mention], seed: int = 1
) -> tuple[list[bytes], set[int]]:
    """Mentions in time order, each batch split at random among ``engines``; then time runs
    on for all. The storm transitions in order, and the storms open as the workers' gauges
    add up after each batch."""
    rng = random.Random(seed)
    out = []
    gauge = set()
    for start in range(0, len(mentions), 64):
        parts: list[list[Mention]] = [[] for _ in engines]
        for m in mentions[start : start + 64]:
            parts[rng.randrange(len(engines))].append(m)
        turns = list(zip(engines, parts, strict=True))
        rng.shuffle(turns)  # whichever worker comes last into a bucket judges it
        for engine, part in turns:
            out += await engine.process(part)
        gauge.add(sum(e.storms_firing for e in engines))
    end = mentions[-1].created_at
    for hour in range(1, 4):
        for engine in engines:
            out += await engine.advance(end + hour * 3600.0)
    return [t.to_json() for t in out if t.level == "storm"], gauge


async def test_two_workers_on_redis_raise_the_storm_one_engine_sees(redis_url: str) -> None:
    mentions = _outage()
    alone, gauge = await _feed([build_engine(_config("memory", redis_url))], mentions)
    assert [orjson.loads(t)["state"] for t in alone] == ["firing", "resolved"]
    assert gauge == {0, 1}
    config = _config("redis", redis_url)
    workers = [build_engine(config, RedisStore.from_config(config)) for _ in range(2)]
    try:
        together, gauge = await _feed(workers, mentions)
    finally:
        for w in workers:
            await w.store.close()
    assert together == alone  # once, with the whole count, at the same event time
    assert gauge == {0, 1}  # the workers' storms_firing add up to the one storm


async def test_a_stopping_worker_hands_over_and_a_dead_one_is_not_waited_for(
    redis_url: str, client: redis.Redis
) -> None:
    config = _config("redis", redis_url)
    first, second = (build_engine(config, RedisStore.from_config(config)) for _ in range(2))
    mentions = bucketed([12] * 3)
    try:
        await first.process(mentions[:12])
        await second.process(mentions[12:])  # the second and third buckets
        # a third worker that went silent ten minutes ago, still in the first bucket
        gone = orjson.dumps([mentions[0].created_at, time.time() - 600])
        await client.hset(keys.STORM_WORKERS, "dead", gone)
        await save_learned(first.store, first)  # first stops: hands over, no longer waited for
        assert second.shared is not None
        board = second.shared.board
        assert isinstance(board, RedisStormBoard)
        assert set(await client.hkeys(keys.STORM_WORKERS)) == {board.publisher.encode(), b"dead"}
        await second.advance(mentions[-1].created_at + CFG.bucket)
        judged = await client.get(keys.STORM_JUDGED)
        assert judged is not None
        assert int(judged) == math.floor(mentions[-1].created_at / CFG.bucket)  # all three
        assert await client.hkeys(keys.STORM_WORKERS) == [board.publisher.encode()]  # dead: gone
        assert await client.zrange(keys.STORM_PENDING, 0, -1) == []  # every share judged
        state = await client.get(keys.STORM_STATE)
        assert isinstance(state, bytes)
        history = pickle.loads(state)  # noqa: S301 - ours
        rows = pickle.loads(history["baseline"])["brands"]["acme"].history  # noqa: S301
        assert [row.threads for row in rows] == [12, 12, 12]  # first's share counted too
    finally:
        await first.store.close()
        await second.store.close()


class _FailingOnce:
    """The Redis board, but its first publish fails as an outage would (a fault injected)."""

    def __init__(self, board: RedisStormBoard) -> None:
        self.board = board
        self.failed = False

    async def publish(self, shares: Sequence[tuple[int, bytes]], watermark: float | None) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("Redis went away")
        await self.board.publish(shares, watermark)

    async def leave(self) -> None:
        await self.board.leave()

    async def judge(self, width: float, decide: Any) -> bool:
        return await self.board.judge(width, decide)


async def test_a_store_outage_defers_the_shares_and_fails_no_batch_nor_a_reload(
    redis_url: str, client: redis.Redis
) -> None:
    config = _config("redis", redis_url)
    store = RedisStore.from_config(config)
    board = _FailingOnce(RedisStormBoard(store.client, "failing-once"))
    engine = Engine(config, store, SentimentModel(config.sentiment), storm_board=board)
    mentions = bucketed([12] * 3)
    try:
        await engine.process(mentions[:14])  # closes the first bucket: its publish fails
        assert board.failed
        assert await client.zrange(keys.STORM_PENDING, 0, -1) == []
        engine.reconfigure(config)  # a reload meanwhile keeps the share
        await engine.process(mentions[14:])  # the kept share goes out with the next
        judged = await client.get(keys.STORM_JUDGED)
        assert judged is not None
        assert int(judged) == math.floor(mentions[-1].created_at / CFG.bucket) - 1
        state = await client.get(keys.STORM_STATE)
        assert isinstance(state, bytes)
        rows = pickle.loads(pickle.loads(state)["baseline"])["brands"]["acme"].history  # noqa: S301
        assert [row.threads for row in rows] == [12, 12]  # nothing lost
    finally:
        await store.close()
