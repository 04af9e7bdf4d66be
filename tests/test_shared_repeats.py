"""Repeats across workers: a mention one worker decided, redelivered to another that shares
its Redis (an MQTT shared subscription, a client resending to another replica), is dropped
there too, against a real redis-server; a store of one process leaves it to the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from watchtower.config import Config, InputConfig, StateConfig
from watchtower.config_parse import Secret
from watchtower.engine import Engine
from watchtower.mention import Mention, from_dict
from watchtower.state import keys
from watchtower.state.memory import MemoryStore
from watchtower.state.redis_store import RedisStore
from watchtower.state.thread_state import ThreadState
from watchtower.wiring import build_engine

from servers import RedisServer
from streams import mention

ANGRY = "@acme you lost my bag again, worst airline ever, furious and disgusted"


def shared(url: str, remembered_ids: int = 200_000) -> Config:
    state = StateConfig(backend="redis", redis_url=Secret(url), cached_threads=0)
    return Config(state=state, input=InputConfig(remembered_ids=remembered_ids))


def decoded(*records: dict[str, Any]) -> list[Mention]:
    return [from_dict(r, 4000) for r in records]


def six() -> list[dict[str, Any]]:
    """Six complaints from six people, replies to the first: nothing fires for them."""
    return [mention(f"d{i}", 10 * i, ANGRY, parent="d0" if i else None) for i in range(6)]


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[list[Engine]]:
    engines = [build_engine(shared(redis_url)) for _ in range(2)]
    yield engines
    for engine in engines:
        await engine.store.close()


async def test_a_mention_decided_by_one_worker_is_a_repeat_at_another(
    workers: list[Engine], client: aioredis.Redis
) -> None:
    a, b = workers
    await a.process(decoded(*six()))
    root_of_d3 = await client.get(keys.root_key("d3"))
    # d3 again at B, later in event time (its root would be remembered anew), with a reply to it
    await b.process(decoded(six()[3], mention("d6", 600, ANGRY, parent="d3")))
    assert (b.stats.mentions, b.stats.repeats) == (1, 1)
    assert (await b.store.load(["d0"]))["d0"].count == 7  # d0..d5 once each, and d6
    assert await client.get(keys.root_key("d3")) == root_of_d3  # not remembered again
    assert await b.store.lookup_roots(["d6"]) == {"d6": "d0"}  # the reply found its thread
    assert await b.store.thread_count() == 1


async def test_six_complaints_delivered_eight_times_to_two_workers_fire_nothing(
    workers: list[Engine],
) -> None:
    """The whole stream eight times over, each copy's batches dealt to both workers."""
    fired = []
    for copy in range(8):
        for i, record in enumerate(six()):
            fired += await workers[(copy + i) % 2].process(decoded(record))
    assert fired == []
    assert (await workers[0].store.load(["d0"]))["d0"].count == 6
    assert sum(w.stats.mentions for w in workers) == 6
    assert sum(w.stats.repeats for w in workers) == 42


async def test_remembered_ids_0_turns_the_shared_check_off(redis_url: str) -> None:
    a, b = (build_engine(shared(redis_url, remembered_ids=0)) for _ in range(2))
    try:
        await a.process(decoded(*six()))
        await b.process(decoded(six()[3]))
        assert (b.stats.mentions, b.stats.repeats) == (1, 0)
        assert (await b.store.load(["d0"]))["d0"].count == 7  # as before the check: twice
    finally:
        await a.store.close()
        await b.store.close()


@pytest.mark.parametrize("cached_roots", [0, 100_000])
async def test_a_batch_that_failed_at_its_save_is_no_repeat_of_itself(
    server_binaries: dict[str, str], tmp_path: Path, cached_roots: int
) -> None:
    """Redis goes down just before the batch's save: its roots wait in process. A quiet check
    writes them (``advance`` saves) before the retry, at which the store says "decided" (from
    the roots it holds in process, or from Redis): the engine knows better."""
    server = RedisServer(server_binaries["redis-server"], tmp_path)
    store = RedisStore(
        server.url, thread_ttl=48 * 3600, max_threads=1000, root_memory=48 * 3600,
        cached_roots=cached_roots,
    )  # fmt: skip
    engine = build_engine(shared(server.url), store)
    batch = decoded(*six())
    save = store.save

    async def outage_then_save(states: Iterable[ThreadState]) -> list[str]:
        server.stop()  # the fault: the real save then fails against a stopped server
        return await save(states)

    try:
        store.save = outage_then_save  # type: ignore[method-assign]
        with pytest.raises(redis.exceptions.ConnectionError):
            await engine.process(batch)
        store.save = save  # type: ignore[method-assign]
        server = RedisServer(server_binaries["redis-server"], tmp_path, port=server.port)
        await engine.advance(batch[-1].created_at + 3600)  # quiet checks are due: a save
        assert await store.client.exists(keys.root_key("d3"))
        await engine.process(batch)
        assert engine.stats.repeats == 0
        assert (await store.load(["d0"]))["d0"].count == 6  # each mention once
        await engine.process(batch)  # now decided: repeats
        assert engine.stats.repeats == 6
    finally:
        await store.close()
        server.stop()


async def test_redis_answers_the_ids_some_worker_decided_with_the_parents(redis_url: str) -> None:
    a, b = (
        RedisStore(redis_url, thread_ttl=3600, max_threads=10, root_memory=3600, cached_roots=n)
        for n in (100, 0)
    )
    try:
        await a.remember_roots({"m1": "r1", "m2": "r1"}, now=0.0)
        assert await b.lookup_batch(["m1"], ["m2", "m3"]) == ({}, set())  # A has not saved
        await a.save([])
        assert await b.lookup_batch(["m1"], ["m2", "m3"]) == ({"m1": "r1", "m2": "r1"}, {"m2"})
        await a.remember_roots({"m3": "r1"}, now=1.0)
        # held here: remembered by this worker, which knows whether it decided it
        assert await a.lookup_batch([], ["m3"]) == ({"m3": "r1"}, {"m3"})
    finally:
        await a.close()
        await b.close()


async def test_a_store_of_one_process_answers_none_decided() -> None:
    """It remembers roots before the batch is decided: the engine's memory is the answer."""
    store = MemoryStore(thread_ttl=3600, max_threads=10, root_memory=3600, max_roots=10)
    await store.remember_roots({"m1": "r1", "m2": "r1"}, now=0.0)
    assert await store.lookup_batch(["m1", "x"], ["m2"]) == ({"m1": "r1"}, set())


async def test_a_memory_batch_that_failed_is_no_repeat_of_itself() -> None:
    """The batch fails after its roots were remembered (here the sentiment stage breaks): the
    retry decides it all."""
    engine = build_engine(Config())
    batch = decoded(*six())
    negativity = engine.sentiment.negativity

    def broken(text: str) -> float:
        raise RuntimeError("sentiment broke")

    engine.sentiment.negativity = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await engine.process(batch)
    assert await engine.store.lookup_roots(["d3"]) == {"d3": "d0"}  # remembered, undecided
    engine.sentiment.negativity = negativity  # type: ignore[method-assign]
    await engine.process(batch)
    assert engine.stats.repeats == 0
    assert (await engine.store.load(["d0"]))["d0"].count == 6
