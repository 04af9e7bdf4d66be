"""The daemon end to end on real servers: MQTT in, Redis state, apprise json:// to a receiver.

Each test has its own topic and client ids on the session's broker. The streams are small bursts
that fire one alert per burst thread under a low-threshold config (big_size 5), with the
sentiment gate off so the outcome does not hang on the sentiment model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import orjson

from test_storms import CFG, bucketed, steady
from watchtower.config import (
    Config,
    HttpConfig,
    MomentumConfig,
    MqttConfig,
    NotifyConfig,
    RouteConfig,
    ScoringConfig,
    StateConfig,
)
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import Daemon
from watchtower.state.redis_store import RedisStore

from servers import MosquittoServer, Receiver
from streams import T0, burst, chatter, stream

ANGRY = "@acme you lost my bag again, worst airline ever"


def shifted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream moved to end about now: live-looking event times."""
    shift = time.time() - 600 - T0
    return [{**r, "created_at": r["created_at"] + shift} for r in records]


def two_bursts() -> list[dict[str, Any]]:
    return shifted(
        stream(burst("r1", 60, 30, 4, ANGRY), burst("r2", 90, 30, 4, ANGRY), chatter(20, 30))
    )


def make_config(
    mosquitto: MosquittoServer,
    receiver: Receiver,
    topic: str,
    client_id: str,
    *,
    redis_url: str | None = None,
    group: str | None = None,
    alerts_topic: str | None = None,
) -> Config:
    state = StateConfig()
    if redis_url is not None:
        state = StateConfig(backend="redis", redis_url=Secret(redis_url))
    mqtt = MqttConfig(
        enabled=True,
        host=mosquitto.host,
        port=mosquitto.port,
        topics=(topic,),
        client_id=client_id,
        shared_group=group,
        alerts_topic=alerts_topic,
    )
    route = RouteConfig(name="hook", urls=(Secret(receiver.url()),))
    return Config(
        state=state,
        momentum=MomentumConfig(big_size=5, min_count=3),
        scoring=ScoringConfig(sentiment_gate="off"),
        http=HttpConfig(enabled=False),
        mqtt=mqtt,
        notify=NotifyConfig(console=False, routes=(route,), retry_initial=Duration(0.1)),
    )


@asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """Run ``daemon`` until the block ends, then stop it and check it exited cleanly."""
    task = asyncio.create_task(daemon.run(), name="daemon-under-test")
    try:
        async with asyncio.timeout(10):
            await daemon.ready.wait()
        yield daemon
    finally:
        daemon.stop()
        code = await asyncio.wait_for(task, 15)
        assert code == 0


async def wait_until(check: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def mqtt_connected(daemon: Daemon) -> None:
    mqtt = daemon.runtime.mqtt
    assert mqtt is not None
    await wait_until(lambda: mqtt.connected, "the daemon's MQTT session")


async def publish(
    mosquitto: MosquittoServer, topic: str, payloads: Sequence[bytes], pace: float = 0.0
) -> None:
    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=f"pub-{uuid.uuid4()}"
    ) as c:
        for payload in payloads:
            await c.publish(topic, payload, qos=1)
            if pace:
                await asyncio.sleep(pace)


@asynccontextmanager
async def two_workers(
    mosquitto: MosquittoServer, receiver: Receiver, redis_url: str, records: list[dict[str, Any]]
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Two daemons on one MQTT shared subscription and one Redis, running until the block
    ends, once every record published has been processed by one of them."""
    topic, group = f"t/{uuid.uuid4()}/mentions", f"g{uuid.uuid4().hex[:8]}"
    configs = [
        make_config(
            mosquitto, receiver, topic, f"wt-{uuid.uuid4()}", redis_url=redis_url, group=group
        )
        for _ in range(2)
    ]
    a, b = (Daemon(c, handle_signals=False) for c in configs)
    async with running(a), running(b):
        await mqtt_connected(a)
        await mqtt_connected(b)
        await publish(mosquitto, topic, [orjson.dumps(r) for r in records])
        await wait_until(lambda: processed(a, b) == len(records), "every mention processed")
        yield a, b


def processed(*daemons: Daemon) -> int:
    return sum(d.runtime.engine.stats.mentions for d in daemons)


def submitted_keys(*daemons: Daemon) -> list[str]:
    return [a["key"] for d in daemons for a in d.runtime.delivery.recent(1000)]


def titles(receiver: Receiver) -> list[str]:
    out = []
    for r in receiver.requests:
        assert isinstance(r.data, dict)
        out.append(str(r.data["title"]))
    return out


async def test_mqtt_mentions_alert_once_at_the_receiver(
    mosquitto: MosquittoServer, receiver: Receiver
) -> None:
    topic, alerts = f"t/{uuid.uuid4()}/mentions", f"t/{uuid.uuid4()}/alerts"
    records = two_bursts()
    config = make_config(mosquitto, receiver, topic, f"wt-{uuid.uuid4()}", alerts_topic=alerts)
    # one record per message, the chatter as one array, and a broken record among them
    singles = [orjson.dumps(r) for r in records if not r["id"].startswith("bg")]
    payloads = [*singles, orjson.dumps([r for r in records if r["id"].startswith("bg")]), b"{x"]
    async with (
        running(Daemon(config, handle_signals=False)) as daemon,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"sub-{uuid.uuid4()}") as sub,
    ):
        await sub.subscribe(alerts, qos=1)
        await mqtt_connected(daemon)
        assert daemon.runtime.metrics.registry.get_sample_value("watchtower_mqtt_connected") == 1
        await publish(mosquitto, topic, payloads)
        await wait_until(lambda: processed(daemon) == len(records), "every mention processed")
        await receiver.wait_for(2)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
        published = []
        async with asyncio.timeout(5):
            async for message in sub.messages:
                published.append(orjson.loads(message.payload))
                if len(published) == 2:
                    break
    assert sorted(titles(receiver)) == sorted(set(titles(receiver)))
    assert len(receiver.requests) == 2
    assert {t.split()[3] for t in titles(receiver)} == {"r1", "r2"}
    assert {p["thread_id"] for p in published} == {"r1", "r2"}
    registry = daemon.runtime.metrics.registry
    assert (
        registry.get_sample_value(
            "watchtower_mentions_rejected_total", {"source": "mqtt", "reason": "(record)"}
        )
        == 1
    )
    # a daemon that reads MQTT says so, and whether it has a session (the alert rule reads both)
    assert registry.get_sample_value("watchtower_mqtt_enabled") == 1
    assert registry.get_sample_value("watchtower_mqtt_connected") == 0  # stopped


async def test_restart_mid_stream_loses_nothing_and_notifies_once(
    mosquitto: MosquittoServer, receiver: Receiver, redis_url: str
) -> None:
    topic, client_id = f"t/{uuid.uuid4()}/mentions", f"wt-{uuid.uuid4()}"
    records = two_bursts()
    config = make_config(mosquitto, receiver, topic, client_id, redis_url=redis_url)
    first, second = Daemon(config, handle_signals=False), Daemon(config, handle_signals=False)
    payloads = [orjson.dumps(r) for r in records]
    async with asyncio.TaskGroup() as group:
        async with running(first):
            await mqtt_connected(first)  # from here on the broker keeps our session's messages
            sending = group.create_task(publish(mosquitto, topic, payloads, pace=0.01))
            await wait_until(lambda: processed(first) >= len(records) // 3, "a third processed")
        restarted_mid_stream = not sending.done()
        async with running(second):
            await wait_until(sending.done, "the publisher")
            await wait_until(lambda: processed(first, second) >= len(records), "all processed")
            expected = len(set(submitted_keys(first, second)))
            await receiver.wait_for(expected)
            await asyncio.sleep(0.5)
    assert restarted_mid_stream
    assert processed(first, second) == len(records)  # none lost, none twice
    assert processed(first) > 0
    assert processed(second) > 0
    assert expected >= 2
    assert len(receiver.requests) == expected
    assert len(set(titles(receiver))) == expected
    store = RedisStore(redis_url, thread_ttl=3600, max_threads=1000, root_memory=3600)
    try:
        states = await store.load(["r1", "r2"])
    finally:
        await store.close()
    assert states["r1"].count == 30
    assert states["r2"].count == 30


async def test_two_workers_on_one_shared_subscription_notify_each_transition_once(
    mosquitto: MosquittoServer, receiver: Receiver, redis_url: str
) -> None:
    records = two_bursts()
    async with two_workers(mosquitto, receiver, redis_url, records) as (a, b):
        keys = submitted_keys(a, b)
        await receiver.wait_for(len(keys))
        await asyncio.sleep(0.5)
    assert processed(a) > 0
    assert processed(b) > 0
    assert len(keys) == len(set(keys)) >= 2  # each transition decided by one worker
    assert len(receiver.requests) == len(keys)
    assert len(set(titles(receiver))) == len(keys)


async def test_broker_restart_reconnects_and_keeps_the_queued_messages(
    mosquitto: MosquittoServer, receiver: Receiver
) -> None:
    topic = f"t/{uuid.uuid4()}/mentions"
    records = two_bursts()
    half = len(records) // 2
    config = make_config(mosquitto, receiver, topic, f"wt-{uuid.uuid4()}")
    async with running(Daemon(config, handle_signals=False)) as daemon:
        mqtt = daemon.runtime.mqtt
        assert mqtt is not None
        await mqtt_connected(daemon)
        await publish(mosquitto, topic, [orjson.dumps(r) for r in records[:half]])
        await wait_until(lambda: processed(daemon) == half, "the first half")
        # on this thread: the broker's --pdeathsig is tied to the thread that started it
        mosquitto.restart()
        await publish(mosquitto, topic, [orjson.dumps(r) for r in records[half:]])
        await wait_until(lambda: processed(daemon) == len(records), "the second half", 20)
        assert mqtt.connections == 2
        await receiver.wait_for(2)
    assert len(receiver.requests) == 2


async def test_feedback_survives_a_restart_with_redis(
    mosquitto: MosquittoServer, receiver: Receiver, redis_url: str
) -> None:
    config = make_config(mosquitto, receiver, "t/unused", f"wt-{uuid.uuid4()}", redis_url=redis_url)
    config = dataclasses.replace(config, mqtt=MqttConfig(enabled=False))
    first = Daemon(config, handle_signals=False)
    async with running(first):
        outcome = await first.runtime.feedback("negative", "the lounge wifi is down again", None)
        assert outcome == "learned"
    assert first.runtime.engine.sentiment.n_learned == 1
    second = Daemon(config, handle_signals=False)
    async with running(second):
        assert second.runtime.engine.sentiment.n_learned == 1  # restored from Redis


def storm_stream() -> list[dict[str, Any]]:
    """Six steady hours of separate complaints to acme, a 10x burst for two buckets, then calm:
    one storm (tests/test_storms.py), and no thread of more than one mention."""
    mentions = bucketed([*steady(24), 120, 120, *[12] * 12])
    # in the past (the last bucket starts half an hour ago), on the grid, as in that test
    end = (time.time() - 1800) // CFG.bucket * CFG.bucket
    shift = end - mentions[-1].created_at // CFG.bucket * CFG.bucket
    author = {"followers": 10}
    return [
        {
            "id": m.id,
            "created_at": m.created_at + shift,
            "text": m.text,
            "brand": m.brand,
            "author": {**author, "id": f"u-{m.id}", "handle": f"h{m.id}"},
        }
        for m in mentions
    ]


async def test_two_workers_raise_one_storm_with_its_whole_count(
    mosquitto: MosquittoServer, receiver: Receiver, redis_url: str
) -> None:
    """Each worker gets half of every bucket; the storm is judged on their pooled shares."""
    records = storm_stream()
    async with two_workers(mosquitto, receiver, redis_url, records) as (a, b):
        await receiver.wait_for(2)
        await asyncio.sleep(0.5)
    assert processed(a) > 0
    assert processed(b) > 0
    fired, resolved = titles(receiver)
    assert fired.startswith("[STORM] acme: complaint storm firing: 120 separate complaints")
    assert resolved == "[RESOLVED] acme: complaint storm resolved after 90 min"
