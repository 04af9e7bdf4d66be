"""An online logistic regression that learns corrections to a prior, one outcome at a time.

P = sigmoid(offset + bias + w . x), where ``offset`` is the prior's logit for the same input.
With nothing learned it is the prior itself; each outcome moves it by AdaGrad steps, and an L2
pull towards zero keeps it near the prior where outcomes are few or say little. (A river
classifier would start from even odds and drag the prior towards 0.5 while it knows little.)
Plain floats and dicts: deterministic, cheap, and what a model version copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class OffsetLogistic:
    def __init__(self, rate: float = 0.05, l2: float = 1e-3) -> None:
        self.rate = rate
        self.l2 = l2
        self.weights: dict[str, float] = {}
        self.bias = 0.0
        self._squares: dict[str, float] = {}  # AdaGrad: summed squared gradients per weight
        self.seen = 0

    def logit(self, x: Mapping[str, float], offset: float) -> float:
        weights = self.weights
        return offset + self.bias + sum(weights.get(k, 0.0) * v for k, v in x.items())

    def predict_one(self, x: Mapping[str, float], offset: float) -> float:
        return sigmoid(self.logit(x, offset))

    def learn_one(self, x: Mapping[str, float], offset: float, y: bool) -> None:
        error = self.predict_one(x, offset) - (1.0 if y else 0.0)
        self._step("", error, 1.0)
        for name, value in x.items():
            self._step(name, error, value)
        self.seen += 1

    def _step(self, name: str, error: float, value: float) -> None:
        current = self.bias if not name else self.weights.get(name, 0.0)
        gradient = error * value + self.l2 * current
        square = self._squares.get(name, 0.0) + gradient * gradient
        self._squares[name] = square
        updated = current - self.rate * gradient / math.sqrt(square + 1e-12)
        if name:
            self.weights[name] = updated
        else:
            self.bias = updated


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
