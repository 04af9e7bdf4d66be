"""A thread's features at a moment: what the score, the learner and the explanation read."""

from __future__ import annotations

import math
from dataclasses import dataclass

from watchtower.state.thread_state import (
    DecaySpec,
    ThreadState,
    decayed_rates,
    mean_negativity,
    unique_authors,
)


@dataclass(frozen=True, slots=True)
class Features:
    count: int
    age: float  # seconds since the first mention
    rates: tuple[float, ...]  # mentions per minute at each half-life, shortest first
    acceleration: float  # short rate over long rate: > 1 means the thread is speeding up
    authors: float  # distinct authors (estimate)
    reach: float  # decayed sum of log1p(followers)
    max_followers: int
    negativity: float  # decayed mean P(negative)
    expected_final: float  # count plus what the current intensity promises (see below)
    momentum_size: float  # recent mentions plus the promised ones: falls when a thread calms

    @property
    def rate_short(self) -> float:
        return self.rates[0]


def features(state: ThreadState, now: float, spec: DecaySpec) -> Features:
    per_second = decayed_rates(state, now, spec)
    short, long_ = per_second[0], per_second[-1]
    # Self-exciting view: the current intensity keeps producing mentions while it decays at
    # the long time constant, so about short * tau_long more are still to come.
    promised = short * spec.long_tau
    expected_final = state.count + promised
    # What the thread did lately (decayed count at the middle half-life) rather than in all
    # its life: a big thread that went quiet must not look like a growing one.
    middle = len(per_second) // 2
    recent = per_second[middle] * spec.taus[middle]
    acceleration = short / long_ if long_ > 0 else 1.0
    return Features(
        count=state.count,
        age=max(0.0, now - state.first_seen),
        rates=tuple(r * 60.0 for r in per_second),
        acceleration=acceleration,
        authors=unique_authors(state),
        reach=state.reach,
        max_followers=state.max_followers,
        negativity=mean_negativity(state),
        expected_final=expected_final,
        momentum_size=recent + promised,
    )


def log_ratio(value: float, reference: float) -> float:
    return math.log(max(value, 1e-9) / reference)
