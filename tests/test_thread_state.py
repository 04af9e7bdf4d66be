"""Decay maths against values computed by hand."""

from __future__ import annotations

import math

import pytest

from watchtower.state.thread_state import (
    DecaySpec,
    Observation,
    decayed_rates,
    growth_curve,
    mean_negativity,
    new_state,
    observe,
    unique_authors,
)

SPEC = DecaySpec.from_half_lives((60.0, 600.0), bucket_width=60.0, bucket_count=4, top_size=2)


def obs(at: float, author: str = "a", followers: int = 0, neg: float = 0.0) -> Observation:
    return Observation(at, f"m{at}", author, followers, neg, handle=author)


def test_rate_halves_every_half_life() -> None:
    state = new_state("t", 0.0, SPEC)
    for at in (0.0, 60.0, 120.0):
        observe(state, obs(at), SPEC)
    # short half-life 60 s: ((1 * 0.5) + 1) * 0.5 + 1 = 1.75
    assert state.rates[0] == pytest.approx(1.75)
    # long half-life 600 s: each step keeps 2 ** -0.1
    k = 2**-0.1
    assert state.rates[1] == pytest.approx((k + 1) * k + 1)
    tau = 60.0 / math.log(2)
    assert decayed_rates(state, 180.0, SPEC)[0] == pytest.approx(1.75 * 0.5 / tau)


def test_late_mention_adds_decayed_weight_without_rewinding() -> None:
    state = new_state("t", 100.0, SPEC)
    observe(state, obs(100.0), SPEC)
    observe(state, obs(40.0), SPEC)  # 60 s late: worth half at the short half-life
    assert state.last_seen == 100.0
    assert state.first_seen == 40.0
    assert state.rates[0] == pytest.approx(1.5)
    assert state.count == 2


def test_negativity_is_a_decayed_mean() -> None:
    state = new_state("t", 0.0, SPEC)
    observe(state, obs(0.0, neg=1.0), SPEC)
    observe(state, obs(600.0, neg=0.0), SPEC)  # one long half-life later: old weight 0.5
    assert mean_negativity(state) == pytest.approx(0.5 / 1.5)


def test_unique_authors_exact_when_small() -> None:
    state = new_state("t", 0.0, SPEC)
    for i, author in enumerate(["a", "b", "a", "c", "b"]):
        observe(state, obs(float(i), author=author), SPEC)
    assert unique_authors(state) == 3.0


def test_unique_authors_estimate_when_large() -> None:
    state = new_state("t", 0.0, SPEC)
    for i in range(2000):
        observe(state, obs(float(i), author=f"user{i}"), SPEC)
    assert 1200 < unique_authors(state) < 3000


def test_growth_curve_shifts_with_time() -> None:
    state = new_state("t", 0.0, SPEC)
    for at in (0.0, 10.0, 70.0, 130.0, 135.0):
        observe(state, obs(at), SPEC)
    assert state.buckets == [0, 2, 1, 2]
    assert growth_curve(state, 190.0, SPEC) == [2, 1, 2, 0]
    assert growth_curve(state, 10_000.0, SPEC) == [0, 0, 0, 0]


def test_top_mentions_keeps_the_most_followed() -> None:
    state = new_state("t", 0.0, SPEC)
    for i, followers in enumerate([10, 5000, 30, 900]):
        observe(state, obs(float(i), author=f"u{i}", followers=followers), SPEC)
    assert [m.followers for m in state.top] == [5000, 900]
    assert state.max_followers == 5000
    assert state.reach == pytest.approx(
        sum(math.log1p(f) * 2 ** (-(3 - i) / 600) for i, f in enumerate([10, 5000, 30, 900]))
    )
