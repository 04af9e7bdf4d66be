"""The thread states RedisStore holds in process: read without a round trip, yet never stale in
effect (the save's compare-and-set catches another worker's change), counted against a real
redis-server; and the same alerts as MemoryStore while another worker keeps moving versions on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from test_redis_roots import Commands
from test_redis_store import rich_state, run_stream
from watchtower.config import Config, StateConfig
from watchtower.config_parse import Secret
from watchtower.mention import from_dict
from watchtower.state.redis_store import RedisStore
from watchtower.state.thread_state import Episode
from watchtower.synth import generate
from watchtower.wiring import build_engine

TTL = 50.0


def opened(url: str, **options: Any) -> RedisStore:
    return RedisStore(url, thread_ttl=TTL, max_threads=1000, root_memory=3600.0, **options)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    worker = opened(redis_url)
    yield worker
    await worker.close()


@pytest.fixture
async def other(redis_url: str) -> AsyncIterator[RedisStore]:
    """A second worker on the same Redis, holding nothing in process."""
    worker = opened(redis_url, cached_threads=0)
    yield worker
    await worker.close()


async def test_a_worker_reads_what_it_saved_without_asking_redis(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = Commands(store, monkeypatch)
    await store.save([rich_state("t1")])
    assert commands.take() == ["save"]
    loaded = await store.load(["t1"])
    assert commands.take() == []
    assert (loaded["t1"].count, loaded["t1"].version) == (rich_state().count, 1)
    loaded["t1"].count = 99
    await store.save(loaded.values())
    assert (await store.load(["t1"]))["t1"].count == 99
    assert commands.take() == ["save"]


async def test_a_state_handed_out_and_not_saved_is_read_from_redis_again(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that failed midway left its states half changed: the retry starts from Redis."""
    await store.save([rich_state("t1")])
    commands = Commands(store, monkeypatch)
    half_done = (await store.load(["t1"]))["t1"]
    half_done.count = 1000
    again = (await store.load(["t1"]))["t1"]
    assert commands.take() == ["MGET"]
    assert (again.count, again.version) == (rich_state().count, 1)


async def test_a_reader_that_keeps_them_leaves_them_held(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save([rich_state("t1")])
    commands = Commands(store, monkeypatch)
    for _ in range(2):
        assert list(await store.load(["t1"], keep=True)) == ["t1"]
    assert list(await store.load(["t1"])) == ["t1"]
    assert commands.take() == []


async def test_a_thread_another_worker_changed_conflicts_then_loads_fresh(
    store: RedisStore, other: RedisStore
) -> None:
    await store.save([rich_state("t1")])
    theirs = (await other.load(["t1"]))["t1"]
    theirs.count = 500
    assert await other.save([theirs]) == []
    stale = (await store.load(["t1"]))["t1"]  # held here: version 1, Redis has 2
    assert (stale.count, stale.version) == (rich_state().count, 1)
    stale.count += 1
    assert await store.save([stale]) == ["t1"]
    fresh = (await store.load(["t1"]))["t1"]
    assert (fresh.count, fresh.version) == (500, 2)


async def test_new_threads_are_not_asked_for_and_a_wrong_guess_conflicts(
    store: RedisStore, other: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await other.save([rich_state("old")])
    commands = Commands(store, monkeypatch)
    assert await store.load(["new", "old"], new={"new", "old"}) == {}
    assert commands.take() == []
    guessed = rich_state("old")  # built as new: version 0
    guessed.version = 0
    assert await store.save([guessed]) == ["old"]
    assert (await store.load(["old"]))["old"].version == 1


async def test_threads_dropped_in_redis_are_not_held(redis_url: str) -> None:
    capped = RedisStore(redis_url, thread_ttl=TTL, max_threads=2, root_memory=3600.0)
    try:
        states = [rich_state(t, last_seen=100.0 + i) for i, t in enumerate("abc")]
        for state in states:
            state.episode = Episode()  # no alert open or pending: free to expire
        await capped.save(states)
        assert sorted(await capped.load(["a", "b", "c"], keep=True)) == ["b", "c"]  # a evicted
        await capped.expire(101.0 + TTL)  # b idle past its TTL in event time
        assert sorted(await capped.load(["a", "b", "c"], keep=True)) == ["c"]
    finally:
        await capped.close()


@pytest.mark.parametrize("cached_threads", [1, 20_000])
async def test_held_states_give_the_same_alerts_as_memory_while_versions_move_on(
    redis_url: str, other: RedisStore, cached_threads: int
) -> None:
    """Every third batch another worker re-saves (unchanged) threads this one holds: their
    versions move on under it, so its next batch meets conflicts and redoes them from Redis."""
    mentions = [from_dict(r, 4000) for r in generate(seed=5, threads=200, hours=2.0)]
    expected = await run_stream(build_engine(Config()), mentions, 64)  # the memory store
    assert len(expected) > 0
    state = StateConfig(backend="redis", redis_url=Secret(redis_url), cached_threads=cached_threads)
    store = RedisStore.from_config(Config(state=state))
    engine = build_engine(Config(state=state), store)
    got = []
    try:
        for number, start in enumerate(range(0, len(mentions), 64)):
            batch = mentions[start : start + 64]
            got += [t.to_json() for t in await engine.process(batch)]
            if number % 3 == 0:
                touched = sorted({m.thread_id or m.parent or m.id for m in batch})
                moved = await other.load(touched)
                assert await other.save(moved.values()) == []
        for hour in range(1, 7):  # as run_stream ends: event time runs on, episodes resolve
            got += [
                t.to_json() for t in await engine.advance(mentions[-1].created_at + hour * 3600)
            ]
    finally:
        await store.close()
    assert got == expected
    if cached_threads > 1:
        assert engine.stats.redone >= 20  # the conflicts this is about did happen
