"""Signals, reload, the systemd watchdog and periodic housekeeping of the daemon.

Signal handlers only set events; the daemon's control task acts on them between batches.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

from watchtower.config import Config
from watchtower.errors import ConfigError
from watchtower.logs import kv
from watchtower.preflight import load_checked
from watchtower.runtime import Runtime, config_summary
from watchtower.systemd import Notifier

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 5.0  # seconds between gauge refreshes


class Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload: both only set an event."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.reload = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, event in (
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGHUP, self.reload),
        ):
            loop.add_signal_handler(sig, event.set)
            self._installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        while self._installed:
            loop.remove_signal_handler(self._installed.pop())

    async def next(self) -> str:
        """Wait for a request: ``"stop"`` wins over ``"reload"`` when both are set."""
        while not (self.stop.is_set() or self.reload.is_set()):
            waiters = [asyncio.ensure_future(e.wait()) for e in (self.stop, self.reload)]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
        if self.stop.is_set():
            return "stop"
        self.reload.clear()
        return "reload"


async def reload_from(path: Path | None, runtime: Runtime, notifier: Notifier) -> bool:
    """Load, validate and apply the config file; a bad one keeps the old config running."""
    notifier.reloading()
    try:
        new: Config | ConfigError
        new, held = await _load_and_apply(path, runtime)
    except ConfigError as exc:
        new, held = exc, []
    finally:
        notifier.ready("running")
    metrics = runtime.metrics
    if isinstance(new, ConfigError):
        metrics.config_reload_success.set(0)
        runtime.metrics.config_reload_failures.inc()
        log.error("config reload failed, keeping the old config", extra=kv(error=str(new)))
        return False
    metrics.config_reload_success.set(1)
    metrics.config_reload_time.set(time.time())
    log.info("config reloaded", extra=kv(path=path, **config_summary(runtime.config)))
    if held:
        log.warning(
            "config reloaded but for keys only a restart applies: they keep their running values",
            extra=kv(keys=",".join(held)),
        )
    return True


async def _load_and_apply(path: Path | None, runtime: Runtime) -> tuple[Config, list[str]]:
    if path is None:
        raise ConfigError("(file)", "the daemon runs on built-in defaults: nothing to reload")
    new = load_checked(path)  # a route URL apprise cannot parse is refused here too
    return new, await runtime.reload(new)


async def watchdog(notifier: Notifier, interval: float, runtime: Runtime) -> None:
    """WATCHDOG=1 every ``interval`` while the pipeline moves; a stuck engine gets restarted."""
    while True:
        if not runtime.stalled(2 * interval):
            notifier.watchdog()
        else:
            log.error("engine stalled: withholding the watchdog ping", extra=kv(after=interval))
        await asyncio.sleep(interval)


async def housekeeping(runtime: Runtime) -> None:
    """Refresh the gauges that need a store round trip, and notice a store that lost its
    state; a failure waits for the next round."""
    while True:
        try:
            runtime.metrics.active_threads.set(await runtime.store.thread_count())
            if await runtime.store.lost_state():
                runtime.metrics.store_state_lost.inc()
                log.error(
                    "the state store lost what it held (flushed, or restarted empty): thread"
                    " states, open episodes and sent-notification marks are gone, so alerts may"
                    " repeat and open episodes will not resolve; keep Redis persistent"
                )
        except Exception as exc:
            log.warning("gauge refresh failed", extra=kv(error=repr(exc)))
        await asyncio.sleep(HOUSEKEEPING_EVERY)
