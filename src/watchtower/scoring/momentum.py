"""How likely a thread is to become big: the momentum half of the score."""

from __future__ import annotations

import math

from watchtower.scoring.features import Features, log_ratio

_SLOPE = 2.0  # logistic steepness in log-size: x2 the big size -> 0.80, /2 -> 0.20


class MomentumModel:
    """P(the thread is on its way to big_size), from its recent and promised mentions."""

    def __init__(self, big_size: int, min_count: int) -> None:
        self.big_size = big_size
        self.min_count = min_count

    def predict(self, f: Features) -> float:
        if f.count < self.min_count:
            return 0.0
        return 1.0 / (1.0 + math.exp(-_SLOPE * log_ratio(f.momentum_size, self.big_size)))
