"""The outbox: once per (transition, route), retries with backoff, dead letters, restarts, workers.

Every notification goes over real HTTP to the local receiver through apprise json:// URLs; the
ManualClock moves retries along without real sleeping. Store tests run on memory and on Redis.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import render
from watchtower.alerting.notify_test import sample_transition
from watchtower.alerting.outbox import Delivery, build_outbox_store
from watchtower.alerting.outbox_redis import RedisOutboxStore
from watchtower.alerting.outbox_store import Entry, MemoryOutboxStore, OutboxStore
from watchtower.backoff import retry_delay
from watchtower.clock import ManualClock, SystemClock
from watchtower.config import Config, NotifyConfig, RouteConfig, StateConfig
from watchtower.config_parse import Duration, Secret
from watchtower.metrics import Metrics
from watchtower.state.redis_store import connect

from servers import Receiver, free_port, start_receiver

NOW = 1_790_000_000.0
EPISODE = "tw:1@1789999000"

StoreFactory = Callable[[], OutboxStore]


def settings(
    *routes: RouteConfig, max_attempts: int = 3, retry_initial: float = 1, retry_max: float = 8
) -> Config:
    notify = NotifyConfig(
        console=False,
        retry_initial=Duration(retry_initial),
        retry_max=Duration(retry_max),
        max_attempts=max_attempts,
        routes=routes,
    )
    return Config(notify=notify)


def chat(receiver: Receiver, path: str = "/chat", name: str = "chat") -> RouteConfig:
    return RouteConfig(name, (Secret(receiver.url(path)),))


def transition(
    seq: int,
    level: str = "watch",
    state: str = "firing",
    *,
    repeat: bool = False,
    episode: str = EPISODE,
    brand: str = "united",
) -> AlertTransition:
    t = sample_transition(NOW, level)
    return replace(t, episode_id=episode, sequence=seq, state=state, repeat=repeat, brand=brand)


def keys_received(receiver: Receiver) -> list[str]:
    """The ``episode #seq`` of every request, failed ones included."""
    found = []
    for request in receiver.requests:
        assert isinstance(request.data, dict)
        body: str = request.data["message"]
        found.append(body.rsplit("episode ", 1)[1].replace("`", ""))
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def eventually(check: Callable[[], bool], step: Callable[[], None] = lambda: None) -> None:
    """Poll ``check`` for up to 5 s, calling ``step`` (e.g. advance a clock) between polls."""
    async with asyncio.timeout(5):
        while not check():
            step()
            await asyncio.sleep(0.01)


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """A factory of stores on one backend: each call is another process's view of it."""
    made: list[OutboxStore] = []
    if request.param == "memory":
        shared = MemoryOutboxStore()

        def factory() -> OutboxStore:
            return shared
    else:
        url: str = request.getfixturevalue("redis_url")

        def factory() -> OutboxStore:
            made.append(RedisOutboxStore(connect(url), owned=True))
            return made[-1]

    yield factory
    for store in made:
        await store.close()


def delivery(config: Config, store: OutboxStore, clock: ManualClock) -> Delivery:
    return Delivery(config, store, Metrics(), clock, rng=random.Random(7))


# --- once per transition and route -----------------------------------------------------------


async def test_one_notification_per_transition_and_route(
    receiver: Receiver, stores: StoreFactory
) -> None:
    config = settings(chat(receiver), chat(receiver, "/pager", "pager"))
    d = delivery(config, stores(), ManualClock(NOW))
    await d.submit([transition(1), transition(2, "critical", "escalated")])
    assert await d.flush(10) == 0
    assert sorted(keys_received(receiver)) == [f"{EPISODE} #1"] * 2 + [f"{EPISODE} #2"] * 2
    assert sorted(r.path for r in receiver.requests) == ["/chat", "/chat", "/pager", "/pager"]
    await d.submit([transition(1), transition(2, "critical", "escalated")])  # again: a replay
    assert await d.flush(10) == 0
    assert len(receiver.requests) == 4
    assert value(d._metrics, "watchtower_notifications_sent_total", route="pager") == 2
    assert value(d._metrics, "watchtower_notifications_pending", route="chat") == 0


async def test_a_500_is_retried_after_backoff_and_delivered_once(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver)), stores(), clock)
    receiver.fail_next(1)
    await d.submit([transition(1)])
    assert await d.flush(10) == 1
    assert value(d._metrics, "watchtower_notifications_failed_total", route="chat", final="false")
    assert value(d._metrics, "watchtower_notifications_pending", route="chat") == 1
    assert await d.flush(10) == 1  # not due yet: the backoff holds
    assert len(receiver.requests) == 1
    clock.advance(1.0)  # retry_initial 1 s, jittered into [0.5, 1]
    assert await d.flush(10) == 0
    clock.advance(100)
    assert await d.flush(10) == 0
    assert keys_received(receiver) == [f"{EPISODE} #1"] * 2
    assert value(d._metrics, "watchtower_notifications_sent_total", route="chat") == 1


async def test_permanent_failure_is_dead_lettered_after_max_attempts(
    receiver: Receiver, stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver), max_attempts=3), stores(), clock)
    receiver.fail_next(100, 503)
    await d.submit([transition(1)])
    for _ in range(6):
        await d.flush(10)
        clock.advance(8)  # retry_max
    assert len(receiver.requests) == 3
    metrics = d._metrics
    failed = "watchtower_notifications_failed_total"
    assert value(metrics, failed, route="chat", final="false") == 2
    assert value(metrics, failed, route="chat", final="true") == 1
    assert value(metrics, "watchtower_notifications_pending", route="chat") == 0
    assert value(metrics, "watchtower_notifications_sent_total", route="chat") == 0
    url_failed = "watchtower_notification_url_failures_total"
    assert value(metrics, url_failed, route="chat", url="urls[0]", final="false") == 2
    assert value(metrics, url_failed, route="chat", url="urls[0]", final="true") == 1
    assert f"dead-lettered {EPISODE}#1 to chat after 3 attempts" in caplog.text
    assert f"urls[0] {receiver.url('/***')} HTTP 503" in caplog.text
    assert "/chat" not in caplog.text  # URLs are only ever logged redacted


async def test_a_rejected_message_is_not_retried(receiver: Receiver, stores: StoreFactory) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver), max_attempts=5), stores(), clock)
    receiver.fail_next(1, 400)
    await d.submit([transition(1)])
    assert await d.flush(10) == 0
    clock.advance(100)
    assert await d.flush(10) == 0
    assert len(receiver.requests) == 1
    failed = "watchtower_notifications_failed_total"
    assert value(d._metrics, failed, route="chat", final="true") == 1


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempt, step in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (40, 8), (200, 8)]:
        for _ in range(50):
            assert step / 2 <= retry_delay(attempt, 1.0, 8.0, rng) <= step
    spread = {round(retry_delay(3, 1.0, 8.0, rng), 6) for _ in range(20)}
    assert len(spread) == 20  # jittered, not a fixed schedule


async def test_only_the_urls_that_failed_are_retried(
    receiver: Receiver, stores: StoreFactory
) -> None:
    other, runner = await start_receiver()
    try:
        both = RouteConfig("chat", (Secret(receiver.url("/a")), Secret(other.url("/b"))))
        clock = ManualClock(NOW)
        d = delivery(settings(both), stores(), clock)
        other.fail_next(1)
        await d.submit([transition(1)])
        assert await d.flush(10) == 1
        clock.advance(8)
        assert await d.flush(10) == 0
        assert (len(receiver.requests), len(other.requests)) == (1, 2)
        assert value(d._metrics, "watchtower_notifications_sent_total", route="chat") == 1
        failed = "watchtower_notifications_failed_total"
        assert value(d._metrics, failed, route="chat", final="false") == 0  # urls[0] took it
    finally:
        await runner.cleanup()


async def test_a_url_failing_beside_a_working_one_is_seen_but_the_notification_is_sent(
    receiver: Receiver, stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The example pager route's case: one service down must not lose the page, nor make the
    route look failed. Sent once urls[0] took it; urls[1] retried, counted, logged, given up."""
    receiver.fail_path("/down")
    route = RouteConfig("chat", (Secret(receiver.url("/up")), Secret(receiver.url("/down"))))
    clock = ManualClock(NOW)
    d = delivery(settings(route, max_attempts=3), stores(), clock)
    await d.submit([transition(1), transition(2, "critical", "escalated")])
    for _ in range(4):
        await d.flush(10)
        clock.advance(8)  # retry_max
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/down"] * 6 + ["/up"] * 2  # 3 attempts each at urls[1], one at urls[0]
    metrics, failed = d._metrics, "watchtower_notifications_failed_total"
    assert value(metrics, "watchtower_notifications_sent_total", route="chat") == 2
    assert value(metrics, failed, route="chat", final="false") == 0
    assert value(metrics, failed, route="chat", final="true") == 0  # not dead-lettered
    assert value(metrics, "watchtower_notifications_pending", route="chat") == 0
    url_failed = "watchtower_notification_url_failures_total"
    assert value(metrics, url_failed, route="chat", url="urls[1]", final="false") == 4
    assert value(metrics, url_failed, route="chat", url="urls[1]", final="true") == 2
    assert value(metrics, url_failed, route="chat", url="urls[0]", final="false") == 0
    assert "dead-lettered" not in caplog.text
    shown = receiver.url("/***")
    assert f"{EPISODE}#1 to chat reached some URLs, not all (attempt 1," in caplog.text
    given_up = f"{EPISODE}#2 to chat delivered, but not to every URL after 3 attempts: urls[1] "
    assert f"{given_up}{shown} HTTP 500" in caplog.text


async def test_a_url_that_refused_is_not_resent_while_its_neighbour_is_retried(
    receiver: Receiver, stores: StoreFactory
) -> None:
    """A pager whose key was revoked (401) next to a chat that is down (503): each retry of the
    chat must not post the same alert to the pager again, once per retry."""
    receiver.fail_path("/down", 503)
    receiver.fail_path("/revoked", 401)
    route = RouteConfig("page", (Secret(receiver.url("/down")), Secret(receiver.url("/revoked"))))
    clock = ManualClock(NOW)
    d = delivery(settings(route, max_attempts=4), stores(), clock)
    await d.submit([transition(1)])
    for _ in range(5):
        await d.flush(10)
        clock.advance(8)  # retry_max
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/down"] * 4 + ["/revoked"]
    metrics, url_failed = d._metrics, "watchtower_notification_url_failures_total"
    assert value(metrics, url_failed, route="page", url="urls[1]", final="true") == 1
    assert value(metrics, url_failed, route="page", url="urls[1]", final="false") == 0
    assert value(metrics, url_failed, route="page", url="urls[0]", final="false") == 3
    failed = "watchtower_notifications_failed_total"
    assert value(metrics, failed, route="page", final="true") == 1  # no URL ever took it


async def test_a_route_removed_by_a_reload_loses_only_what_no_url_took(
    receiver: Receiver, stores: StoreFactory
) -> None:
    receiver.fail_path("/down")
    both = RouteConfig("pager", (Secret(receiver.url("/up")), Secret(receiver.url("/down"))))
    dead = RouteConfig("chat", (Secret(receiver.url("/down")),))
    clock = ManualClock(NOW)
    d = delivery(settings(both, dead), stores(), clock)
    await d.submit([transition(1)])
    assert await d.flush(10) == 2  # both wait for a retry of /down
    d.reload(settings())
    clock.advance(8)
    assert await d.flush(10) == 0
    failed = "watchtower_notifications_failed_total"
    assert value(d._metrics, failed, route="chat", final="true") == 1
    assert value(d._metrics, failed, route="pager", final="true") == 0
    assert value(d._metrics, "watchtower_notifications_sent_total", route="pager") == 1


# --- restarts and workers --------------------------------------------------------------------


async def test_a_restart_resends_nothing_sent_and_sends_what_was_pending(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    config = settings(chat(receiver))
    first = delivery(config, stores(), clock)
    await first.submit([transition(1)])
    assert await first.flush(10) == 0
    receiver.fail_next(1)
    await first.submit([transition(2, "critical", "escalated")])
    assert await first.flush(10) == 1  # #2 waits for its retry

    second = delivery(config, stores(), clock)  # a new process on the same outbox
    await second.submit([transition(1), transition(2, "critical", "escalated")])  # re-emitted
    clock.advance(8)
    assert await second.flush(10) == 0
    assert keys_received(receiver) == [f"{EPISODE} #1", f"{EPISODE} #2", f"{EPISODE} #2"]
    clock.advance(100)
    assert await second.flush(10) == 0
    assert len(receiver.requests) == 3


async def test_two_workers_on_one_redis_send_each_entry_once(
    receiver: Receiver, redis_url: str
) -> None:
    clock = ManualClock(NOW)
    config = settings(chat(receiver), chat(receiver, "/pager", "pager"))
    stores = [RedisOutboxStore(connect(redis_url), owned=True) for _ in range(2)]
    try:
        workers = [delivery(config, store, clock) for store in stores]
        batch = [transition(seq, episode=f"tw:{seq}@1") for seq in range(1, 41)]
        # Both workers saw the same transitions (a shared subscription redelivered them).
        await asyncio.gather(*(w.submit(batch) for w in workers))
        await asyncio.gather(*(w.flush(30) for w in workers))  # both claim concurrently
        assert await workers[0].flush(1) == 0  # (one may finish while the other still sends)
        sent = sorted(
            zip(keys_received(receiver), (r.path for r in receiver.requests), strict=True)
        )
        expected = sorted((f"tw:{s}@1 #{s}", p) for s in range(1, 41) for p in ("/chat", "/pager"))
        assert sent == expected
        total = sum(
            value(w._metrics, "watchtower_notifications_sent_total", route=route)
            for w in workers
            for route in ("chat", "pager")
        )
        assert total == 80
    finally:
        for store in stores:
            await store.close()


async def test_claims_are_exclusive_and_a_lost_lease_changes_nothing(
    stores: StoreFactory,
) -> None:
    a, b = stores(), stores()
    entry = Entry.of(transition(1), "chat", render(transition(1)), NOW)
    assert await a.record([entry], NOW) == 1
    assert await b.record([entry], NOW) == 0  # the pair is known
    (lease,) = await a.claim(NOW, 60, 10)
    assert await b.claim(NOW, 60, 10) == []  # leased to a
    (stolen,) = await b.claim(NOW + 61, 60, 10)  # a stalled past its lease
    assert not await a.finish(lease, NOW + 62)  # a's result no longer counts
    assert not await a.retry(lease, entry, NOW + 70)
    assert await b.finish(stolen, NOW + 62)
    assert await a.pending() == {}
    assert await a.record([entry], NOW + 63) == 0  # finished: never again
    assert await a.next_due() is None


# --- shutdown: drain ----------------------------------------------------------------------
# On the system clock: drain waits for retries in real time (a fraction of a second here).


async def test_drain_delivers_the_retries_due_before_the_timeout(
    receiver: Receiver, stores: StoreFactory
) -> None:
    receiver.fail_first(2)  # every notification fails twice, then goes through
    config = settings(chat(receiver), max_attempts=5, retry_initial=0.2, retry_max=1)
    d = Delivery(config, stores(), Metrics(), SystemClock(), rng=random.Random(7))
    await d.submit([transition(seq, episode=f"tw:{seq}@1") for seq in range(1, 6)])
    started = time.monotonic()
    assert await d.drain(5) == 0
    assert time.monotonic() - started < 4  # retries after 0.1-0.2 s, then 0.2-0.4 s
    assert sorted(keys_received(receiver)) == sorted([f"tw:{s}@1 #{s}" for s in range(1, 6)] * 3)
    assert len(receiver.answered_ok()) == 5
    assert value(d._metrics, "watchtower_notifications_sent_total", route="chat") == 5


async def test_drain_leaves_at_once_what_is_not_due_in_time_and_says_so(
    receiver: Receiver, stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_first(1)
    store = stores()
    pager = chat(receiver, "/pager", "pager")
    config = settings(chat(receiver), pager, retry_initial=60, retry_max=60)
    d = Delivery(config, store, Metrics(), SystemClock(), rng=random.Random(7))
    await d.submit([transition(1), transition(2, "critical", "escalated")])
    started = time.monotonic()
    assert await d.drain(5) == 4  # each retry is 30-60 s away
    assert time.monotonic() - started < 2  # not waiting for what cannot come in time
    fate = "kept in the outbox for the next start" if store.durable else "lost"
    left = f"outbox: 4 notifications left unsent at shutdown (chat 2, pager 2): {fate}"
    assert left in caplog.text


async def test_drain_waits_for_what_the_run_loop_is_sending(
    receiver: Receiver, stores: StoreFactory
) -> None:
    """Its lease would read as due in LEASE seconds, past the timeout: drain must not leave."""
    receiver.delay = 0.5
    d = Delivery(settings(chat(receiver)), stores(), Metrics(), SystemClock())
    async with asyncio.TaskGroup() as group:
        loop = group.create_task(d.run(), name="delivery")
        await d.submit([transition(1)])
        await receiver.wait_for(1)  # in flight: the answer comes in 0.5 s
        assert await d.drain(5) == 0
        loop.cancel()
    assert len(receiver.answered_ok()) == 1


# --- ack, silences, reload, the run loop -----------------------------------------------------


async def test_ack_quiets_repeats_but_not_escalation_or_resolve(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver)), stores(), clock)

    async def step(t: AlertTransition) -> None:
        clock.advance(60)
        await d.submit([t])
        await d.flush(10)

    await step(transition(1))
    assert await d.ack(EPISODE)
    assert not await d.ack("tw:404@1")
    await step(transition(2, repeat=True))  # suppressed: acked
    await step(transition(3, "critical", "escalated"))  # above the acked level: out
    await step(transition(4, "critical", repeat=True))  # still above: out
    assert await d.ack(EPISODE)  # now acked at critical
    await step(transition(5, "critical", repeat=True))  # suppressed
    await step(transition(6, "critical", "resolved"))  # the resolve always goes out
    assert not await d.ack(EPISODE)  # over
    assert keys_received(receiver) == [f"{EPISODE} #{n}" for n in (1, 3, 4, 6)]
    assert value(d._metrics, "watchtower_notifications_pending", route="chat") == 0
    suppressed = "watchtower_notifications_suppressed_total"
    assert value(d._metrics, suppressed, route="chat", reason="acked") == 2  # #2 and #5
    assert value(d._metrics, suppressed, route="chat", reason="silenced") == 0
    assert value(d._metrics, "watchtower_notifications_sent_total", route="chat") == 4


async def test_ack_also_stops_a_repeat_waiting_for_its_retry(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver)), stores(), clock)
    await d.submit([transition(1)])
    await d.flush(10)
    receiver.fail_next(1)
    await d.submit([transition(2, repeat=True)])
    assert await d.flush(10) == 1
    assert await d.ack(EPISODE)
    clock.advance(8)
    assert await d.flush(10) == 0
    assert keys_received(receiver) == [f"{EPISODE} #1", f"{EPISODE} #2"]  # #2 only the failure


async def test_a_silenced_brand_hears_nothing_until_the_window_ends(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver)), stores(), clock)
    await d.silence("united", NOW + 600)
    assert await d.silences() == {"united": NOW + 600}
    await d.submit([transition(1, episode="u@1"), transition(1, episode="d@1", brand="delta")])
    await d.flush(10)
    assert keys_received(receiver) == ["d@1 #1"]
    clock.advance(601)
    await d.submit([transition(2, "critical", "escalated", episode="u@1")])
    await d.flush(10)
    assert keys_received(receiver) == ["d@1 #1", "u@1 #2"]
    assert await d.silences() == {}
    suppressed = "watchtower_notifications_suppressed_total"
    assert value(d._metrics, suppressed, route="chat", reason="silenced") == 1  # u@1 #1
    assert value(d._metrics, suppressed, route="chat", reason="acked") == 0


async def test_reload_keeps_the_outbox_and_uses_the_new_routes(
    receiver: Receiver, stores: StoreFactory
) -> None:
    clock = ManualClock(NOW)
    broken = RouteConfig("chat", (Secret("json://127.0.0.1:9/closed-port"),))
    d = delivery(settings(broken, chat(receiver, "/gone", "gone")), stores(), clock)
    await d.submit([transition(1)])
    assert await d.flush(10) == 1  # chat failed (connection refused) and waits
    assert len(receiver.requests) == 1  # "gone" took it
    d.reload(settings(chat(receiver, "/fixed")))
    clock.advance(8)
    assert await d.flush(10) == 0
    assert [r.path for r in receiver.requests] == ["/gone", "/fixed"]


async def test_run_sends_and_retries_on_the_clock(receiver: Receiver, stores: StoreFactory) -> None:
    clock = ManualClock(NOW)
    d = delivery(settings(chat(receiver)), stores(), clock)
    metrics = d._metrics
    receiver.fail_next(1)
    async with asyncio.TaskGroup() as group:
        loop = group.create_task(d.run(), name="delivery")
        await d.submit([transition(1)])
        failed = "watchtower_notifications_failed_total"
        await eventually(lambda: value(metrics, failed, route="chat", final="false") == 1)
        sent = "watchtower_notifications_sent_total"
        await eventually(lambda: value(metrics, sent, route="chat") == 1, lambda: clock.advance(1))
        loop.cancel()
    assert keys_received(receiver) == [f"{EPISODE} #1"] * 2


async def test_recent_lists_the_newest_transitions_first(
    receiver: Receiver, stores: StoreFactory
) -> None:
    d = delivery(settings(chat(receiver)), stores(), ManualClock(NOW))
    await d.submit([transition(1), transition(2, "critical", "escalated")])
    recent = d.recent(5)
    assert [(r["key"], r["routes"]) for r in recent] == [
        (f"{EPISODE}#2", ["chat"]),
        (f"{EPISODE}#1", ["chat"]),
    ]
    assert d.recent(1)[0]["level"] == "critical"


async def test_console_prints_the_summary_line(
    stores: StoreFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config(notify=NotifyConfig(console=True))
    d = delivery(config, stores(), ManualClock(NOW))
    await d.submit([transition(1)])
    assert capsys.readouterr().out == transition(1).summary_line() + "\n"
    assert await d.flush(1) == 0


async def test_build_outbox_store_follows_the_state_backend(redis_url: str) -> None:
    assert isinstance(build_outbox_store(Config()), MemoryOutboxStore)
    state = StateConfig(backend="redis", redis_url=Secret(redis_url))
    store = build_outbox_store(Config(state=state))
    assert isinstance(store, RedisOutboxStore)
    assert await store.pending() == {}
    await store.close()
    await store.close()  # twice is harmless


async def test_a_store_outage_is_a_warning_line_a_round_not_a_traceback(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # a Redis nobody answers at: every round of the loop fails on the store
    store = RedisOutboxStore(connect(f"redis://127.0.0.1:{free_port()}/0"), owned=True)
    d = delivery(settings(chat(receiver)), store, ManualClock(NOW))
    running = asyncio.create_task(d.run())
    try:
        await eventually(lambda: any("outbox" in r.getMessage() for r in caplog.records))
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await store.close()
    [said] = [r for r in caplog.records if r.name == "watchtower.alerting.outbox"][:1]
    assert said.levelname == "WARNING"
    assert said.getMessage().startswith("outbox: store unreachable; retrying in ")
    assert said.exc_info is None
