"""The engine end to end on hand-made streams: alerts, gating, batch invariance, bounds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import redis

from watchtower.alerting.alert import AlertTransition
from watchtower.config import Config, InputConfig, ScoringConfig, StateConfig
from watchtower.config_parse import Secret
from watchtower.engine import Engine
from watchtower.mention import from_dict
from watchtower.wiring import build_engine

from servers import RedisServer
from streams import T0, burst, chatter, mention, stream

ANGRY = "@acme you lost my bag again, worst airline ever, furious and disgusted"
HAPPY = "@acme what a lovely surprise, thank you so much, best crew ever"


async def run(
    records: list[dict[str, Any]], config: Config, batch: int = 64
) -> list[AlertTransition]:
    engine = build_engine(config)
    mentions = [from_dict(r, 4000) for r in records]
    out: list[AlertTransition] = []
    for i in range(0, len(mentions), batch):
        out += await engine.process(mentions[i : i + batch])
    return out


def angry_burst() -> list[dict[str, Any]]:
    # 300 reposts, one every 10 s: a thread on its way to being big, among slow chatter
    return stream(burst("r1", 600, 300, 10, ANGRY), chatter(200, 60))


async def test_burst_fires_escalates_and_resolves_when_quiet() -> None:
    later = {**chatter(1, 0)[0], "id": "late", "created_at": T0 + 5 * 3600}  # time moves on
    records = [*angry_burst(), later]
    transitions = await run(records, Config())
    states = [(t.thread_id, t.state, t.level) for t in transitions]
    assert states[0] == ("r1", "firing", "watch")
    assert ("r1", "escalated", "critical") in states
    assert states[-1] == ("r1", "resolved", "critical")
    assert {t.thread_id for t in transitions} == {"r1"}  # the chatter stays quiet
    first = transitions[0]
    assert first.at < T0 + 600 + 300 * 10  # caught while still growing
    assert first.top_mentions[0]["followers"] == 50_000
    assert first.url == "https://example.social/r1"
    assert first.explanation["negativity"] > 0.5
    assert "P(big)" in first.explanation["crossed"][0]


async def test_the_alert_says_what_the_thread_is_about_its_roots_text() -> None:
    first = (await run(angry_burst(), Config()))[0]
    assert first.headline == ANGRY  # not a repost's "RT @hr1: ..." nor the top post's
    engine = build_engine(Config())

    async def headline_after(*records: dict[str, Any]) -> str:
        await engine.process([from_dict(r, 4000) for r in records])
        return (await engine.store.load(["r2"]))["r2"].headline

    # replies that name their thread arrive before its root: the first one with a text stands in
    replies = [mention(f"r2-{i}", 60 + i, text, thread_id="r2") for i, text in
               enumerate(["", "me too", "same here"])]  # fmt: skip
    assert await headline_after(*replies) == "me too"
    assert await headline_after(mention("r2", 30, ANGRY)) == ANGRY  # until the root comes
    assert await headline_after(mention("r2-9", 90, "x" * 500, thread_id="r2")) == ANGRY
    long = mention("r3", 100, "y" * 500)
    await engine.process([from_dict(long, 4000)])
    assert (await engine.store.load(["r3"]))["r3"].headline == "y" * 277 + "..."


@pytest.mark.parametrize("batch", [1, 7, 5000])
async def test_what_is_too_late_for_the_stream_does_not_depend_on_batches(batch: int) -> None:
    """Older than the latest event time before it by more than state.thread_ttl: set aside
    with why, whichever batch it falls in (the first one included), and never a thread."""
    day = 86400
    records = [
        mention("a", 0, ANGRY),
        mention("ancient", -3 * day, ANGRY),  # in the first batch, behind its first mention
        mention("b", 2 * day, ANGRY),
        mention("in-time", 0.5 * day, ANGRY),  # 1.5 days behind: kept
        mention("stale", -90, ANGRY, parent="a"),  # 48 h and 90 s behind "b"
    ]
    engine = build_engine(Config())
    for i in range(0, len(records), batch):
        await engine.process([from_dict(r, 4000) for r in records[i : i + batch]])
    aside = engine.take_set_aside().too_late
    assert [(m.id, why.split(" h ")[0]) for m, why in aside] == [
        ("ancient", "72.0"),
        ("stale", "48.0"),
    ]
    assert "beyond state.thread_ttl (48 h)" in aside[0][1]
    assert engine.stats.mentions == 3
    assert engine.stats.threads_created == 3  # a, b, in-time: "ancient" never became one
    assert engine.take_set_aside().too_late == []  # taken once


async def test_a_mention_delivered_twice_counts_once() -> None:
    """Six complaints from six people: nothing fires. The same six delivered eight times
    (MQTT redelivery, a client resending) used to fire watch and then critical."""
    six = [mention(f"d{i}", 10 * i, ANGRY, parent="d0" if i else None) for i in range(6)]
    assert await run(six, Config()) == []
    assert await run(six * 8, Config(), batch=6) == []  # across batches
    assert await run(six * 8, Config(), batch=48) == []  # within one
    engine = build_engine(Config())
    await engine.process([from_dict(r, 4000) for r in six * 3])
    assert (engine.stats.mentions, engine.stats.repeats) == (6, 12)
    forgetful = build_engine(Config(input=InputConfig(remembered_ids=0)))  # off: as before
    assert await forgetful.process([from_dict(r, 4000) for r in six * 8])
    engine.reconfigure(Config(input=InputConfig(remembered_ids=0)))  # a reload turns it off
    await engine.process([from_dict(r, 4000) for r in six])
    assert (engine.stats.mentions, engine.stats.repeats) == (12, 12)


async def test_a_batch_that_failed_is_no_repeat_of_itself(
    server_binaries: dict[str, str], tmp_path: Path
) -> None:
    """The ids join the memory once their batch is decided: a batch that failed on a store
    outage and is retried once the store is back is decided in full. The failed attempt
    counts nothing and sets nothing aside: its mention too late for the stream is
    dead-lettered once, by the attempt that succeeds."""
    server = RedisServer(server_binaries["redis-server"], tmp_path)
    config = Config(state=StateConfig(backend="redis", redis_url=Secret(server.url)))
    engine = build_engine(config)
    batch = [from_dict(r, 4000) for r in angry_burst()[:50]]
    batch.append(from_dict(mention("ancient", -3 * 86400, ANGRY), 4000))
    try:
        server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            await engine.process(batch)
        server = RedisServer(server_binaries["redis-server"], tmp_path, port=server.port)
        await engine.process(batch)
        assert (engine.stats.repeats, engine.stats.mentions) == (0, 50)
        assert [m.id for m, _ in engine.take_set_aside().too_late] == ["ancient"]
        in_r1 = sum(m.id == "r1" or m.parent == "r1" for m in batch)
        assert in_r1 > 10
        assert (await engine.store.load(["r1"]))["r1"].count == in_r1  # each mention once
    finally:
        await engine.store.close()
        server.stop()


async def test_a_resolved_thread_fires_again_only_on_new_momentum() -> None:
    """A big thread resolves after going quiet; stragglers hours later (its long tail) do not
    open a new episode, though the thread is past the big size; a second burst does."""
    tail = [mention(f"r1-tail{i}", 600 + 3000 + 3 * 3600 + i * 600, ANGRY, parent="r1")
            for i in range(5)]  # fmt: skip
    second = burst("r1", 9 * 3600, 300, 10, ANGRY)[1:]  # 299 more reposts, 10 s apart
    second = [{**r, "id": f"again-{r['id']}"} for r in second]
    records = stream(angry_burst(), tail, second)
    transitions = await run(records, Config())
    changes = [(t.state, t.level, t.at) for t in transitions if not t.repeat]
    fired = [at for state, _, at in changes if state == "firing"]
    resolved = [at for state, _, at in changes if state == "resolved"]
    assert resolved
    assert resolved[0] < T0 + 600 + 3000 + 3 * 3600  # quiet for 2 h, before the tail
    assert len(fired) == 2  # the first burst and the second: none for the tail
    assert fired[1] > T0 + 9 * 3600  # the tail's five mentions came before
    again = next(t for t in transitions if t.state == "firing" and t.at == fired[1])
    assert "more than when it resolved" in again.explanation["crossed"][0]
    assert again.explanation["resolved_forecast"] > 300


async def test_a_conversation_between_a_few_people_never_fires() -> None:
    """The same fast burst, written by two people answering each other (a customer and the
    brand's support), is not a cascade."""
    talk = [{**r, "author": {"id": f"a{i % 2}", "handle": f"h{i % 2}", "followers": 100}}
            for i, r in enumerate(burst("c1", 600, 300, 10, ANGRY))]  # fmt: skip
    assert await run(stream(talk, chatter(200, 60)), Config()) == []
    many = stream(burst("c1", 600, 300, 10, ANGRY), chatter(200, 60))
    assert [t.thread_id for t in await run(many, Config())][:1] == ["c1"]


async def test_alert_output_does_not_depend_on_batch_boundaries() -> None:
    records = angry_burst()
    outputs = [
        [t.to_json() for t in await run(records, Config(), batch=size)] for size in (1, 7, 500)
    ]
    assert outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


async def test_sentiment_gate_require_silences_happy_threads() -> None:
    records = stream(burst("r2", 600, 300, 10, HAPPY), chatter(50, 60))
    require = dataclasses.replace(Config(), scoring=ScoringConfig(sentiment_gate="require"))
    off = dataclasses.replace(Config(), scoring=ScoringConfig(sentiment_gate="off"))
    assert await run(records, require) == []
    assert [t.thread_id for t in await run(records, off)][:1] == ["r2"]


async def test_store_stays_bounded() -> None:
    config = Config()
    config = dataclasses.replace(config, state=dataclasses.replace(config.state, max_threads=50))
    engine = build_engine(config)
    await engine.process([from_dict(r, 4000) for r in chatter(500, 1)])
    assert await engine.store.thread_count() == 50


async def test_a_long_jump_in_event_time_skips_the_quiet_ticks_that_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three days without a mention: the same alerts as ticking through all 864 quiet checks,
    from a bounded number of them; a jump of 70 years costs no more."""
    after = {**chatter(1, 0)[0], "id": "after", "created_at": T0 + 3 * 86_400}
    records = [*burst("r1", 600, 300, 10, ANGRY), after]  # the gap opens with r1 firing
    checked: list[int] = []
    due_ticks = Engine._due_ticks

    def counted(engine: Engine, now: float, position: int) -> list[tuple[float, int]]:
        ticks = due_ticks(engine, now, position)
        checked.append(len(ticks))
        return ticks

    monkeypatch.setattr(Engine, "_due_ticks", counted)
    engine = build_engine(Config())
    await engine.process([from_dict({**after, "created_at": 1.0}, 4000)])
    await engine.advance(70 * 365 * 86_400.0)
    assert checked[-1] == math.ceil(2 * 3600 / 300) + 3  # resolve_after_quiet 2 h, tick 5 min

    skipping = [t.to_json() for t in await run(records, Config())]
    monkeypatch.setattr(Engine, "_useful_ticks", lambda _: 10**9)
    checked.clear()
    every = [t.to_json() for t in await run(records, Config())]
    assert max(checked) > 2 * 86_400 / 300  # every one of them
    assert skipping == every
    assert b'"resolved"' in every[-1]
    assert every[-1] != every[-2]
