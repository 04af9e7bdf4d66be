"""Levels with hysteresis, in event time: when an episode fires, escalates and resolves.

Enter a level only once its threshold has held for ``pending_for``; leave only after the score
stays under the exit threshold for ``keep_firing_for`` (so a thread hovering at a threshold does
not flap). A drop below a higher level's exit steps the episode down quietly; below the lowest
level's exit, or no mention for ``resolve_after_quiet``, it resolves. A firing episode is
re-notified at most every ``repeat_interval``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from watchtower.config import AlertConfig, LevelConfig, level_rank
from watchtower.state.thread_state import Episode

Change = Literal["firing", "escalated", "repeat", "resolved"]


@dataclass(frozen=True, slots=True)
class Decision:
    change: Change
    level: str  # for "resolved", the highest level the episode reached
    why: str  # the short reason, for people
    episode_id: str
    sequence: int  # the episode's nth transition: with episode_id, the idempotency key


class Levels:
    def __init__(self, levels: tuple[LevelConfig, ...], alerts: AlertConfig) -> None:
        self.levels = levels
        self.alerts = alerts
        self._rank = level_rank(levels)
        self._lowest_enter = min((level.enter for level in levels), default=math.inf)

    def target(self, score: float) -> LevelConfig | None:
        """The highest level whose enter threshold the score reaches."""
        for level in reversed(self.levels):
            if score >= level.enter:
                return level
        return None

    def decide(
        self,
        ep: Episode,
        thread_id: str,
        now: float,
        score: float,
        last_seen: float,
        can_rise: bool = True,
    ) -> Decision | None:
        """Update the episode in place for ``score`` at ``now``; return what changed.

        Only a mention can start or raise an episode (``can_rise``): the passing of time alone
        (a tick) can hold it, step it down or resolve it.
        """
        if ep.level is None and ep.pending_level is None and score < self._lowest_enter:
            return None  # the common case: a quiet thread below every threshold
        if ep.level is not None and now - last_seen >= self.alerts.resolve_after_quiet:
            return self._resolve(ep, f"quiet for {_minutes(now - last_seen)}")
        target = self.target(score)
        current = self._rank[ep.level] if ep.level is not None else -1
        if can_rise and target is not None and self._rank[target.name] > current:
            return self._rise(ep, thread_id, target, now, score)
        if can_rise:
            ep.pending_level = None
        if ep.level is None:
            return None
        return self._hold(ep, now, score)

    def _rise(
        self, ep: Episode, thread_id: str, target: LevelConfig, now: float, score: float
    ) -> Decision | None:
        if ep.pending_level is None or self._rank[ep.pending_level] < self._rank[target.name]:
            if ep.pending_level is None:
                ep.pending_since = now
            ep.pending_level = target.name
        elif ep.pending_level != target.name:  # fell back to a lower level that still holds
            ep.pending_level = target.name
        if now - ep.pending_since < target.pending_for:
            return None
        change: Change = "escalated" if ep.level is not None else "firing"
        if ep.level is None:
            ep.id = f"{thread_id}@{int(now)}"
            ep.started = now
            ep.notifications = 0
        ep.level = target.name
        ep.peak_level = target.name
        ep.level_since = now
        ep.last_notified = now
        ep.notifications += 1
        ep.pending_level = None
        ep.below_since = None
        why = f"score {score:.2f} >= {target.name} {target.enter}"
        return Decision(change, target.name, why, ep.id or "", ep.notifications)

    def _hold(self, ep: Episode, now: float, score: float) -> Decision | None:
        while ep.level is not None:
            level = self.levels[self._rank[ep.level]]
            if score >= level.exit:
                ep.below_since = None
                break
            if ep.below_since is None:
                ep.below_since = now
            if now - ep.below_since < level.keep_firing_for:
                break
            held = _minutes(now - ep.below_since)
            if self._rank[level.name] == 0:
                return self._resolve(
                    ep, f"score {score:.2f} < {level.name} exit {level.exit} for {held}"
                )
            # Step down quietly (a re-flare escalates again); the time spent below this exit
            # counts for the lower one too, since its exit is lower still.
            ep.level = self.levels[self._rank[level.name] - 1].name
        if ep.level is not None and now - ep.last_notified >= self.alerts.repeat_interval:
            ep.last_notified = now
            ep.notifications += 1
            why = f"still {ep.level}, score {score:.2f}"
            return Decision("repeat", ep.level, why, ep.id or "", ep.notifications)
        return None

    def _resolve(self, ep: Episode, why: str) -> Decision:
        level = ep.peak_level or ep.level or self.levels[0].name
        episode_id = ep.id or ""
        ep.id = None
        ep.level = None
        ep.pending_level = None
        ep.below_since = None
        ep.notifications += 1
        return Decision("resolved", level, why, episode_id, ep.notifications)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"
