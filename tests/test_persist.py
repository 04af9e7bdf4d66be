"""Learned models survive a restart through the Redis store's blobs."""

from __future__ import annotations

from watchtower.config import Config, StateConfig
from watchtower.config_parse import Secret
from watchtower.engine import Engine
from watchtower.mention import from_dict
from watchtower.persist import restore_learned, save_learned
from watchtower.state import keys
from watchtower.state.redis_store import RedisStore
from watchtower.wiring import build_engine

from test_engine import angry_burst


async def test_models_round_trip_through_redis(redis_url: str) -> None:
    config = Config(state=StateConfig(backend="redis", redis_url=Secret(redis_url)))
    store = RedisStore.from_config(config)
    first = build_engine(config, store)
    mentions = [from_dict({**r, "label": "negative"}, 4000) for r in angry_burst()]
    for i in range(0, len(mentions), 100):
        await first.process(mentions[i : i + 100])
    assert await save_learned(first.store, first)

    # Storms are judged on the workers' shared board, not restored from a blob: a stopping
    # worker hands its open bucket over to the others instead.
    open_bucket = first.storms.baseline.next_index
    assert open_bucket is not None
    assert await store.client.zrange(keys.STORM_PENDING, 0, -1) == [str(open_bucket).encode()]
    second = build_engine(config, RedisStore.from_config(config))
    try:
        await _restores(first, second)
    finally:
        await first.store.close()
        await second.store.close()


async def _restores(first: Engine, second: Engine) -> None:
    assert second.momentum.state_dict() != first.momentum.state_dict()
    await restore_learned(second.store, second)
    assert second.momentum.state_dict() == first.momentum.state_dict()
    assert second.sentiment.n_learned == first.sentiment.n_learned > 0
