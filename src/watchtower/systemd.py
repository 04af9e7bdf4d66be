"""sd_notify without a dependency: one datagram per state change to ``$NOTIFY_SOCKET``.

Outside systemd (no socket in the environment) every call is a no-op. A failed send is logged
once and otherwise ignored: the daemon's work never depends on the service manager hearing it.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from watchtower.logs import kv

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        raw = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | None = None
        if raw:
            # a leading @ names a socket in the abstract namespace
            self._address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *states: str) -> bool:
        """Send ``READY=1``-style lines in one datagram; True when it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # never stall the event loop on the service manager
                sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("systemd notify failed", extra=kv(error=exc.strerror))
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *_status(status))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


def _status(status: str) -> list[str]:
    return [f"STATUS={status}"] if status else []
