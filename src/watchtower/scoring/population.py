"""The recent threads' forecast sizes, as a log histogram that changes only in event time.

Each thread with traction sits in one bin (5% wide) of its forecast *as of the histogram's
boundary*: the forecast of its latest mention, faded for the time since (`fading_forecast`).
A thread that has gone quiet so counts at about its size, not at the forecast of its last burst:
that over-reaches most on small fast platforms, where it had put "big" at twice the size the top
share of threads reach (PHEME reply threads: 39 posts for a true 22, docs/backtest.md).

A move (a mention) is recorded with its event time and applied when the momentum model builds
the version whose boundary it follows, so the histogram a version reads is the one "as of" its
boundary whatever order the threads of a batch were worked in. Moves of one thread must carry
non-decreasing times (the momentum model keeps each thread's time monotone). A thread is
re-binned when a mention arrives and when its fading forecast leaves its bin (one pending check
a thread, at the time that happens).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from watchtower.scoring.features import fading_forecast, fading_forecast_and_slope

_BIN = math.log(1.05)  # 5% wide bins of the forecast
_SOLVED = 1.0  # seconds: a bin's exit time is found to within this


def bin_of(value: float) -> int:
    return math.floor(math.log(value) / _BIN) if value > 1.0 else 0


def lower_edge(bin_: int) -> float:
    """The smallest forecast in ``bin_``."""
    return math.exp(bin_ * _BIN) if bin_ > 0 else 1.0


@dataclass(slots=True)
class _Move:
    at: float
    count: int
    memory: tuple[float, ...] | None  # None: the thread leaves


@dataclass(slots=True)
class _Placed:
    at: float  # the latest move applied: its time, count and memory
    count: int
    memory: tuple[float, ...]
    bin: int = -1  # -1: not binned yet
    check: int = 0  # stamp of the pending bin-exit check (0: none); another stamp is stale
    check_at: float = 0.0


class Population:
    def __init__(self, taus: tuple[float, ...]) -> None:
        self.taus = taus  # the decays of a memory, one per half-life
        self.size = 0  # threads in the histogram as applied
        self._bins: dict[int, int] = {}
        self._placed: dict[str, _Placed] = {}
        self._recorded: dict[str, list[_Move]] = {}  # moves not applied yet, oldest first
        self._due: list[tuple[float, int, str]] = []  # (time, stamp, thread): a move or check
        self._stamp = 0

    def move(self, thread: str, at: float, count: int, memory: tuple[float, ...]) -> None:
        """Record that ``thread`` has ``count`` mentions and this memory at ``at``."""
        self._record(thread, _Move(at, count, memory))

    def drop(self, thread: str, at: float) -> None:
        """Record that ``thread`` leaves the population at ``at`` (its horizon has passed)."""
        moves = self._recorded.get(thread)
        if moves:
            self._record(thread, _Move(max(at, moves[-1].at), 0, None))
        elif thread in self._placed:
            self._record(thread, _Move(at, 0, None))

    def apply(self, boundary: float) -> bool:
        """Bring the histogram to ``boundary``: apply the moves recorded before it and re-bin
        every thread they or its fading touch; say whether any bin changed."""
        touched: set[str] = set()
        changed = False
        while self._due and self._due[0][0] < boundary:
            _, stamp, thread = heapq.heappop(self._due)
            placed = self._placed.get(thread)
            if placed is not None and placed.check == stamp:  # its bin-exit check
                placed.check = 0  # done: the re-bin schedules the next one
                touched.add(thread)
            moves = self._recorded.get(thread)
            if moves and moves[0].at < boundary:  # its moves before the boundary, in order
                taken = 1
                while taken < len(moves) and moves[taken].at < boundary:
                    taken += 1
                changed = self._take(thread, moves[taken - 1]) or changed
                del moves[:taken]
                if moves:
                    self._schedule(moves[0].at, thread)
                else:
                    del self._recorded[thread]
                touched.add(thread)
        for thread in sorted(touched):  # sorted: stamps, so check order, never depend on sets
            changed = self._rebin(thread, boundary) or changed
        return changed

    def quantile(self, q: float) -> float:
        """The forecast that a share ``q`` of the applied population stays at or under."""
        rank = q * self.size
        seen = 0
        for b in sorted(self._bins):
            seen += self._bins[b]
            if seen >= rank:
                return lower_edge(b + 1)
        return math.inf

    def _record(self, thread: str, move: _Move) -> None:
        moves = self._recorded.get(thread)
        if moves is None:
            self._recorded[thread] = [move]
            self._schedule(move.at, thread)
        else:
            moves.append(move)

    def _take(self, thread: str, move: _Move) -> bool:
        """Make ``move`` the thread's latest; say whether that took it out of the histogram
        (a new or moved thread is binned by `_rebin`)."""
        placed = self._placed.get(thread)
        if move.memory is None:
            if placed is None:
                return False
            del self._placed[thread]
            if placed.bin >= 0:
                self._unbin(placed.bin)
            return True
        if placed is None:
            self._placed[thread] = _Placed(move.at, move.count, move.memory)
        else:
            placed.at, placed.count, placed.memory = move.at, move.count, move.memory
        return False

    def _rebin(self, thread: str, boundary: float) -> bool:
        placed = self._placed.get(thread)
        if placed is None:
            return False
        later = boundary - placed.at
        new = bin_of(fading_forecast(placed.count, placed.memory, self.taus, later))
        if not (new == placed.bin and self._check_holds(placed)):
            exit_at = self._exit(placed, new, later)
            placed.check = 0
            if exit_at is not None:
                placed.check_at = placed.at + exit_at
                placed.check = self._schedule(placed.check_at, thread)
        if new == placed.bin:
            return False
        if placed.bin >= 0:
            self._unbin(placed.bin)
        placed.bin = new
        self._bins[new] = self._bins.get(new, 0) + 1
        self.size += 1
        return True

    def _check_holds(self, placed: _Placed) -> bool:
        """Whether the pending check is still not late after a new move (a mention only ever
        raises the curve, so for a busy thread it nearly always is): saves a solve a minute."""
        if not placed.check:
            return False
        later = placed.check_at - placed.at
        return fading_forecast(placed.count, placed.memory, self.taus, later) >= lower_edge(
            placed.bin
        )

    def _exit(self, placed: _Placed, bin_: int, later: float) -> float | None:
        """Seconds after its latest move when the thread's fading forecast falls out of
        ``bin_`` (None: never, it fades to its count within the bin). Newton's steps on a
        convex decreasing curve approach the crossing from before it: a check is never late."""
        edge = lower_edge(bin_)
        if placed.count >= edge:
            return None
        t = later
        for _ in range(50):
            value, slope = fading_forecast_and_slope(placed.count, placed.memory, self.taus, t)
            excess = value - edge
            if excess <= 0.0 or slope >= 0.0:
                break
            step = -excess / slope
            t += step
            if step < _SOLVED:
                break
        return t

    def _unbin(self, bin_: int) -> None:
        self._bins[bin_] -= 1
        if not self._bins[bin_]:
            del self._bins[bin_]
        self.size -= 1

    def _schedule(self, at: float, thread: str) -> int:
        self._stamp += 1
        heapq.heappush(self._due, (at, self._stamp, thread))
        return self._stamp
