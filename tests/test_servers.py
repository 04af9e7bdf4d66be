"""The test servers themselves: they answer, they are ours, and they do what the fixtures say."""

from __future__ import annotations

import asyncio
import warnings

import aiohttp
import aiomqtt
import pytest

from watchtower.state.redis_store import connect

from servers import MosquittoServer, Receiver, RedisServer, redis_command


async def test_redis_answers_on_its_own_port(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_server.port not in (6379, 1883)
    client = connect(redis_url)
    try:
        assert await client.ping()
        await client.set("wt-smoke", b"1")
        assert await client.get("wt-smoke") == b"1"
    finally:
        await client.aclose()


@pytest.mark.parametrize("round_", [1, 2])
async def test_each_test_gets_an_empty_redis(redis_url: str, round_: int) -> None:
    client = connect(redis_url)
    try:
        assert await client.dbsize() == 0  # the other round's key is gone
        await client.set(f"left-over-{round_}", b"x")
    finally:
        await client.aclose()


def test_redis_command_speaks_resp(redis_server: RedisServer) -> None:
    assert redis_command(redis_server.port, "ECHO", "héllo") == "$6\r\nhéllo\r\n".encode()


async def test_mosquitto_keeps_queued_messages_across_restart(mosquitto: MosquittoServer) -> None:
    assert mosquitto.port not in (6379, 1883)
    topic = "wt-test/servers/restart"
    host, port = mosquitto.host, mosquitto.port
    async with aiomqtt.Client(host, port, identifier="wt-smoke", clean_session=False) as sub:
        await sub.subscribe(topic, qos=1)
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pub:
        await pub.publish(topic, b"kept", qos=1)
    mosquitto.restart()  # the queued message must survive in the persistence file
    async with aiomqtt.Client(host, port, identifier="wt-smoke", clean_session=False) as sub:
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))
    assert message.payload == b"kept"


async def test_receiver_records_json_and_form_and_fails_on_demand(receiver: Receiver) -> None:
    receiver.fail_next(1)
    async with aiohttp.ClientSession() as http:
        base = receiver.url("/hook", scheme="http")
        async with http.post(base, json={"a": 1}) as first:
            assert first.status == 500
        async with http.post(base, json={"a": 2}) as second:
            assert second.status == 200
        async with http.post(base + "/form", data={"b": "x"}) as third:
            assert third.status == 200
    got = await receiver.wait_for(3)
    assert [r.data for r in got] == [{"a": 1}, {"a": 2}, {"b": "x"}]
    assert [r.path for r in got] == ["/hook", "/hook", "/hook/form"]
    assert receiver.url("/p") == f"json://127.0.0.1:{receiver.port}/p"


async def test_receiver_fails_a_path_and_each_bodys_first_attempts(receiver: Receiver) -> None:
    receiver.fail_path("/bad")
    receiver.fail_first(2)
    base = receiver.url("", scheme="http")
    async with aiohttp.ClientSession() as http:
        for path, n in [("/a", 1), ("/a", 1), ("/a", 2), ("/a", 1), ("/a", 2), ("/a", 2)] * 2:
            async with http.post(base + path, json={"n": n}):
                pass
        for _ in range(4):
            async with http.post(base + "/bad", json={"n": 3}):
                pass
    statuses = [r.status for r in receiver.requests]
    assert statuses == [500, 500, 500, 200, 500, 200] + [200] * 6 + [500] * 4
    assert [r.data for r in receiver.answered_ok()][:2] == [{"n": 1}, {"n": 2}]


async def test_apprise_delivers_to_the_receiver(receiver: Receiver) -> None:
    import apprise

    notifier = apprise.Apprise()
    with warnings.catch_warnings():
        # apprise's plugin loading imports imghdr (deprecated): not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        assert notifier.add(receiver.url("/apprise"))
    assert await notifier.async_notify(title="t", body="hello")
    (request,) = await receiver.wait_for(1)
    assert isinstance(request.data, dict)
    assert request.data["message"] == "hello"
