"""The one place that picks implementations from the config and wires the stages together."""

from __future__ import annotations

import os
import uuid

from watchtower.config import Config
from watchtower.engine import Engine
from watchtower.scoring.sentiment import SentimentModel
from watchtower.state.memory import MemoryStore
from watchtower.state.store import Store


def build_store(config: Config) -> Store:
    if config.state.backend == "redis":
        from watchtower.state.redis_store import RedisStore  # noqa: PLC0415 - optional backend

        return RedisStore.from_config(config)
    return MemoryStore(
        thread_ttl=config.state.thread_ttl,
        max_threads=config.state.max_threads,
        root_memory=config.input.root_memory,
        max_roots=config.input.max_remembered_roots,
    )


def build_engine(config: Config, store: Store | None = None) -> Engine:
    """An engine on ``store``; on a shared store (Redis) its workers judge storms together."""
    store = store or build_store(config)
    sentiment = SentimentModel(config.sentiment)
    if config.state.backend == "redis":
        from watchtower.state.redis_notes import RedisNoteBoard  # noqa: PLC0415 - optional
        from watchtower.state.redis_store import RedisStore  # noqa: PLC0415
        from watchtower.state.redis_storms import RedisStormBoard  # noqa: PLC0415

        if isinstance(store, RedisStore):
            worker = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"  # unique per engine
            storms = RedisStormBoard(store.client, worker)
            notes = RedisNoteBoard(store.client, worker)
            return Engine(config, store, sentiment, storm_board=storms, note_board=notes)
    return Engine(config, store, sentiment)
