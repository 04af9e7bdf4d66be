"""RedisStore's round trips per batch, and the thread roots it holds in process: counted against
a real redis-server, and the same roots (and alerts) as MemoryStore or a fresh worker would give."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

from test_redis_store import rich_state, run_stream
from watchtower.config import Config, InputConfig, StateConfig
from watchtower.config_parse import Duration, Secret
from watchtower.mention import Mention, from_dict
from watchtower.state import keys, redis_scripts
from watchtower.state.redis_store import RedisStore
from watchtower.synth import generate
from watchtower.threads import resolve_roots
from watchtower.wiring import build_engine

TTL = 50.0
_SCRIPTS = {
    hashlib.sha1(text.encode()).hexdigest(): name  # noqa: S324 - Redis names scripts by SHA-1
    for name, text in (
        ("save", redis_scripts.SAVE),
        ("drop", redis_scripts.DROP),
        ("lookup", redis_scripts.LOOKUP),
    )
}


class Commands:
    """The commands a store's client sends, one per round trip, EVALSHA named by its script.

    Recorded when answered: the one-off NOSCRIPT miss and SCRIPT LOAD of a script new to the
    server are left out, so counts do not depend on which test ran first.
    """

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        send: Callable[..., Awaitable[Any]] = store.client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            reply = await send(*args, **options)
            name = str(args[0]).upper()
            if not name.startswith("SCRIPT"):
                self.sent.append(_SCRIPTS[str(args[1])] if name == "EVALSHA" else name)
            return reply

        monkeypatch.setattr(store.client, "execute_command", counted)

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


def m(mid: str, at: float = 0.0, **links: str) -> Mention:
    return Mention(id=mid, created_at=at, text="", **links)  # type: ignore[arg-type]


def opened(url: str, root_memory: float = 3600.0, **options: Any) -> RedisStore:
    return RedisStore(url, thread_ttl=TTL, max_threads=1000, root_memory=root_memory, **options)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    worker = opened(redis_url)
    yield worker
    await worker.close()


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cached_threads", "remembered_ids", "later"),
    [
        (0, 200_000, ["lookup", "MGET", "save"]),
        (20_000, 200_000, ["lookup", "save"]),
        (20_000, 0, ["save"]),  # no repeat check
    ],
)
async def test_a_batch_is_a_lookup_one_save_and_at_most_one_load(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    cached_threads: int,
    remembered_ids: int,
    later: list[str],
) -> None:
    """The engine on a stream whose parents it has all seen: one lookup, of the batch's own
    ids (did another worker decide them? the parents' lookups are answered in process, and
    would share the call), the save script (the roots ride along), and an MGET of the batch's
    threads unless this worker holds them all or their root posts are in the batch (as in the
    first batch: every thread in it begins there)."""
    config = Config(
        state=StateConfig(
            backend="redis", redis_url=Secret(redis_url), cached_threads=cached_threads
        ),
        input=InputConfig(remembered_ids=remembered_ids),
    )
    mentions = [from_dict(r, 4000) for r in generate(seed=3, threads=300, hours=2.0)]
    batches = [mentions[start : start + 100] for start in range(0, len(mentions), 100)]
    seen: set[str] = set()
    linked_across = 0  # mentions whose parent came in an earlier batch: lookups to avoid
    for batch in batches:
        linked_across += sum(1 for x in batch if x.thread_id is None and x.parent in seen)
        seen.update(x.id for x in batch)
    assert linked_across > 500
    store = RedisStore.from_config(config)
    commands = Commands(store, monkeypatch)
    engine = build_engine(config, store)
    try:
        for number, batch in enumerate(batches):
            await engine.process(batch)
            # ticks add expiry and the active set: not the batch's own work
            tick_work = {"ZRANGEBYSCORE", "SMEMBERS", "drop"}
            sent = [c for c in commands.take() if c not in tick_work]
            assert sent == (later if number else [c for c in later if c != "MGET"])
    finally:
        await store.close()


async def test_roots_across_batches_restarts_and_workers(
    store: RedisStore, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = Commands(store, monkeypatch)
    assert await resolve_roots([m("a"), m("b", reply_to="a")], store) == ["a", "a"]
    assert commands.take() == []  # parent in the batch; roots wait for the save
    assert await store.save([rich_state("a")]) == []
    assert commands.take() == ["save"]  # state and roots in one call
    assert await resolve_roots([m("c", reply_to="b", at=10.0)], store) == ["a"]
    assert commands.take() == []  # b's root is held here
    await store.close()  # c's root was never saved: close writes it
    assert commands.take() == ["save"]

    for _ in range(2):  # a restarted worker (or another one on the subscription): held nowhere
        worker = opened(redis_url)
        counted = Commands(worker, monkeypatch)
        try:
            assert await resolve_roots([m("d", reply_to="c", at=20.0)], worker) == ["a"]
            assert await resolve_roots([m("e", reply_to="c", at=30.0)], worker) == ["a"]
            assert counted.take() == ["lookup"]  # c once, then held
            await worker.save([])
        finally:
            await worker.close()


async def test_a_miss_is_asked_again(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a cached "unknown": another worker may remember the parent meanwhile."""
    commands = Commands(store, monkeypatch)
    assert await resolve_roots([m("x", reply_to="p")], store) == ["p"]
    await store.save([])
    assert await resolve_roots([m("y", reply_to="p")], store) == ["p"]
    assert commands.take() == ["lookup", "save", "lookup"]


async def test_roots_are_written_even_with_no_state_and_once_per_retry(
    store: RedisStore, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = Commands(store, monkeypatch)
    await store.remember_roots({"m1": "r1"}, now=1000.0)
    assert await client.get(keys.root_key("m1")) is None  # not yet
    first, second = rich_state("new"), rich_state("new")
    assert await store.save([first]) == []
    await store.remember_roots({"m2": "r2"}, now=1000.0)
    assert await store.save([second]) == ["new"]  # a conflict: the engine saves again
    assert await store.save([]) == []  # nothing left: no round trip
    assert commands.take() == ["save", "save"]
    assert await client.mget([keys.root_key("m1"), keys.root_key("m2")]) == [
        b"4600.0|r1",
        b"4600.0|r2",
    ]


async def test_roots_of_a_failed_save_go_with_the_next(
    store: RedisStore, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = store._save_script
    failures = iter([RedisConnectionError("injected")])

    async def failing_once(**arguments: Any) -> Any:
        for failure in failures:
            raise failure
        return await save(**arguments)

    monkeypatch.setattr(store, "_save_script", failing_once)
    await store.remember_roots({"m0": "r0", "m1": "r1"}, now=1000.0)
    with pytest.raises(RedisConnectionError):
        await store.save([rich_state("t")])
    await store.remember_roots({"m1": "r2", "m2": "r2"}, now=1001.0)  # the newer value wins
    assert await store.save([rich_state("t")]) == []
    assert await client.mget([keys.root_key(f"m{n}") for n in range(3)]) == [
        b"4600.0|r0",
        b"4601.0|r2",
        b"4601.0|r2",
    ]


async def test_a_lookup_past_the_held_roots_writes_the_unsaved_first(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    uncached = opened(redis_url, cached_roots=0)
    commands = Commands(uncached, monkeypatch)
    try:
        await uncached.remember_roots({"m1": "r1"}, now=1000.0)
        assert await uncached.lookup_roots(["m1"]) == {"m1": "r1"}
        assert commands.take() == ["save", "lookup"]
    finally:
        await uncached.close()


# --- the roots held in process ----------------------------------------------------------------


async def test_held_roots_are_capped_by_count(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = opened(redis_url, cached_roots=2)
    commands = Commands(small, monkeypatch)
    try:
        await small.remember_roots({f"m{n}": f"r{n}" for n in range(4)}, now=1000.0)
        await small.save([])
        commands.take()
        assert await small.lookup_roots(["m2", "m3"]) == {"m2": "r2", "m3": "r3"}
        assert commands.take() == []
        assert await small.lookup_roots(["m0", "m3"]) == {"m0": "r0", "m3": "r3"}
        assert commands.take() == ["lookup"]  # m0 was dropped here, not from Redis
    finally:
        await small.close()


@pytest.mark.parametrize("cached_roots", [0, 10])
async def test_roots_are_forgotten_in_event_time_held_or_not(
    redis_url: str, cached_roots: int
) -> None:
    store = opened(redis_url, cached_roots=cached_roots)
    try:
        await store.remember_roots({"m1": "r1", "m2": "r1", "m3": "m3"}, now=1000.0)
        await store.save([])
        assert await store.lookup_roots(["m1", "m3", "zz"]) == {"m1": "r1", "m3": "m3"}
        await store.remember_roots({"m4": "r|odd"}, now=1000.0 + 3599.0)
        assert await store.lookup_roots(["m1", "m4"]) == {"m1": "r1", "m4": "r|odd"}
        await store.remember_roots({}, now=1000.0 + 3600.0)  # root_memory is 3600 s
        assert await store.lookup_roots(["m1", "m2", "m4"]) == {"m4": "r|odd"}
        await store.remember_roots({"m1": "r9"}, now=500.0)  # late batch: time does not rewind
        assert await store.lookup_roots(["m1"]) == {}
    finally:
        await store.close()


async def test_a_root_looked_up_keeps_the_wall_deadline_redis_gave_it(redis_url: str) -> None:
    writer, reader = opened(redis_url, root_memory=0.4), opened(redis_url, root_memory=0.4)
    try:
        await writer.remember_roots({"m1": "r1"}, now=1000.0)
        await writer.save([])
        await asyncio.sleep(0.25)
        assert await reader.lookup_roots(["m1"]) == {"m1": "r1"}  # now held by the reader too
        await asyncio.sleep(0.25)  # gone from Redis, though 0.4 s from the reader's lookup
        assert await reader.lookup_roots(["m1"]) == {}
        assert await writer.lookup_roots(["m1"]) == {}
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.parametrize(("batch", "cached_roots"), [(16, 50), (300, 100_000)])
async def test_held_roots_give_the_same_alerts_as_memory(
    redis_url: str, batch: int, cached_roots: int
) -> None:
    """Small batches and a cache too small for the stream: misses go to Redis, same alerts."""
    config = Config(input=InputConfig(root_memory=Duration(1800.0)))
    mentions = [from_dict(r, 4000) for r in generate(seed=5, threads=200, hours=2.0)]
    in_redis = RedisStore(
        redis_url,
        thread_ttl=config.state.thread_ttl,
        max_threads=config.state.max_threads,
        root_memory=config.input.root_memory,
        cached_roots=cached_roots,
    )
    try:
        expected = await run_stream(build_engine(config), mentions, batch)  # the memory store
        assert len(expected) > 0
        assert await run_stream(build_engine(config, in_redis), mentions, batch) == expected
    finally:
        await in_redis.close()
