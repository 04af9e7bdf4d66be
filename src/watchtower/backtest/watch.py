"""Watchtower on the backtest stream: the real engine, fed in batches exactly as replay does.

A probe on the decision stage (a `Levels` that notes each score before deciding as usual) also
gives, for a sweep of thresholds, when each thread's score first reached each of them: what a
single level at that ``enter`` would have fired (pending_for 0), for the precision-lead curve,
from the same single run.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from watchtower.alerting.alert import AlertTransition
from watchtower.config import Config
from watchtower.decide.levels import Decision, Levels
from watchtower.mention import Mention
from watchtower.replay import full
from watchtower.state.thread_state import Episode
from watchtower.wiring import build_engine

SWEEP = (*(round(0.05 * i, 2) for i in range(1, 20)), 0.97, 0.99)


class ProbedLevels(Levels):
    """Levels that also record when each thread's score first reached each sweep threshold."""

    def __init__(self, config: Config, thresholds: Iterable[float]) -> None:
        super().__init__(config.levels, config.alerts)
        self.thresholds = sorted(thresholds)
        self.crossed: dict[str, list[float]] = {}  # thread -> time each threshold was reached

    def decide(
        self,
        ep: Episode,
        thread_id: str,
        now: float,
        score: float,
        last_seen: float,
        can_rise: bool = True,
    ) -> Decision | None:
        if can_rise:  # only a mention can start an alert
            times = self.crossed.setdefault(thread_id, [])
            reached = bisect.bisect_right(self.thresholds, score)
            times.extend([now] * (reached - len(times)))
        return super().decide(ep, thread_id, now, score, last_seen, can_rise)


@dataclass
class WatchRun:
    first_alert: dict[str, float] = field(default_factory=dict)  # thread -> first firing
    alerts: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # (at, level)
    crossed: dict[str, list[float]] = field(default_factory=dict)
    thresholds: tuple[float, ...] = SWEEP
    mentions: int = 0
    seconds: float = 0.0


async def run_engine(config: Config, stream: Iterable[Mention]) -> WatchRun:
    engine = build_engine(config)
    probe = ProbedLevels(config, SWEEP)
    engine.levels = probe
    run = WatchRun(crossed=probe.crossed)
    started = time.perf_counter()
    batch: list[Mention] = []
    for mention in stream:
        if full(batch, mention):  # as replay cuts them
            _note(run, await engine.process(batch))
            batch = []
        batch.append(mention)
    _note(run, await engine.process(batch))
    run.mentions = engine.stats.mentions
    run.seconds = time.perf_counter() - started
    return run


def _note(run: WatchRun, transitions: list[AlertTransition]) -> None:
    for t in transitions:
        if t.state in ("firing", "escalated") and not t.repeat:
            run.first_alert.setdefault(t.thread_id, t.at)
            run.alerts.setdefault(t.thread_id, []).append((t.at, t.level))


def sweep_first_alerts(run: WatchRun) -> list[dict[str, float]]:
    """For each sweep threshold: thread -> when its score first reached it."""
    out: list[dict[str, float]] = [{} for _ in run.thresholds]
    for thread, times in run.crossed.items():
        for i, at in enumerate(times):
            out[i][thread] = at
    return out
