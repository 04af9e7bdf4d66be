"""Jittered, capped exponential backoff for every reconnect and retry of the daemon.

Full jitter (a uniform draw below the capped exponential) spreads the retries of many workers
that lost the same broker at the same moment, so they do not come back in lockstep.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 32)))
