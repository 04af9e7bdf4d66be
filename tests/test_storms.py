"""Complaint storms: the per-brand baseline and storm episodes, on hand-made and synthetic data."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import pytest

from watchtower.alerting.alert import AlertTransition
from watchtower.config import StormConfig
from watchtower.config_parse import Duration
from watchtower.decide.storms import StormWatch
from watchtower.errors import ConfigError
from watchtower.mention import Author, Mention, from_dict
from watchtower.scoring.baseline import Baseline
from watchtower.synth import DEFAULT_START, generate

T0 = 1_767_600_000.0  # 2026-01-05T08:00:00Z, a multiple of the 15-minute bucket
WIDTH = 900.0
CFG = StormConfig()
ANGRY = "@acme down again, cannot log in, furious"


def bucketed(
    counts: Sequence[int], *, thread: str | None = None, brand: str = "acme"
) -> list[Mention]:
    """``counts[b]`` complaints spread over bucket b; each its own thread unless ``thread``."""
    out = []
    for b, n in enumerate(counts):
        for j in range(n):
            mid = f"{brand}-{b}-{j}"
            at = T0 + b * WIDTH + (j + 0.5) * WIDTH / n
            author = Author(id=f"a{b}-{j}", handle=f"h{b}-{j}", followers=j)
            out.append(Mention(mid, at, ANGRY, brand=brand, author=author, thread_id=thread))
    return sorted(out, key=lambda m: (m.created_at, m.id))


def steady(buckets: int, mean: float = 12.0, seed: int = 1) -> list[int]:
    """Poisson counts around a steady rate (the noise a baseline must not call a storm)."""
    rng = random.Random(seed)
    out = []
    for _ in range(buckets):
        n, limit = 0, rng.random()
        while limit > pow(2.718281828, -mean):
            n += 1
            limit *= rng.random()
        out.append(n)
    return out


def run(
    mentions: Sequence[Mention], cfg: StormConfig = CFG, advance_every: int = 0
) -> list[AlertTransition]:
    """Every mention is a complaint (P(negative) 1); time then runs on 3 hours."""
    watch = StormWatch(cfg)
    out: list[AlertTransition] = []
    for i, m in enumerate(mentions, 1):
        out += watch.observe(m, m.thread_id or m.id, 1.0)
        if advance_every and i % advance_every == 0:
            out += watch.advance(m.created_at)  # what the engine does at a batch end
    out += watch.advance(mentions[-1].created_at + 3 * 3600)
    return out


def states(transitions: Sequence[AlertTransition]) -> list[tuple[str, str]]:
    return [(t.thread_id, "repeat" if t.repeat else t.state) for t in transitions]


# --- the forecaster -----------------------------------------------------------------------


def test_steady_poisson_rate_is_no_storm() -> None:
    assert run(bucketed(steady(4 * 48))) == []  # two days of noise around 12 a bucket


def test_forecast_follows_a_steady_rate() -> None:
    baseline = Baseline(CFG)
    results = []
    for m in bucketed([12] * 24):
        results += baseline.observe(m, m.id, 1.0)
    last = results[-1]
    assert last.brand == "acme"
    assert last.observed == 12
    assert last.threads == 12
    assert last.forecast == pytest.approx(12, abs=0.5)
    assert abs(last.z) < 0.5
    assert results[0].forecast is None  # warming up: no judgement yet


def test_burst_of_separate_complaints_is_a_storm() -> None:
    counts = [*steady(24), 120, 120, *[12] * 12]
    transitions = run(bucketed(counts))
    assert states(transitions) == [("storm:acme", "firing"), ("storm:acme", "resolved")]
    fired, resolved = transitions
    assert fired.at == T0 + 26 * WIDTH  # two storm buckets in a row (pending_for)
    assert fired.level == "storm"
    assert fired.brand == "acme"
    assert fired.episode_id == f"storm:acme@{int(T0 + 24 * WIDTH)}"
    e = fired.explanation
    assert e["observed"] == 120
    assert 8 < e["forecast"] < 20
    assert e["z"] > 10
    assert e["threads"] == 120
    assert [row["observed"] for row in e["buckets"]][-2:] == [120, 120]
    assert fired.sparkline.endswith("██")
    assert len(fired.top_mentions) == 3
    assert e["top_texts"][0] == ANGRY
    assert "120 separate complaining threads" in fired.why
    assert resolved.at == T0 + 30 * WIDTH  # one hour back near the forecast
    assert resolved.episode_id == fired.episode_id
    assert resolved.sequence == 2


def test_burst_from_one_thread_is_no_storm() -> None:
    viral = bucketed([0] * 24 + [120, 120, 120], thread="viral-root")
    assert run(sorted([*bucketed([12] * 36), *viral], key=lambda m: m.created_at)) == []


def test_burst_needs_enough_separate_threads() -> None:
    # x10 a quiet brand's rate, but 6 complaints are fewer than min_threads (8)
    assert run(bucketed([0] * 16 + [6, 6, 6] + [0] * 8)) == []


def test_a_storm_does_not_become_its_own_baseline() -> None:
    counts = [*steady(24), *[120] * 16]  # four hours of storm
    baseline = Baseline(CFG)
    results = []
    for m in bucketed(counts):
        results += baseline.observe(m, m.id, 1.0)
    last = results[-1]
    assert last.forecast is not None
    assert last.forecast < last.observed / 2  # each bucket taught at most 3 sd above forecast
    assert last.z > CFG.z_enter  # so four hours in, the storm is still a storm


# --- hysteresis ---------------------------------------------------------------------------


def test_a_flickering_storm_fires_and_resolves_once() -> None:
    flicker = [60, 12] * 8  # four hours hovering around the thresholds
    counts = [*steady(24), 120, 120, *flicker, *[12] * 8]
    assert states(run(bucketed(counts))) == [
        ("storm:acme", "firing"),
        ("storm:acme", "repeat"),  # still going after repeat_interval (4 h)
        ("storm:acme", "resolved"),
    ]
    no_hysteresis = dataclasses.replace(
        CFG, z_exit=CFG.z_enter, resolve_after=Duration(0), pending_for=Duration(0)
    )
    assert len(run(bucketed(counts), no_hysteresis)) > 3  # the same stream flaps without it


def test_a_lone_storm_bucket_waits_for_pending_for() -> None:
    counts = [*steady(24), 120, *steady(12, seed=3)]
    assert run(bucketed(counts)) == []
    eager = dataclasses.replace(CFG, pending_for=Duration(0))
    assert states(run(bucketed(counts), eager))[0] == ("storm:acme", "firing")


# --- event time, bounds, persistence -------------------------------------------------------


def test_output_does_not_depend_on_batch_boundaries() -> None:
    counts = [*steady(24), 120, 120, *steady(12, seed=2)]
    mentions = bucketed(counts)
    outputs = [[t.to_json() for t in run(mentions, advance_every=k)] for k in (0, 1, 7, 500)]
    assert outputs[0]
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]


def test_state_round_trip_continues_the_same() -> None:
    mentions = bucketed([*steady(24), 120, 120, 120, *steady(12, seed=2)])
    cut = next(i for i, m in enumerate(mentions) if m.created_at > T0 + 26.5 * WIDTH)  # mid-storm
    whole = run(mentions)
    first = StormWatch(CFG)
    head = [t for m in mentions[:cut] for t in first.observe(m, m.id, 1.0)]
    second = StormWatch(CFG)
    second.load_state(first.state_dict())
    assert "acme" in second.firing
    tail = [t for m in mentions[cut:] for t in second.observe(m, m.id, 1.0)]
    tail += second.advance(mentions[-1].created_at + 3 * 3600)
    assert [t.to_json() for t in head + tail] == [t.to_json() for t in whole]
    with pytest.raises(ValueError, match="bucket"):
        StormWatch(dataclasses.replace(CFG, bucket=Duration(600))).load_state(first.state_dict())


def test_brands_are_capped_least_recently_mentioned_first() -> None:
    baseline = Baseline(dataclasses.replace(CFG, max_brands=2))
    for i, brand in enumerate(["a", "b", "a", "c"]):
        baseline.observe(Mention(f"m{i}", T0 + i, ANGRY, brand=brand), f"m{i}", 1.0)
    assert sorted(baseline.brands) == ["a", "c"]


def test_threads_past_the_cap_still_count() -> None:
    baseline = Baseline(dataclasses.replace(CFG, max_threads_per_bucket=5))
    for m in bucketed([20, 1]):
        closed = baseline.observe(m, m.id, 1.0)
    assert closed[0].observed == 20
    assert closed[0].threads == 20


def test_a_silent_stream_teaches_nothing_and_long_gaps_are_skipped() -> None:
    baseline = Baseline(CFG)
    for m in bucketed([12] * 12):
        baseline.observe(m, m.id, 1.0)
    a_year = 365 * 86400
    results = baseline.advance(T0 + a_year)  # the feed was down: no bucket was learned
    assert len(results) < 30  # not 35,000 buckets
    late = Mention("late", T0 + a_year + 1, ANGRY, brand="acme")
    results = baseline.observe(late, "late", 1.0)
    results += baseline.advance(T0 + a_year + WIDTH)
    assert results[-1].forecast == pytest.approx(12, abs=0.5)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="z_exit"):
        StormConfig(z_exit=5.0)
    with pytest.raises(ConfigError, match="bucket"):
        StormConfig(bucket=Duration(0))


# --- a synthetic outage ---------------------------------------------------------------------


def test_synthetic_outage_is_flagged_for_its_brand_only() -> None:
    outage_at = DEFAULT_START + 4 * 3600
    records = generate(5, 600, 6.0, outage_at=outage_at, outage_brand="shopfast")
    watch = StormWatch(CFG)
    roots: dict[str, str] = {}
    out: list[AlertTransition] = []
    for record in records:
        m = from_dict(record, 4000)
        parent = m.parent
        root = m.thread_id or (roots.get(parent, parent) if parent else m.id)
        roots[m.id] = root
        out += watch.observe(m, root, 1.0 if m.label == "negative" else 0.0)
    fired = [t for t in out if t.state == "firing" and not t.repeat]
    assert [t.thread_id for t in fired] == ["storm:shopfast"]
    assert 0 < fired[0].at - outage_at <= 1800
