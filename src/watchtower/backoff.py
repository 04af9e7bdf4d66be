"""Jittered, capped exponential backoff for every reconnect and retry of the daemon.

Reconnects use full jitter (a uniform draw below the capped exponential): workers that lost the
same broker at the same moment do not come back in lockstep. Notification retries draw from the
upper half of the step: they spread out too, yet none comes back sooner than half the plan.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 32)))


def retry_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Delay before notification retry ``attempt`` (1-based): initial doubling to cap."""
    step = min(cap, initial * 2.0 ** min(attempt - 1, 60))
    return rng.uniform(step / 2, step)
