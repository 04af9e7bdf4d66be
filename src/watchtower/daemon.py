"""``watchtower run``: one asyncio process from sources to notifications.

    sources (http, mqtt) -> inbox (bounded) -> batcher -> engine -> delivery (outbox) -> notify
                                               idle clock -^

Start-up builds everything, then starts the tasks in one TaskGroup; shutdown (SIGTERM/SIGINT)
stops the sources, drains the inbox, then the outbox (what is due and the retries due before the
time is up) within ``daemon.shutdown_timeout``, then cancels what is left and tears down in
reverse order. Every step of teardown is harmless twice, and bounded: a store that does not
answer cannot hold the exit past the timeout and TEARDOWN_GRACE (and a floor for each step).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from watchtower.alerting.outbox import Delivery, build_outbox_store
from watchtower.alerting.outbox_store import OutboxStore
from watchtower.batcher import Batcher, advance_when_idle
from watchtower.clock import Clock, SystemClock
from watchtower.config import Config
from watchtower.deadletter import DeadLetter
from watchtower.errors import is_outage
from watchtower.heap import streaming_heap
from watchtower.lifecycle import Signals, housekeeping, reload_from, watchdog
from watchtower.logs import kv
from watchtower.metrics import Metrics
from watchtower.persist import restore_learned, save_learned
from watchtower.runtime import Runtime, config_summary
from watchtower.sources.http import HttpServer
from watchtower.sources.inbox import Arrival, Inbox
from watchtower.sources.mqtt import MqttSource
from watchtower.systemd import Notifier, watchdog_interval
from watchtower.wiring import build_engine, build_store

log = logging.getLogger(__name__)

Tasks = dict[str, "asyncio.Task[None]"]
T = TypeVar("T")

# After the drain, the delivery report and the teardown steps share what is left of
# daemon.shutdown_timeout and this much more: a store that answers saves the learned models in
# milliseconds, even after a drain that used all the time. A store that does not answer made
# each of its calls wait out redis-py's socket timeout (5 s), one after another.
TEARDOWN_GRACE = 2.0
# Each teardown step gets at least this, the grace spent: closing what a step opened is local.
STEP_FLOOR = 0.5


class Daemon:
    def __init__(
        self,
        config: Config,
        config_path: Path | None = None,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.config_path = config_path
        self.handle_signals = handle_signals  # off for several daemons in one test process
        self.signals = Signals()
        self.notifier = notifier or Notifier()
        self.runtime = self._build(config, clock or SystemClock())
        self.http: HttpServer | None = None
        self.ready = asyncio.Event()  # set once every task runs (tests wait on it)
        self._torn_down = False
        self._until: float | None = None  # loop time the teardown is to end by, once stopping

    def _build(self, config: Config, clock: Clock) -> Runtime:
        metrics = Metrics()
        dead_letter = DeadLetter(config.input.dead_letter)
        inbox = Inbox(
            config.daemon.queue_size, metrics, dead_letter, clock, config.input.max_future
        )
        store = build_store(config)
        self.outbox: OutboxStore = build_outbox_store(config)
        delivery = Delivery(config, self.outbox, metrics, clock)
        mqtt = None
        if config.mqtt.enabled:
            mqtt = MqttSource(config.mqtt, inbox, config.input.max_text_chars)
        runtime = Runtime(
            config=config,
            metrics=metrics,
            inbox=inbox,
            store=store,
            engine=build_engine(config, store),
            delivery=delivery,
            clock=clock,
            mqtt=mqtt,
        )
        metrics.queue_depth.set_function(inbox.queue.qsize)
        metrics.storms_firing.set_function(lambda: runtime.engine.storms_firing)
        metrics.queue_capacity.set(inbox.queue.maxsize)  # queue_size is restart-only
        if mqtt is not None:
            metrics.mqtt_enabled.set(1)  # mqtt is restart-only
            runtime.metrics.mqtt_connected.set_function(lambda: float(mqtt.connected))
        metrics.config_reload_success.set(1)
        metrics.config_reload_time.set(time.time())
        return runtime

    async def run(self) -> int:
        """Run until asked to stop; 0 after a clean shutdown, 1 when a task failed."""
        runtime = self.runtime
        code = 0
        if self.handle_signals:
            self.signals.install()
        try:
            await restore_learned(runtime.store, runtime.engine)
            # start-up's models out of the collector's sight, as a replay does: a full
            # collection mid-stream paused the loop ~110 ms, most of the p99 at 1k/s
            with streaming_heap():
                async with asyncio.TaskGroup() as group:
                    tasks = await self._start(group)
                    group.create_task(self._control(tasks), name="control")
        except* Exception as failed:
            for exc in failed.exceptions:
                log.exception("daemon task failed", exc_info=exc)
            code = 1
        finally:
            self.signals.remove()
            await self.teardown()
        log.info("stopped", extra=kv(exit_code=code))
        return code

    def stop(self) -> None:
        """What SIGTERM does: ask the control task to shut down (harmless twice)."""
        self.signals.stop.set()

    def reload(self) -> None:
        """What SIGHUP does: ask the control task to reload the config file."""
        self.signals.reload.set()

    async def _start(self, group: asyncio.TaskGroup) -> Tasks:
        rt = self.runtime
        config = rt.config
        if config.http.enabled:
            self.http = HttpServer(rt, config.http.host, config.http.port)
            await self.http.start()
        jobs = {
            "delivery": rt.delivery.run(),
            "batcher": Batcher(rt).run(),
            "idle-clock": advance_when_idle(rt),
            "housekeeping": housekeeping(rt),
        }
        if rt.mqtt is not None:
            jobs["mqtt"] = rt.mqtt.run()
        interval = watchdog_interval()
        if interval is not None:
            jobs["watchdog"] = watchdog(self.notifier, interval, rt)
        tasks = {name: group.create_task(job, name=name) for name, job in jobs.items()}
        rt.started = True
        self.notifier.ready("running")
        self.ready.set()
        port = self.http.port if self.http is not None else None
        log.info("started", extra=kv(http_port=port, **config_summary(config)))
        return tasks

    async def _control(self, tasks: Tasks) -> None:
        while await self.signals.next() == "reload":
            await reload_from(self.config_path, self.runtime, self.notifier)
        await self._shutdown(tasks)

    async def _shutdown(self, tasks: Tasks) -> None:
        """Stop sources, drain the inbox, then delivery, all within shutdown_timeout."""
        rt = self.runtime
        self.notifier.stopping()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + rt.config.daemon.shutdown_timeout
        self._until = deadline + TEARDOWN_GRACE
        log.info("stopping", extra=kv(queued=rt.inbox.queue.qsize()))
        rt.inbox.accepting = False
        await _cancel(tasks.pop("mqtt", None))  # unacknowledged messages stay with the broker
        if not await _before(deadline, rt.inbox.queue.join()):
            log.error("drain timed out", extra=kv(unprocessed=rt.inbox.queue.qsize()))
            await _cancel(tasks.pop("batcher", None))  # its batch in hand is set aside
            rt.set_aside_at_shutdown(_take_all(rt.inbox.queue))
        if rt.unsubmitted:  # the outbox's store failed them until the end
            log.error(
                "alert transitions decided but never recorded in the outbox: lost",
                extra=kv(transitions=len(rt.unsubmitted), first=rt.unsubmitted[0].key),
            )
        left = await _bounded(
            "flush delivery",
            lambda: rt.delivery.drain(max(0.0, deadline - loop.time())),
            self._until,
        )
        if left is not None:
            log.info("drained", extra=kv(notifications_left=left))
        for task in tasks.values():
            task.cancel()

    async def teardown(self) -> None:
        """Reverse order of start-up; safe to call again."""
        if self._torn_down:
            return
        self._torn_down = True
        rt = self.runtime
        loop = asyncio.get_running_loop()
        until = loop.time() + TEARDOWN_GRACE if self._until is None else self._until
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if self.http is not None:
            steps.append(("stop http", self.http.stop))
        steps += [
            ("save learned models", lambda: save_learned(rt.store, rt.engine)),
            ("close outbox", self.outbox.close),
            ("close store", rt.store.close),
        ]
        for what, step in steps:
            await _bounded(what, step, max(until, loop.time() + STEP_FLOOR))
        rt.inbox.dead_letter.close()


async def _before(deadline: float, work: Coroutine[Any, Any, None]) -> bool:
    """Await ``work`` until the loop-time ``deadline``; False when it had to be cut short."""
    try:
        async with asyncio.timeout_at(deadline):
            await work
    except TimeoutError:
        return False
    return True


async def _bounded(what: str, step: Callable[[], Awaitable[T]], until: float) -> T | None:
    """``step()``'s result, or None when it failed or was given up at the loop-time ``until``:
    logged in one line, with a traceback only for what is neither the bound nor an outage."""
    bound = asyncio.timeout_at(until)
    try:
        async with bound:
            return await step()
    except Exception as exc:
        failure = exc
    if bound.expired():
        log.error("shutdown step given up", extra=kv(step=what, reason="out of time"))
    else:
        trace = None if is_outage(failure) else failure
        log.error("shutdown step failed", exc_info=trace, extra=kv(step=what, error=repr(failure)))
    return None


def _take_all(queue: asyncio.Queue[Arrival]) -> list[Arrival]:
    taken = []
    while not queue.empty():
        taken.append(queue.get_nowait())
        queue.task_done()
    return taken


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled():
            return  # the task's own cancellation, not ours
        raise
