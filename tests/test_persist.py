"""Learned models survive a restart through the Redis store's blobs."""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

from watchtower.config import Config, Secret, StateConfig
from watchtower.engine import Engine
from watchtower.mention import from_dict
from watchtower.persist import restore_learned, save_learned
from watchtower.state.redis_store import RedisStore
from watchtower.wiring import build_engine

from test_engine import angry_burst


async def test_models_round_trip_through_redis(redis_url: str) -> None:
    config = Config(state=StateConfig(backend="redis", redis_url=Secret(redis_url)))
    first = build_engine(config, RedisStore.from_config(config))
    mentions = [from_dict({**r, "label": "negative"}, 4000) for r in angry_burst()]
    for i in range(0, len(mentions), 100):
        await first.process(mentions[i : i + 100])
    assert await save_learned(first.store, first)

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
    # Not the bytes: a restored set may iterate (and so pickle) in another order.
    assert _plain(second.storms.state_dict()) == _plain(first.storms.state_dict())
    assert second.sentiment.n_learned == first.sentiment.n_learned > 0


def _plain(blob: bytes) -> Any:
    """A pickled state as plain comparable values: sets sorted, objects as their attributes."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes) and value.startswith(pickle.PROTO):  # the nested baseline
            return plain(pickle.loads(value))  # noqa: S301 - the test's own blobs
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (set, frozenset)):
            return sorted(plain(v) for v in value)
        if isinstance(value, (list, tuple, deque)):
            return [plain(v) for v in value]
        slots = getattr(type(value), "__slots__", ())
        attrs = getattr(value, "__dict__", None) or {s: getattr(value, s) for s in slots}
        return (type(value).__name__, plain(attrs)) if attrs else value

    return plain(pickle.loads(blob))  # noqa: S301 - the test's own blobs
