"""The recent threads' forecast sizes, as a log histogram that changes only in event time.

Each thread with traction sits in one bin (5% wide) of its latest forecast. A move is recorded
with its event time and applied when the momentum model builds the version whose boundary it
precedes, so the histogram a version reads is the one "as of" its boundary whatever order the
threads of a batch were worked in. Moves of one thread carry non-decreasing times.
"""

from __future__ import annotations

import heapq
import math

_BIN = math.log(1.05)  # 5% wide bins of the forecast


def bin_of(value: float) -> int:
    return math.floor(math.log(value) / _BIN) if value > 1.0 else 0


class Population:
    def __init__(self) -> None:
        self.size = 0  # threads in the histogram as applied
        self._bins: dict[int, int] = {}
        self._latest: dict[str, tuple[int, float]] = {}  # thread -> (bin, time) as recorded
        self._events: list[tuple[float, int, int | None, int | None]] = []  # (at, n, from, to)
        self._sequence = 0

    def move(self, thread: str, at: float, forecast: float) -> None:
        """Record that ``thread``'s forecast is ``forecast`` from ``at`` on."""
        new = bin_of(forecast)
        entry = self._latest.get(thread)
        old = None
        if entry is not None:
            old, last = entry
            if old == new:
                return
            at = max(at, last)
        self._latest[thread] = (new, at)
        self._push(at, old, new)

    def drop(self, thread: str, at: float) -> None:
        """Record that ``thread`` leaves the population at ``at`` (its horizon has passed)."""
        entry = self._latest.pop(thread, None)
        if entry is not None:
            self._push(max(at, entry[1]), entry[0], None)

    def apply(self, boundary: float) -> bool:
        """Apply the recorded changes earlier than ``boundary``; say whether there were any."""
        events = self._events
        changed = False
        while events and events[0][0] < boundary:
            _, _, old, new = heapq.heappop(events)
            if old is not None:
                self._bins[old] -= 1
                if not self._bins[old]:
                    del self._bins[old]
                self.size -= 1
            if new is not None:
                self._bins[new] = self._bins.get(new, 0) + 1
                self.size += 1
            changed = True
        return changed

    def quantile(self, q: float) -> float:
        """The forecast that a share ``q`` of the applied population stays at or under."""
        rank = q * self.size
        seen = 0
        for b in sorted(self._bins):
            seen += self._bins[b]
            if seen >= rank:
                return math.exp((b + 1) * _BIN)
        return math.inf

    def _push(self, at: float, old: int | None, new: int | None) -> None:
        self._sequence += 1  # ties: any order gives the same histogram
        heapq.heappush(self._events, (at, self._sequence, old, new))
