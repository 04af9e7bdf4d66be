"""RedisStore against a real redis-server: exact round trips, compare-and-set, indexes, TTLs,
and the same alerts as MemoryStore for the same stream."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as redis

from watchtower.config import Config, InputConfig, StateConfig
from watchtower.config_parse import Duration, Secret
from watchtower.engine import Engine
from watchtower.errors import UnreadableStates
from watchtower.mention import Mention, from_dict
from watchtower.state import keys
from watchtower.state.memory import MemoryStore
from watchtower.state.redis_store import RedisStore
from watchtower.state.state_codec import LAYOUT, encode_state
from watchtower.state.store import Store
from watchtower.state.thread_state import Episode, ThreadState, TopMention
from watchtower.synth import generate
from watchtower.wiring import build_engine

TTL = 50.0


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(redis_url, thread_ttl=TTL, max_threads=1000, root_memory=3600.0)
    yield opened
    await opened.close()


def rich_state(thread_id: str = "t/ü {odd}}", last_seen: float = 1_767_600_123.456) -> ThreadState:
    return ThreadState(
        thread_id=thread_id,
        first_seen=last_seen - 0.1 - 0.2,  # 0.30000000000000004 below: no rounding allowed
        last_seen=last_seen,
        count=17,
        rates=[0.1 + 0.2, 5e-324, 1.7976931348623157e308, 1 / 3],
        reach=12.345678901234567,
        max_followers=2_000_000_000,
        negativity_sum=2.0 / 3.0,
        negativity_weight=7.25,
        author_sketch=[1, 2**32 - 1, 12345],
        buckets=[0, 3, 0, 9],
        bucket_start=last_seen - 60.0,
        top=[
            TopMention(2_000_000_000, "m1", "big", "https://x/1", 'ünïcödé "quotes" \n ok'),
            TopMention(5, "m2", None, None, ""),
        ],
        brand="acme",
        platform=None,
        url="https://example.social/t1",
        headline='RT @ann: "lost" my bag \u202e again',
        episode=Episode(
            id="ep-1",
            level="critical",
            started=last_seen - 600.0,
            level_since=last_seen - 30.5,
            last_notified=last_seen - 1e-6,
            notifications=3,
            pending_level="watch",
            pending_since=0.987654321,
            below_since=None,
        ),
    )


async def test_rich_state_round_trips_exactly(store: RedisStore) -> None:
    state = rich_state()
    assert await store.save([state]) == []
    assert state.version == 1
    loaded = await store.load([state.thread_id, "absent"])
    assert loaded == {state.thread_id: state}
    assert [repr(r) for r in loaded[state.thread_id].rates] == [repr(r) for r in state.rates]
    assert await store.thread_count() == 1


async def test_second_writer_of_a_thread_gets_a_conflict(store: RedisStore, redis_url: str) -> None:
    other = RedisStore(redis_url, thread_ttl=TTL, max_threads=1000, root_memory=3600.0)
    reader = RedisStore(
        redis_url, thread_ttl=TTL, max_threads=1000, root_memory=3600.0, cached_threads=0
    )
    try:
        await store.save([rich_state("t1"), rich_state("t2")])
        mine = (await store.load(["t1"]))["t1"]
        theirs = await other.load(["t1", "t2"])
        mine.count, theirs["t1"].count, theirs["t2"].count = 100, 200, 300
        assert await store.save([mine]) == []
        # t1 changed under the second worker: reported, not written; t2 still goes through
        assert await other.save([theirs["t1"], theirs["t2"]]) == ["t1"]
        # read by a worker holding nothing: `store` still holds its own t2, now stale
        after = await reader.load(["t1", "t2"])
        assert (after["t1"].count, after["t1"].version) == (100, 2)
        assert (after["t2"].count, after["t2"].version) == (300, 2)
    finally:
        await other.close()
        await reader.close()


async def test_two_workers_creating_the_same_thread_conflict(store: RedisStore) -> None:
    first, second = rich_state("new"), rich_state("new")
    first.count = 1
    assert await store.save([first]) == []
    assert await store.save([second]) == ["new"]  # it believed the thread absent (version 0)
    assert (await store.load(["new"]))["new"].count == 1


async def test_active_set_follows_the_episode(store: RedisStore) -> None:
    await active_set_follows_the_episode(store)


async def test_memory_active_set_follows_the_episode_as_redis_does() -> None:
    await active_set_follows_the_episode(
        MemoryStore(thread_ttl=TTL, max_threads=10, root_memory=300.0, max_roots=10)
    )


async def active_set_follows_the_episode(store: Store) -> None:
    """Open and pending episodes are active (ticked, kept from expiry, listed by /v1/threads)."""
    firing, pending, idle = rich_state("a:ü}"), rich_state("b"), rich_state("c")
    firing.episode = Episode(id="ep", level="watch")
    pending.episode = Episode(pending_level="watch")
    idle.episode = Episode()
    await store.save([firing, pending, idle])
    assert await store.active_threads() == ["a:ü}", "b"]
    firing.episode = Episode()  # resolved
    await store.save([firing])
    assert await store.active_threads() == ["b"]


async def test_roots_are_forgotten_in_wall_time_too(redis_url: str, client: redis.Redis) -> None:
    short = RedisStore(redis_url, thread_ttl=TTL, max_threads=10, root_memory=0.3)
    try:
        await short.remember_roots({"m1": "r1"}, now=1000.0)
        await short.save([])  # roots are written with the next save, with or without states
        assert 0 < await client.pttl(keys.root_key("m1")) <= 300
        await asyncio.sleep(0.45)
        fresh = RedisStore(redis_url, thread_ttl=TTL, max_threads=10, root_memory=0.3)
        assert await fresh.lookup_roots(["m1"]) == {}  # a new worker: no event time yet
        await fresh.close()
        assert await short.lookup_roots(["m1"]) == {}  # nor the worker that remembered it
    finally:
        await short.close()


async def test_expire_drops_threads_idle_in_event_time(
    store: RedisStore, client: redis.Redis
) -> None:
    states = [rich_state(f"t{at}", last_seen=at) for at in (100.0, 200.0, 300.0)]
    for state in states:
        state.episode = Episode()
    firing = rich_state("firing", last_seen=100.0)  # open episode: resolves, never vanishes
    await store.save([*states, firing])
    assert 0 < await client.pttl(keys.thread_key("t100.0")) <= TTL * 1000  # the wall-time bound
    assert await store.expire(249.9) == 1
    assert await store.expire(250.0) == 1  # last_seen + ttl == now: idle
    assert await store.thread_count() == 2
    assert set(await store.load(["t100.0", "t200.0", "t300.0", "firing"])) == {"t300.0", "firing"}
    assert await store.expire(250.0) == 0
    firing.episode = Episode()  # resolved: now it may go
    await store.save([firing])
    assert await store.expire(250.0) == 1
    assert await store.active_threads() == []


async def test_expire_works_through_more_than_a_chunk(redis_url: str) -> None:
    store = RedisStore(redis_url, thread_ttl=TTL, max_threads=10_000, root_memory=60.0)
    idle = [rich_state(f"i{n}", last_seen=float(n)) for n in range(2500)]
    for state in idle:
        state.episode = Episode()
    # active threads first in the index: expiry must step over them, not stop at them
    active = [rich_state(f"a{n}", last_seen=-1.0 - n) for n in range(1200)]
    try:
        await store.save([*active, *idle])
        assert await store.expire(10_000.0) == 2500
        assert await store.thread_count() == 1200
    finally:
        await store.close()


async def test_size_cap_drops_the_least_recently_seen(redis_url: str) -> None:
    capped = RedisStore(redis_url, thread_ttl=TTL, max_threads=2, root_memory=60.0)
    try:
        await capped.save([rich_state(f"t{at}", last_seen=at) for at in (300.0, 100.0, 200.0)])
        assert await capped.thread_count() == 2
        assert capped.evicted == 1
        assert set(await capped.load(["t100.0", "t200.0", "t300.0"])) == {"t200.0", "t300.0"}
    finally:
        await capped.close()


async def test_blobs_keep_bytes(store: RedisStore) -> None:
    assert await store.get_blob("sentiment") is None
    await store.set_blob("sentiment", b"\x00\xffmodel")
    assert await store.get_blob("sentiment") == b"\x00\xffmodel"


async def test_a_state_of_another_layout_is_refused(store: RedisStore, client: redis.Redis) -> None:
    version, _, *values = orjson.loads(encode_state(rich_state("t"), 1))
    await client.set(keys.thread_key("t"), orjson.dumps([version, "0000beef", *values]))
    with pytest.raises(UnreadableStates, match="layout 0000beef"):
        await store.load(["t"])


def _fields_before(values: list[Any], *, headline: bool, resolved_forecast: bool) -> list[Any]:
    """A state's encoded fields (after the header) as a build without those fields wrote them."""
    names = [f.name for f in dataclasses.fields(ThreadState)]
    names = [n for n in names if n not in ("thread_id", "version", "last_seen")]
    episode = names.index("episode")
    values = list(values)
    if not resolved_forecast:
        values[episode] = values[episode][:-1]  # resolved_forecast is the episode's last field
    if not headline:
        del values[names.index("headline")]
    return values


@pytest.mark.parametrize(
    ("layout", "headline", "resolved_forecast"),
    [("39d9dbc1", False, True), ("3053e026", False, False)],
    ids=["before headline", "before resolved_forecast"],
)
async def test_a_state_written_by_an_earlier_build_is_read(
    store: RedisStore, client: redis.Redis, layout: str, headline: bool, resolved_forecast: bool
) -> None:
    """An upgrade: a thread an earlier build left in Redis (its layout, written without the
    fields added since) loads, each new field at its default."""
    state = rich_state("t")
    state.episode.resolved_forecast = 42.0
    state.headline = "lost my bag"
    version, _, active, last_seen, *values = orjson.loads(encode_state(state, 3))
    values = _fields_before(values, headline=headline, resolved_forecast=resolved_forecast)
    await client.set(
        keys.thread_key("t"), orjson.dumps([version, layout, active, last_seen, *values])
    )
    loaded = (await store.load(["t"]))["t"]
    if not resolved_forecast:
        state.episode.resolved_forecast = 0.0
    state.headline = ""
    assert loaded == dataclasses.replace(state, version=3)
    await store.save([loaded])  # and it is written back in this build's layout
    raw = await client.get(keys.thread_key("t"))
    assert raw is not None
    assert orjson.loads(raw)[1] == LAYOUT != layout


async def test_close_is_idempotent_and_spares_a_borrowed_client(client: redis.Redis) -> None:
    borrowed = RedisStore(client, thread_ttl=TTL, max_threads=10, root_memory=60.0)
    await borrowed.close()
    await borrowed.close()
    assert await client.ping()


async def test_memory_and_redis_agree_on_a_plain_save_load(store: RedisStore) -> None:
    memory = MemoryStore(thread_ttl=TTL, max_threads=1000, root_memory=3600.0, max_roots=1000)
    for backend in (memory, store):
        state = rich_state("same")
        await backend.save([state])
        loaded = (await backend.load(["same"]))["same"]
        assert dataclasses.asdict(loaded) == dataclasses.asdict(rich_state("same")) | {"version": 1}


# --- the same stream through the engine on both backends --------------------------------------


async def run_stream(engine: Engine, mentions: list[Mention], batch: int) -> list[bytes]:
    """Feed ``mentions`` in batches, then let event time run on so that episodes resolve."""
    out: list[bytes] = []
    for start in range(0, len(mentions), batch):
        out += [t.to_json() for t in await engine.process(mentions[start : start + batch])]
    end = mentions[-1].created_at
    for hour in range(1, 7):
        out += [t.to_json() for t in await engine.advance(end + hour * 3600.0)]
    return out


@pytest.mark.parametrize("root_memory", [48 * 3600.0, 300.0])  # 300 s: roots get forgotten
async def test_memory_and_redis_give_the_same_alerts(redis_url: str, root_memory: float) -> None:
    # The default thread_ttl (48 h): MemoryStore expires in activity order, which can drop a
    # thread with an open episode or keep an idle one a little longer (see the lead's note).
    state = StateConfig(backend="redis", redis_url=Secret(redis_url))
    config = Config(state=state, input=InputConfig(root_memory=Duration(root_memory)))
    max_chars = config.input.max_text_chars
    mentions = [from_dict(r, max_chars) for r in generate(seed=3, threads=300, hours=2.0)]
    assert 1000 <= len(mentions) <= 5000
    memory = MemoryStore(
        thread_ttl=state.thread_ttl,
        max_threads=state.max_threads,
        root_memory=config.input.root_memory,
        max_roots=config.input.max_remembered_roots,
    )
    in_redis = RedisStore.from_config(config)
    try:
        by_memory, by_redis = build_engine(config, memory), build_engine(config, in_redis)
        expected = await run_stream(by_memory, mentions, batch=256)
        got = await run_stream(by_redis, mentions, batch=256)
        assert len(expected) > 0  # the stream must raise alerts for the comparison to mean much
        assert got == expected
        assert by_redis.stats.threads_created == by_memory.stats.threads_created
        assert await in_redis.thread_count() == await memory.thread_count()
        assert await in_redis.active_threads() == await memory.active_threads()
    finally:
        await in_redis.close()


async def test_a_flushed_redis_is_noticed_once_by_every_worker(
    store: RedisStore, client: redis.Redis, redis_url: str
) -> None:
    other = RedisStore(redis_url, thread_ttl=TTL, max_threads=1000, root_memory=3600.0)
    try:
        assert not await store.lost_state()  # the first look only notes the epoch
        assert not await other.lost_state()
        await store.save([rich_state("t1")])
        assert not await store.lost_state()
        await client.flushall()  # behind the workers' backs
        assert await store.lost_state()
        assert await other.lost_state()  # it finds the epoch the first one set anew
        assert not await store.lost_state()  # once
        assert not await other.lost_state()
        assert await store.load(["t1"]) == {}  # not served from what the process held
    finally:
        await other.close()
    assert not await MemoryStore(
        thread_ttl=TTL, max_threads=10, root_memory=60.0, max_roots=10
    ).lost_state()
