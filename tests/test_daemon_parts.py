"""The daemon's small parts on their own: sd_notify, log lines, backoff, record bodies, batching."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
import redis.asyncio as redis

from watchtower import lifecycle
from watchtower.backoff import backoff_delay
from watchtower.batcher import Batcher, advance_when_idle
from watchtower.clock import ManualClock
from watchtower.config import (
    AlertConfig,
    Config,
    DaemonConfig,
    HttpConfig,
    InputConfig,
    LevelConfig,
    MomentumConfig,
    ScoringConfig,
    StateConfig,
)
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import STEP_FLOOR, TEARDOWN_GRACE, Daemon
from watchtower.errors import OutputError, is_outage
from watchtower.lifecycle import reload_from
from watchtower.logs import KeyValueFormatter, configure, kv
from watchtower.mention import Mention, from_dict
from watchtower.replay import full
from watchtower.sources import records
from watchtower.sources.inbox import Arrival
from watchtower.sources.records import BodyError, decode_body
from watchtower.state import keys
from watchtower.synth import generate
from watchtower.systemd import Notifier, watchdog_interval
from watchtower.wiring import build_engine

from servers import RedisServer
from streams import burst, mention, stream
from test_engine import angry_burst


def test_notifier_sends_datagrams_and_is_a_no_op_without_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = Notifier(str(path))
        assert notifier.ready("running")
        assert server.recv(100) == b"READY=1\nSTATUS=running"
        assert notifier.reloading()
        assert server.recv(100).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert notifier.watchdog()
        assert server.recv(100) == b"WATCHDOG=1"
    assert not Notifier("").enabled
    assert not Notifier("").ready()
    assert not Notifier(str(tmp_path / "gone.sock")).stopping()  # failure: logged, not raised


def test_watchdog_interval_is_half_the_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None


def test_log_lines_are_one_line_key_values_with_secrets_masked() -> None:
    record = logging.LogRecord("watchtower.x", logging.ERROR, __file__, 1, "it broke", (), None)
    record.fields = kv(token=Secret("hunter2"), path="/a b", n=3, text='say "hi"\nbye')["fields"]
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert "hunter2" not in line
    assert line.startswith("ts=")
    assert ' level=error logger=watchtower.x msg="it broke" ' in line
    assert line.endswith('token=*** path="/a b" n=3 text="say \\"hi\\"\\nbye"')


def test_apprise_never_logs_a_route_url_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("DEBUG")
        apprise_log = logging.getLogger("apprise")
        apprise_log.debug("Loaded JSON URL: %s", "json://hooks.example/T0KEN-1")
        apprise_log.warning("failed to send to pagerduty://K3Y@T0KEN-2 and slack://a/b/T0KEN-3")
        logging.getLogger("watchtower.x").info("kept: https://example.social/t1")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "T0KEN" not in err
    assert 'msg="Loaded JSON URL: json://***"' in err
    assert "pagerduty://*** and slack://***" in err
    assert "kept: https://example.social/t1" in err  # our own records are ours to word


def test_backoff_is_jittered_and_capped() -> None:
    delays = [backoff_delay(attempt, base=0.5, cap=30) for attempt in range(40) for _ in range(20)]
    assert all(0 <= d <= 30 for d in delays)
    assert max(backoff_delay(0) for _ in range(200)) <= 0.5
    assert len({round(d, 6) for d in delays}) > 100  # jitter: not a fixed schedule


def test_outages_are_told_from_bugs() -> None:
    class ConnectionError(Exception):
        pass

    assert is_outage(ConnectionRefusedError())
    assert is_outage(TimeoutError())
    assert is_outage(ConnectionError())
    assert not is_outage(ValueError("bad"))
    assert not is_outage(KeyError("x"))


def test_record_bodies_object_array_ndjson_and_auto() -> None:
    one = b'{"id": "a", "created_at": 1, "text": "x"}'
    assert [m.id for m in decode_body(one, "json", 100).mentions] == ["a"]
    array = b'[{"id": "a", "created_at": 1, "text": "x"}, {"id": "b"}]'
    decoded = decode_body(array, "json", 100)
    assert [m.id for m in decoded.mentions] == ["a"]
    assert [(r.index, r.error.field) for r in decoded.rejected] == [(1, "text")]
    ndjson = one + b"\n\n" + b'{"id": "c", "created_at": 2, "text": "y"}\n'
    assert [m.id for m in decode_body(ndjson, "auto", 100).mentions] == ["a", "c"]
    broken = decode_body(b"{nope", "auto", 100)  # MQTT: a bad payload is one rejected record
    assert broken.total == 1
    assert broken.rejected[0].error.field == "(record)"
    assert decode_body(b"7", "auto", 100).rejected[0].error.reason.startswith("expected")
    with pytest.raises(BodyError):
        decode_body(b"{nope", "json", 100)
    with pytest.raises(BodyError):
        decode_body(b'"text"', "json", 100)


def test_a_record_nested_too_deeply_to_re_encode_is_rejected_not_raised() -> None:
    """orjson reads 1024 levels but writes 255: the dead letter's copy must not raise."""
    deep = b"[" * 300 + b"]" * 300
    field = b'{"id": "a", "created_at": 1, "text": ' + deep + b"}"
    for body in (deep, field, b"[" + field + b', {"id": "b", "created_at": 1, "text": "x"}]'):
        for kind in ("json", "auto"):
            decoded = decode_body(body, kind, 100)
            assert len(decoded.rejected) == 1
            assert decoded.rejected[0].raw == b'"(a record nested too deeply to keep)"'
    assert [
        m.id
        for m in decode_body(
            b"[" + field + b', {"id": "b", "created_at": 1, "text": "x"}]', "json", 100
        ).mentions
    ] == ["b"]


def test_a_body_that_breaks_the_decoder_is_refused_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a body does to the decoder, a source gets a rejection (MQTT) or a 400.
    (A record that breaks the validator is refused alone: test_adversarial_input.py.)"""

    def broken(items: object, max_text_chars: int) -> object:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(records, "_records", broken)
    body = b'{"id": "a", "created_at": 1, "text": "x"}'
    decoded = decode_body(body, "auto", 100)
    assert [r.error.reason for r in decoded.rejected] == [
        "cannot be decoded: RuntimeError: unforeseen"
    ]
    assert decoded.rejected[0].raw == body
    with pytest.raises(BodyError, match="RuntimeError: unforeseen"):
        decode_body(body, "json", 100)


def _daemon(batch_size: int, batch_wait: float) -> Daemon:
    daemon = DaemonConfig(batch_size=batch_size, batch_wait=Duration(batch_wait))
    return Daemon(Config(daemon=daemon), handle_signals=False)


async def test_batches_take_what_waits_up_to_the_size() -> None:
    d = _daemon(batch_size=3, batch_wait=0)
    inbox = d.runtime.inbox
    assert inbox.offer("test", [from_dict(mention(f"m{i}", i, "x"), 100) for i in range(5)])
    batcher = Batcher(d.runtime)
    assert [a.mention.id for a in await batcher.collect()] == ["m0", "m1", "m2"]
    assert [a.mention.id for a in await batcher.collect()] == ["m3", "m4"]  # no waiting: wait 0
    await d.teardown()


async def test_a_batch_ends_before_a_mention_a_minute_of_event_time_past_its_first() -> None:
    d = _daemon(batch_size=10, batch_wait=0)
    at = [0, 30, 60, 61, 70, 200]
    assert d.runtime.inbox.offer("test", [from_dict(mention(f"m{t}", t, "x"), 100) for t in at])
    batcher = Batcher(d.runtime)
    assert [a.mention.id for a in await batcher.collect()] == ["m0", "m30", "m60"]
    assert [a.mention.id for a in await batcher.collect()] == ["m61", "m70"]
    assert [a.mention.id for a in await batcher.collect()] == ["m200"]
    await d.teardown()


async def test_a_backlog_is_decided_as_a_replay_of_the_same_stream() -> None:
    """A backlog (drained after an outage) of a sparse stream: 512 mentions of it span
    minutes, past the momentum model's settling, so whole-queue batches got other alerts."""
    records = list(generate(5, threads=300, hours=2))
    daemon = DaemonConfig(batch_size=512, batch_wait=Duration(0), queue_size=len(records))
    d = Daemon(Config(daemon=daemon), handle_signals=False)
    assert d.runtime.inbox.offer("test", [from_dict(r, 4000) for r in records])
    batcher = Batcher(d.runtime)
    live = []
    while not d.runtime.inbox.queue.empty() or batcher._held is not None:
        live += [t.to_json() for t in await d.runtime.decide(await batcher.collect())]
    await d.teardown()
    replayed = []
    engine = build_engine(Config())
    batch: list[Mention] = []
    for record in records:
        coming = from_dict(record, 4000)
        if full(batch, coming):
            replayed += [t.to_json() for t in await engine.process(batch)]
            batch = []
        batch.append(coming)
    replayed += [t.to_json() for t in await engine.process(batch)]
    assert live == replayed
    assert len(live) > 10


async def test_batch_wait_lets_a_batch_fill() -> None:
    d = _daemon(batch_size=10, batch_wait=0.3)
    inbox = d.runtime.inbox
    batcher = Batcher(d.runtime)

    async def trickle() -> None:
        for i in range(4):
            await inbox.put("test", [from_dict(mention(f"m{i}", i, "x"), 100)])
            await asyncio.sleep(0.02)

    async with asyncio.TaskGroup() as group:
        group.create_task(trickle())
        batch = await batcher.collect()
    assert [a.mention.id for a in batch] == ["m0", "m1", "m2", "m3"]
    await d.teardown()


async def test_a_batcher_that_is_behind_does_not_wait() -> None:
    """Two mentions already waiting: the engine is behind, so the batch goes at once."""
    d = _daemon(batch_size=10, batch_wait=30.0)
    inbox = d.runtime.inbox
    assert inbox.offer("test", [from_dict(mention(f"m{i}", i, "x"), 100) for i in range(2)])
    batch = await asyncio.wait_for(Batcher(d.runtime).collect(), 5.0)
    assert [a.mention.id for a in batch] == ["m0", "m1"]
    await d.teardown()


async def test_a_failing_batch_is_retried_then_dropped_and_marked_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = _daemon(batch_size=10, batch_wait=0)
    calls = 0

    async def broken(arrivals: object) -> list[object]:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr(d.runtime, "decide", broken)
    monkeypatch.setattr("watchtower.batcher.backoff_delay", lambda attempt: 0.0)
    inbox = d.runtime.inbox
    inbox.offer("test", [from_dict(mention("m0", 0, "x"), 100)])
    batcher = Batcher(d.runtime)
    await batcher.process(await batcher.collect())
    assert calls == 5
    await asyncio.wait_for(inbox.queue.join(), 1)  # done, so a drain does not hang on it
    registry = d.runtime.metrics.registry
    assert registry.get_sample_value("watchtower_batch_failures_total", {"outcome": "dropped"}) == 1
    await d.teardown()


async def test_a_dead_letter_that_cannot_be_opened_is_one_error_naming_the_key(
    tmp_path: Path,
) -> None:
    # check-config and `run` refuse a missing directory first; this is what is left (a
    # read-only file system under systemd's ProtectSystem=strict, a directory in the way)
    config = Config(input=InputConfig(dead_letter=str(tmp_path)))
    with pytest.raises(OutputError) as caught:
        Daemon(config, handle_signals=False)
    assert str(caught.value) == f"input.dead_letter: cannot write {tmp_path}: Is a directory"


async def test_reload_swaps_the_engine_and_keeps_thread_state() -> None:
    d = Daemon(Config(), handle_signals=False)
    rt = d.runtime
    inbox = rt.inbox
    inbox.offer(
        "test", [from_dict(mention(f"m{i}", i, "x", thread_id="t1"), 100) for i in range(5)]
    )
    await rt.decide(list(inbox.queue._queue))  # type: ignore[attr-defined]
    engine = rt.engine
    old_levels, watermark, sentiment = engine.levels, engine.watermark, engine.sentiment
    levels = (LevelConfig("watch", enter=0.4, exit=0.2),)
    assert await rt.reload(dataclasses.replace(rt.config, levels=levels)) == []
    assert rt.engine is engine  # reconfigured in place
    assert rt.config.levels == levels
    assert engine.config.levels == levels
    assert engine.levels is not old_levels
    assert engine.watermark == watermark
    assert engine.sentiment is sentiment  # what it learned stays
    assert (await rt.store.load(["t1"]))["t1"].count == 5  # thread state kept
    # what only a restart applies keeps its running value; the rest of the edit still applies
    running_state, running_port = rt.config.state, rt.config.http.port
    edited = dataclasses.replace(
        rt.config,
        state=StateConfig(max_threads=10),
        http=dataclasses.replace(rt.config.http, port=running_port + 1, max_body_bytes=5),
        levels=(LevelConfig("watch", enter=0.5, exit=0.2),),
    )
    assert await rt.reload(edited) == ["state", "http.port"]
    assert (rt.config.state, rt.config.http.port) == (running_state, running_port)
    assert rt.config.http.max_body_bytes == 5
    assert rt.config.levels[0].enter == 0.5
    assert rt.metrics.registry.get_sample_value("watchtower_config_restart_pending") == 2
    assert await rt.reload(dataclasses.replace(rt.config, levels=levels)) == []
    assert rt.metrics.registry.get_sample_value("watchtower_config_restart_pending") == 0
    await d.teardown()


async def test_a_reload_refuses_a_route_url_apprise_cannot_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "T000-not-a-real-token"  # noqa: S105 - a test value
    monkeypatch.setenv("WT_TEST_BAD_URL", f"slack://{secret}")  # checked as resolved
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        "notify:\n  routes:\n    - {name: chat, urls: [json://localhost, env:WT_TEST_BAD_URL]}\n"
    )
    d = Daemon(Config(), path, handle_signals=False)
    assert not await reload_from(path, d.runtime, Notifier(""))
    assert d.runtime.config.notify.routes == ()  # the old config runs on
    registry = d.runtime.metrics.registry
    assert registry.get_sample_value("watchtower_config_reload_failures_total") == 1
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("config reload failed")]
    error = failed.fields["error"]  # type: ignore[attr-defined]
    assert error == "notify.routes[0].urls[1]: not a valid apprise URL (slack://***)"
    assert secret not in caplog.text  # apprise's own line about the URL is not let through
    await d.teardown()


async def test_a_live_mention_too_late_for_the_stream_is_dead_lettered_and_counted(
    tmp_path: Path,
) -> None:
    dead = tmp_path / "dead.jsonl"
    d = Daemon(Config(input=InputConfig(dead_letter=str(dead))), handle_signals=False)
    rt = d.runtime
    now, old = mention("now", 3 * 86400, "x"), mention("last-month", 0, "x")
    arrivals = [Arrival(from_dict(r, 100), 0.0, "http") for r in (now, old)]
    await rt.decide(arrivals)
    set_aside = rt.metrics.registry.get_sample_value(
        "watchtower_mentions_set_aside_total", {"reason": "too_late"}
    )
    assert set_aside == 1
    [entry] = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert (entry["source"], entry["field"]) == ("engine", "created_at")
    assert orjson.loads(entry["record"])["id"] == "last-month"
    await d.teardown()


async def test_the_idle_clock_resolves_a_quiet_thread() -> None:
    burst_ = stream(burst("r1", 0, 30, 4, "@acme you lost my bag, worst airline ever"))
    clock = ManualClock(start=burst_[-1]["created_at"] + 1)
    config = Config(
        momentum=MomentumConfig(big_size=5, min_count=3),
        scoring=ScoringConfig(sentiment_gate="off"),
        alerts=AlertConfig(resolve_after_quiet=Duration(600), tick=Duration(60)),
    )
    d = Daemon(config, clock=clock, handle_signals=False)
    rt = d.runtime
    rt.inbox.offer("test", [from_dict(r, 4000) for r in burst_])
    fired = await rt.decide(list(rt.inbox.queue._queue))  # type: ignore[attr-defined]
    assert [t.state for t in fired] == ["firing"]
    async with asyncio.TaskGroup() as group:
        idle = group.create_task(advance_when_idle(rt))
        for _ in range(30):  # 30 quiet minutes of wall (= event) time, a tick at a time
            clock.advance(60)
            await asyncio.sleep(0.01)
        idle.cancel()
    states = [a["state"] for a in rt.delivery.recent(10)]
    assert states == ["resolved", "firing"]  # newest first
    advances = rt.metrics.registry.get_sample_value("watchtower_idle_advances_total")
    assert advances is not None
    assert advances > 0
    await d.teardown()


async def test_the_storm_gauge_counts_brands_in_a_storm() -> None:
    """watchtower_storms_firing: 1 while acme's burst of separate complaints is a storm, 0
    once it has calmed (the dashboard's "brands in a storm now")."""
    t0, width = 1_767_600_000.0, 900.0  # 15-minute buckets
    angry = "@acme you lost my bag, worst airline ever"

    def bucket(b: int, n: int) -> list[dict[str, object]]:
        return [
            {"id": f"c{b}-{j}", "created_at": t0 + b * width + (j + 0.5) * width / n,
             "text": angry, "brand": "acme", "author": {"id": f"a{b}-{j}"}}
            for j in range(n)
        ]  # fmt: skip

    d = Daemon(Config(), clock=ManualClock(t0), handle_signals=False)
    rt = d.runtime

    async def feed(buckets: range, n: int) -> float | None:
        for b in buckets:
            await rt.decide([Arrival(from_dict(r, 4000), 0.0, "test") for r in bucket(b, n)])
        return rt.metrics.registry.get_sample_value("watchtower_storms_firing")

    assert await feed(range(24), 12) == 0  # six steady hours
    assert await feed(range(24, 27), 120) == 1  # two storm buckets in a row, then a third
    assert await feed(range(27, 40), 12) == 0  # back near the forecast for over an hour
    await d.teardown()


async def test_transitions_the_outbox_failed_to_record_go_in_with_the_retried_batch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outbox's store fails right after the threads were saved (an outage starting
    between the two): the batcher retries the batch, whose mentions are repeats by then, so
    deciding it again gives nothing back. The firing it had decided goes in with the retry."""
    d = Daemon(Config(), handle_signals=False)
    rt = d.runtime
    record = d.outbox.note_episodes
    failures: list[dict[str, str | None]] = []

    async def down_once(episodes: dict[str, str | None]) -> None:
        if not failures:
            failures.append(episodes)
            raise ConnectionError("outbox store down")
        await record(episodes)

    monkeypatch.setattr(d.outbox, "note_episodes", down_once)
    records = angry_burst()
    decided = []
    for start in range(0, len(records), 50):
        arrivals = [Arrival(from_dict(r, 4000), 0.0, "test") for r in records[start : start + 50]]
        try:
            decided += await rt.decide(arrivals)
        except ConnectionError:  # as the batcher does: the same batch again
            decided += await rt.decide(arrivals)
    assert failures  # the outage did fall on a batch that decided something
    assert [(t.thread_id, t.state) for t in decided][:1] == [("r1", "firing")]
    assert [a["state"] for a in rt.delivery.recent(10)][-1] == "firing"
    registry = rt.metrics.registry
    labels = {"level": "watch", "state": "firing"}
    assert registry.get_sample_value("watchtower_alert_transitions_total", labels) == 1
    assert capsys.readouterr().out.count(" firing ") == 1  # the console once, not per attempt
    await d.teardown()


async def test_what_a_store_outage_leaves_undecided_at_shutdown_is_dead_lettered(
    tmp_path: Path, server_binaries: dict[str, str]
) -> None:
    """The store goes down, mentions keep arriving (taken: HTTP said 202, MQTT acked), then
    SIGTERM: what the engine could not decide within shutdown_timeout is kept, not lost."""
    redis = RedisServer(server_binaries["redis-server"], tmp_path)
    dead = tmp_path / "dead.jsonl"
    config = Config(
        state=StateConfig(backend="redis", redis_url=Secret(redis.url)),
        input=InputConfig(dead_letter=str(dead)),
        http=HttpConfig(enabled=False),
        daemon=DaemonConfig(shutdown_timeout=Duration(1.0), batch_size=4),
    )
    d = Daemon(config, handle_signals=False)
    running = asyncio.create_task(d.run())
    try:
        await asyncio.wait_for(d.ready.wait(), 10)
        redis.stop()
        # 30 s apart: the batch in hand is three, the fourth held back for the next batch
        records = [mention(f"m{i}", 30 * i, "x") for i in range(10)]
        assert d.runtime.inbox.offer("http", [from_dict(r, 100) for r in records])
        await asyncio.sleep(0.3)  # the batcher holds a batch, retrying the outage
        d.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        redis.stop()
    entries = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert sorted(orjson.loads(e["record"])["id"] for e in entries) == sorted(
        r["id"] for r in records
    )
    assert {(e["source"], e["field"]) for e in entries} == {("engine", "(shutdown)")}
    assert "daemon.shutdown_timeout" in entries[0]["error"]
    metric = "watchtower_mentions_set_aside_total"
    assert d.runtime.metrics.registry.get_sample_value(metric, {"reason": "shutdown"}) == 10


async def test_shutdown_with_the_store_not_answering_ends_within_its_bound(
    tmp_path: Path, server_binaries: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable (paused), then SIGTERM: the drain ends at shutdown_timeout, and the
    teardown steps share a fixed grace after it, giving up on a store call that does not
    answer in one line each. Each call waited out redis-py's 5 s socket timeout instead: 1 s of
    shutdown_timeout took 16."""
    redis = RedisServer(server_binaries["redis-server"], tmp_path)
    timeout = 1.0
    config = Config(
        state=StateConfig(backend="redis", redis_url=Secret(redis.url)),
        input=InputConfig(dead_letter=str(tmp_path / "dead.jsonl")),
        http=HttpConfig(enabled=False),
        daemon=DaemonConfig(shutdown_timeout=Duration(timeout)),
    )
    d = Daemon(config, handle_signals=False)
    running = asyncio.create_task(d.run())
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(d.ready.wait(), 10)
        redis.pause()
        records = [mention(f"m{i}", 30 * i, "x") for i in range(3)]
        assert d.runtime.inbox.offer("http", [from_dict(r, 100) for r in records])
        stopped = loop.time()
        d.stop()
        assert await asyncio.wait_for(running, 60) == 0
        took = loop.time() - stopped
    finally:
        redis.stop()
    # a bound, not a speed: the grace, a floor for each of the three teardown steps (http is
    # off), and 2 s for a busy machine
    assert took < timeout + TEARDOWN_GRACE + 3 * STEP_FLOOR + 2.0
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    gave_up = [r.fields["step"] for r in said if r.getMessage() == "shutdown step given up"]  # type: ignore[attr-defined]
    assert "save learned models" in gave_up
    assert [r.getMessage() for r in said if r.exc_info is not None] == []  # no tracebacks


async def test_a_redis_emptied_behind_the_daemon_is_logged_and_counted(
    redis_url: str,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(lifecycle, "HOUSEKEEPING_EVERY", 0.05)
    config = Config(
        state=StateConfig(backend="redis", redis_url=Secret(redis_url)),
        http=HttpConfig(enabled=False),
    )
    d = Daemon(config, handle_signals=False)
    running = asyncio.create_task(d.run())

    def lost() -> float | None:
        return d.runtime.metrics.registry.get_sample_value("watchtower_store_state_lost_total")

    async def soon(check: Callable[[], Awaitable[object]]) -> bool:
        for _ in range(250):  # 5 s at most: housekeeping runs every 0.05 s here
            if await check():
                return True
            await asyncio.sleep(0.02)
        return False

    try:
        await asyncio.wait_for(d.ready.wait(), 10)
        assert await soon(lambda: client.exists(keys.EPOCH))  # the first round noted it
        await asyncio.sleep(0.2)
        assert lost() == 0

        async def counted() -> bool:
            return lost() == 1

        await client.flushall()
        assert await soon(counted)
    finally:
        d.stop()
        assert await asyncio.wait_for(running, 20) == 0
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("the state store lost what it held" in m for m in said)


async def test_a_redelivered_mention_is_dropped_and_counted() -> None:
    d = Daemon(Config(), handle_signals=False)
    rt = d.runtime
    arrivals = [Arrival(from_dict(mention(f"m{i}", i, "x"), 100), 0.0, "mqtt") for i in range(4)]
    await rt.decide(arrivals)
    await rt.decide(arrivals[1:])  # the broker redelivers what it had not seen acknowledged
    repeated = rt.metrics.registry.get_sample_value("watchtower_mentions_repeated_total")
    assert repeated == 3
    assert rt.engine.stats.mentions == 4
    await d.teardown()
