"""A thread's features at a moment: what the score, the learner and the explanation read.

The forecast is self-exciting (SEISMIC-like, Zhao et al. 2015): every mention keeps drawing new
ones for a while, with a memory that fades slowly (a power-law-like kernel, here the mean of the
decays at the configured half-lives, from minutes to hours). ``pending`` is the sum of what is
left of that memory over all the thread's mentions, so it is high while a thread is busy and
fades once it calms; ``expected_final`` is the count plus ``GAIN`` new mentions per unit left.
Every quantity is a count or a ratio of counts: nothing depends on a platform's scale.
"""

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

# Mentions still to come per unit of pending memory: a prior for the forecast's scale, which
# the momentum model calibrates from outcomes.
GAIN = 3.0


@dataclass(frozen=True, slots=True)
class Features:
    thread_id: str
    at: float  # event time these features describe
    count: int
    age: float  # seconds since the first mention
    rates: tuple[float, ...]  # mentions per minute at each half-life, shortest first
    acceleration: float  # short rate over long rate: > 1 means the thread is speeding up
    authors: float  # distinct authors (estimate)
    reach: float  # decayed sum of log1p(followers)
    max_followers: int
    negativity: float  # decayed mean P(negative)
    pending: float  # decayed mentions, mean over the half-lives: memory still producing
    expected_final: float  # count + GAIN * pending: the self-exciting forecast of the size
    memory: tuple[float, ...]  # the decayed counts pending is the mean of, shortest first

    @property
    def rate_short(self) -> float:
        return self.rates[0]


def memory(state: ThreadState, now: float, spec: DecaySpec) -> tuple[float, ...]:
    """The thread's decayed counts at ``now``, one per half-life: its memory still producing
    mentions (``pending`` is their mean). The engine computes it at every mention."""
    counts = state.rates  # a decayed rate is kept as a decayed count, as of last_seen
    dt = now - state.last_seen
    if dt > 0:
        return tuple(c * math.exp(-dt / tau) for c, tau in zip(counts, spec.taus, strict=True))
    return tuple(counts)


def forecast_of(count: int, memory: tuple[float, ...]) -> float:
    """The self-exciting forecast of the final size, ``expected_final`` without the rest of
    `Features`, from the count and the `memory`."""
    return count + GAIN * sum(memory) / len(memory)


def fading_forecast(
    count: int, memory: tuple[float, ...], taus: tuple[float, ...], later: float
) -> float:
    """The forecast ``later`` seconds after ``memory`` was taken, had no mention come since:
    it fades towards the count as the memory does."""
    return fading_forecast_and_slope(count, memory, taus, later)[0]


def fading_forecast_and_slope(
    count: int, memory: tuple[float, ...], taus: tuple[float, ...], later: float
) -> tuple[float, float]:
    """`fading_forecast` and its derivative in ``later`` (negative while memory is left)."""
    left = slope = 0.0
    for m, tau in zip(memory, taus, strict=True):
        part = m * math.exp(-later / tau)
        left += part
        slope -= part / tau
    return count + GAIN * left / len(memory), GAIN * slope / len(memory)


def features(state: ThreadState, now: float, spec: DecaySpec) -> Features:
    per_second = decayed_rates(state, now, spec)
    short, long_ = per_second[0], per_second[-1]
    kept = memory(state, now, spec)
    pending = sum(kept) / len(kept)
    return Features(
        thread_id=state.thread_id,
        at=now,
        count=state.count,
        age=max(0.0, now - state.first_seen),
        rates=tuple(r * 60.0 for r in per_second),
        acceleration=short / long_ if long_ > 0 else 1.0,
        authors=unique_authors(state),
        reach=state.reach,
        max_followers=state.max_followers,
        negativity=mean_negativity(state),
        pending=pending,
        expected_final=forecast_of(state.count, kept),  # exactly what the engine scored
        memory=kept,
    )
