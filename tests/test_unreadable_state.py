"""A thread state this build cannot read (another build's layout, or corrupt bytes) leaves out
that thread only: the rest of the batch is decided, quiet checks go on, the stored state is left
as it was, and the thread's mentions are dead-lettered as records that can be taken back. A
batch dropped after repeated failures is dead-lettered the same way."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as redis

from watchtower.batcher import Batcher
from watchtower.config import Config, DaemonConfig, InputConfig, StateConfig
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import Daemon
from watchtower.errors import UnreadableStates
from watchtower.mention import from_dict
from watchtower.sources.inbox import Arrival
from watchtower.state import keys
from watchtower.state.redis_store import RedisStore
from watchtower.state.store import load_readable
from watchtower.state.thread_state import DecaySpec, Episode, new_state

from streams import mention

OTHER_LAYOUT = b'[3, "0000beef", 1, 100.0, "a newer build\'s fields"]'
SPEC = DecaySpec.from_half_lives((300.0,), 60.0, 4, 3)


async def _store_unreadable(store: RedisStore, client: redis.Redis, tid: str, raw: bytes) -> None:
    """``tid`` saved as an open episode (so quiet checks visit it), then its bytes replaced."""
    state = new_state(tid, 100.0, SPEC)
    state.episode = Episode(id="ep-old", level="watch")
    await store.save([state])
    await client.set(keys.thread_key(tid), raw)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    """A store holding no states in process: what another worker (or build) wrote is read."""
    opened = RedisStore(
        redis_url, thread_ttl=3600.0, max_threads=100, root_memory=3600.0, cached_threads=0
    )
    yield opened
    await opened.close()


async def test_the_readable_states_load_and_the_others_are_named(
    store: RedisStore, client: redis.Redis
) -> None:
    await store.save([new_state("good", 100.0, SPEC)])
    await _store_unreadable(store, client, "newer", OTHER_LAYOUT)
    await _store_unreadable(store, client, "corrupt", b"\x00not json")
    with pytest.raises(UnreadableStates) as raised:
        await store.load(["good", "newer", "corrupt", "absent"])
    assert set(raised.value.reasons) == {"newer", "corrupt"}
    assert "layout 0000beef" in raised.value.reasons["newer"]
    assert "holds no readable state" in raised.value.reasons["corrupt"]
    states, unreadable = await load_readable(store, ["good", "newer", "corrupt", "absent"])
    assert set(states) == {"good"}
    assert set(unreadable) == {"newer", "corrupt"}


def _daemon(redis_url: str, dead_letter: Path) -> Daemon:
    state = StateConfig(backend="redis", redis_url=Secret(redis_url))
    config = Config(
        state=state,
        input=InputConfig(dead_letter=str(dead_letter)),
        daemon=DaemonConfig(batch_size=10, batch_wait=Duration(0)),
    )
    return Daemon(config, handle_signals=False)


def _arrivals(*records: dict[str, object]) -> list[Arrival]:
    return [Arrival(from_dict(r, 1000), time.perf_counter(), "test") for r in records]


def _dead_letters(path: Path) -> list[dict[str, str]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_an_unreadable_thread_is_left_out_and_the_rest_decided(
    store: RedisStore, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    d = _daemon(redis_url, dead)
    rt = d.runtime
    await _store_unreadable(store, client, "newer", OTHER_LAYOUT)
    kept_as = await client.get(keys.thread_key("newer"))
    reply = mention("r1", 10.0, "still broken", thread_id="newer")
    fresh = [mention(f"f{i}", 10.0 + i, "hello", thread_id="fresh") for i in range(3)]
    await rt.decide(_arrivals(reply, *fresh))

    stored = await rt.store.load(["fresh"])
    assert stored["fresh"].count == 3  # the rest of the batch was decided
    assert await client.get(keys.thread_key("newer")) == kept_as  # left as the other build wrote
    (entry,) = _dead_letters(dead)
    assert (entry["source"], entry["field"]) == ("engine", "(thread state)")
    assert "layout 0000beef" in entry["error"]
    taken_back = from_dict(orjson.loads(entry["record"]), 1000)
    assert taken_back == from_dict(reply, 1000)  # the record as it arrived, exact

    await rt.advance()  # a quiet check visits every open episode, the unreadable one too
    registry = rt.metrics.registry
    assert registry.get_sample_value("watchtower_thread_states_unreadable_total") == 2
    sample = registry.get_sample_value
    assert sample("watchtower_mentions_set_aside_total", {"reason": "unreadable_state"}) == 1
    assert await rt.threads() == []  # the board lists what it can read, and does not fail
    await d.teardown()


async def test_a_dropped_batch_is_dead_lettered(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = tmp_path / "dead.jsonl"
    d = _daemon(redis_url, dead)

    async def broken(arrivals: object) -> list[object]:
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr(d.runtime, "decide", broken)
    monkeypatch.setattr("watchtower.batcher.backoff_delay", lambda attempt: 0.0)
    records = [mention(f"m{i}", float(i), "x") for i in range(2)]
    assert d.runtime.inbox.offer("test", [from_dict(r, 1000) for r in records])
    batcher = Batcher(d.runtime)
    await batcher.process(await batcher.collect())
    entries = _dead_letters(dead)
    assert [e["field"] for e in entries] == ["(batch)", "(batch)"]
    assert "a bug, not an outage" in entries[0]["error"]
    assert [from_dict(orjson.loads(e["record"]), 1000) for e in entries] == [
        from_dict(r, 1000) for r in records
    ]
    sample = d.runtime.metrics.registry.get_sample_value
    assert sample("watchtower_mentions_set_aside_total", {"reason": "batch_dropped"}) == 2
    await d.teardown()
