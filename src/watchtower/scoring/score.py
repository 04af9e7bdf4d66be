"""One number per thread from momentum and anger, and the reasons behind it."""

from __future__ import annotations

from dataclasses import dataclass

from watchtower.config import ScoringConfig
from watchtower.scoring.features import Features

_CALM_WEIGHT = 0.6  # in "boost" mode a calm thread keeps this share of its momentum


@dataclass(frozen=True, slots=True)
class Score:
    value: float  # what the levels' thresholds compare against, 0..1
    momentum: float  # P(the thread becomes big)
    anger: float  # 0..1: mean negativity relative to the configured minimum
    big: float | None = None  # the size "big" meant for this score (the model's, when given)
    baseline: float = 0.0  # the forecast at the thread's last resolve: momentum counts from it


def score(
    f: Features,
    momentum: float,
    cfg: ScoringConfig,
    big: float | None = None,
    baseline: float = 0.0,
) -> Score:
    value = gated(momentum, f.negativity, cfg)
    return Score(value, momentum, anger(f.negativity, cfg), big, baseline)


def gated(momentum: float, negativity: float, cfg: ScoringConfig) -> float:
    """The score's value alone: what the levels compare, computed at every mention."""
    if cfg.sentiment_gate == "off":
        return momentum
    if cfg.sentiment_gate == "boost":
        return momentum * (_CALM_WEIGHT + (1.0 - _CALM_WEIGHT) * anger(negativity, cfg))
    return momentum if negativity >= cfg.min_negativity else 0.0  # require: only angry threads


def anger(negativity: float, cfg: ScoringConfig) -> float:
    return min(1.0, negativity / cfg.min_negativity) if cfg.min_negativity > 0 else 1.0
