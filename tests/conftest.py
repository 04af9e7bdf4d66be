"""Shared fixtures: real servers on loopback at free ports, started once per session.

``redis_url`` hands each test an empty Redis (FLUSHALL first) and ``client`` a plain client of
it; ``mosquitto`` is one broker for the session (use a topic of your own per test;
``restart()`` keeps its persistence); ``receiver`` is a fresh local HTTP server per test
recording what apprise posts to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from watchtower.state.redis_store import connect

from servers import (
    MosquittoServer,
    Receiver,
    RedisServer,
    find_binary,
    missing_binaries,
    start_receiver,
)


@pytest.fixture(scope="session")
def server_binaries() -> dict[str, str]:
    """Paths of redis-server and mosquitto, installed with apt if missing and root."""
    reason = missing_binaries()
    if reason is not None:
        pytest.skip(f"test servers unavailable: {reason}")
    found = {name: find_binary(name) for name in ("redis-server", "mosquitto")}
    return {name: path for name, path in found.items() if path is not None}


@pytest.fixture(scope="session")
def redis_server(
    server_binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    server = RedisServer(server_binaries["redis-server"], tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client of that Redis: tests read what the store wrote."""
    plain = connect(redis_url)
    yield plain
    await plain.aclose()


@pytest.fixture(scope="session")
def mosquitto(
    server_binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MosquittoServer]:
    server = MosquittoServer(server_binaries["mosquitto"], tmp_path_factory.mktemp("mosquitto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder, runner = await start_receiver()
    try:
        yield recorder
    finally:
        await runner.cleanup()
