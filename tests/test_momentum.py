"""The momentum model: its prior, relative "big", delayed learning in event time, persistence,
and scores that do not depend on the order the engine works a batch's threads in."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import pytest

from watchtower.config import Config, MomentumConfig
from watchtower.config_parse import Duration
from watchtower.mention import from_dict
from watchtower.scoring.features import GAIN, Features, fading_forecast, features
from watchtower.scoring.momentum import EPOCH, MIN_POPULATION, SETTLE, MomentumModel
from watchtower.state.thread_state import (
    DecaySpec,
    Observation,
    ThreadState,
    new_state,
    observe,
)
from watchtower.wiring import build_engine

from streams import T0, burst, chatter, stream

SPEC = DecaySpec.from_half_lives((300.0, 1800.0, 10800.0), 600.0, 12, 3)
HOUR = 3600.0
Event = tuple[float, str]  # (time, thread): one mention


def model(**changes: Any) -> MomentumModel:
    base = MomentumConfig(big_size=10, big_share=0.0, horizon=Duration(HOUR), min_count=3)
    return MomentumModel(dataclasses.replace(base, **changes), SPEC.taus)


def feed(
    m: MomentumModel,
    events: list[Event],
    observe_too: bool = True,
    states: dict[str, ThreadState] | None = None,
) -> dict[Event, float]:
    """Mentions through thread states and the model, in the order given: P per mention."""
    states = {} if states is None else states
    out = {}
    for at, thread in events:
        f = _step(states, at, thread)
        if observe_too:  # as the engine does it
            m.note(f.thread_id, f.at, f.at - f.age, f.count, f.authors, f.memory)
        out[(at, thread)] = m.predict(f)
    return out


def probe(m: MomentumModel, at: float) -> None:
    """A thread of min_count mentions at ``at``: the engine scores it, so time moves on."""
    feed(m, [(at, f"probe{at}")] * 3)


def _step(states: dict[str, ThreadState], at: float, thread: str) -> Features:
    state = states.get(thread) or new_state(thread, at, SPEC)
    states[thread] = state
    observe(state, Observation(at, f"{thread}@{at}", None, 0, 0.0), SPEC)
    return features(state, at, SPEC)


def bursts(
    n: int, size: int, start: float = T0, every: float = 90.0, spacing: float = 2.0
) -> list[Event]:
    """``n`` threads, the i-th starting ``i * every`` seconds in, ``size`` mentions each."""
    return sorted(
        (start + i * every + spacing * k, f"t{i:02d}") for i in range(n) for k in range(size)
    )


def test_prior_is_even_odds_when_the_forecast_is_the_big_size() -> None:
    m = model(min_authors=4)
    f = Features("t", T0, 4, 60.0, (1.0,), 1.0, 4.0, 0.0, 0, 0.0, 2.0, 4 + GAIN * 2.0, (2.0,))
    assert f.expected_final == 10.0
    assert m.predict(f) == 0.5
    assert m.predict(dataclasses.replace(f, expected_final=20.0)) > 0.85
    assert m.predict(dataclasses.replace(f, count=2)) == 0.0  # below min_count: never
    # three people answering each other: a conversation, however fast it goes
    assert m.predict(dataclasses.replace(f, authors=3.0, expected_final=1000.0)) == 0.0


def test_a_thread_is_learned_only_once_its_horizon_has_passed() -> None:
    m = model()
    # twenty threads that look big for a moment (5 mentions in 8 s) and stop there
    events = bursts(20, 5, every=30.0)
    before = feed(m, events)
    first = min(at for at, _ in events)
    due = first + HOUR
    probe(m, due - 1.0)  # still inside the first thread's horizon
    assert m.learned == 0
    assert m.learner.seen == 0
    probe(m, due + SETTLE + 2 * EPOCH)
    assert m.learned >= 1  # the first threads' outcomes are in: small, all of them
    assert m.learner.bias < 0
    again = feed(model(), events, observe_too=False)
    assert again == before  # what was scored before was scored by the prior alone
    # the same moments, scored now: the learned correction lowers the odds of such threads
    states: dict[str, ThreadState] = {}
    now = due + SETTLE + 2 * EPOCH
    fresh = model()
    for at, thread in events:
        f = dataclasses.replace(_step(states, at, thread), at=now)
        if before[(at, thread)] > 0.2:
            assert m.predict(f) < fresh.predict(f) == before[(at, thread)]


def test_persisted_state_gives_identical_predictions() -> None:
    m = model()
    feed(m, bursts(20, 5, every=30.0))
    probe(m, T0 + 2 * HOUR)  # past the horizon: some outcomes learned
    assert m.learned > 0
    copy = model()
    copy.load_state(m.state_dict())
    later = bursts(5, 12, start=T0 + 3 * HOUR)
    assert feed(copy, later) == feed(m, later)
    after = bursts(12, 30, start=T0 + 5 * HOUR)  # and both go on learning alike
    assert feed(copy, after) == feed(m, after)
    assert (copy.learned, copy.learner.weights) == (m.learned, m.learner.weights)


def test_big_becomes_relative_once_enough_threads_have_traction() -> None:
    m = model(big_share=0.2, big_size=5)
    sizes = [4 + i for i in range(30)]  # threads of 4..33 mentions, 1 s apart, a minute apart
    events = sorted((T0 + 60.0 * i + k, f"s{i:02d}") for i, n in enumerate(sizes) for k in range(n))
    assert m.big_size(T0) == 5  # nothing seen yet: the floor
    feed(m, events)
    end = events[-1][0]
    probe(m, end + SETTLE + 2 * EPOCH)
    big = m.big_size(end + SETTLE + 2 * EPOCH)
    assert big > 5
    # the forecasts of the busiest 20% of the 30 threads, as of the version's boundary (each
    # faded since the thread's last mention), start about there (5% bins)
    boundary = math.floor((end + 2 * EPOCH) / EPOCH) * EPOCH
    forecasts = sorted(_forecasts_at(events, boundary).values())
    assert forecasts[23] <= big <= forecasts[24] * 1.06
    assert big < sorted(_forecasts_at(events, None).values())[23]  # they did fade
    floor = model(big_share=0.2, big_size=10_000)
    feed(floor, events)
    assert floor.big_size(end + SETTLE + 2 * EPOCH) == 10_000  # never below the floor


def test_conversations_do_not_lower_big() -> None:
    """A hundred two-person threads next to twelve cascades: "big" is judged among the
    cascades, as if the conversations were not there (else 80% of the threads would be talks)."""
    cascades = sorted((T0 + 60.0 * i + k, f"c{i:02d}") for i in range(12) for k in range(40))
    talks = [(T0 + 30.0 * i + k, f"talk{i:03d}") for i in range(100) for k in range(5)]
    end = T0 + 3600.0
    bigs = []
    for with_talks in (False, True):
        m = model(big_share=0.2, big_size=5, min_authors=3)
        for at, thread in sorted(cascades + (talks if with_talks else [])):
            authors = 2.0 if thread.startswith("talk") else 40.0
            # cascades forecast at 50 (a memory that fades over hours), talks at their 10
            m.note(
                thread,
                at,
                at,
                10,
                authors,
                (0.0, 0.0, 40.0 / GAIN * 3) if authors > 2 else (0.0,) * 3,
            )
        probe(m, end)
        bigs.append(m.big_size(end))
    assert bigs[0] > 40  # among the cascades alone
    assert bigs[1] == bigs[0]


def _forecasts_at(events: list[Event], at: float | None) -> dict[str, float]:
    """Each thread's forecast at ``at``, faded since its last mention (None: at it)."""
    states: dict[str, ThreadState] = {}
    last = {thread: _step(states, t, thread) for t, thread in events}
    return {
        thread: fading_forecast(f.count, f.memory, SPEC.taus, 0.0 if at is None else at - f.at)
        for thread, f in last.items()
    }


def test_scores_do_not_depend_on_how_the_engine_orders_a_batch() -> None:
    """The engine works a batch thread by thread: a model fed that way, for any batch that
    spans less than SETTLE, scores every mention as a model fed in time order does."""
    events = bursts(MIN_POPULATION + 6, 120, every=40.0, spacing=5.0)
    in_order = feed(model(big_share=0.2, big_size=5), events)
    for size in (7, 50, 200):
        m = model(big_share=0.2, big_size=5)
        states: dict[str, ThreadState] = {}  # the store: each thread's state across batches
        scores: dict[Event, float] = {}
        for i in range(0, len(events), size):
            batch = events[i : i + size]
            assert batch[-1][0] - batch[0][0] < SETTLE
            by_thread = sorted(batch, key=lambda e: (e[1], e[0]))
            scores |= feed(m, by_thread, states=states)
        assert scores == in_order
    relative = [p for (at, _), p in in_order.items() if at > events[0][0] + 900]
    assert len({round(p, 6) for p in relative}) > 20
    m = model(big_share=0.2, big_size=5)
    feed(m, events)
    assert m.big_size(events[-1][0]) > 5  # "big" did turn relative during the stream


async def test_engine_alerts_do_not_depend_on_batch_boundaries_with_many_threads() -> None:
    parts = [burst(f"r{i}", 200.0 * i, 40, 3.0, "@acme down again?") for i in range(14)]
    records = stream(*parts, chatter(120, 20.0))
    outputs = []
    for size in (1, 9, 60):  # batches spanning less than SETTLE (see momentum.py)
        engine = build_engine(Config())
        mentions = [from_dict(r, 4000) for r in records]
        out = []
        for i in range(0, len(mentions), size):
            out += [t.to_json() for t in await engine.process(mentions[i : i + size])]
        outputs.append(out)
    assert outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


def test_saved_state_with_other_half_lives_is_refused() -> None:
    """Memories saved under other half-lives would fade at the wrong speed: start afresh."""
    m = model()
    feed(m, bursts(3, 5))
    other = MomentumModel(m.config, (60.0, 600.0, 6000.0))
    with pytest.raises(ValueError, match="half-lives"):
        other.load_state(m.state_dict())
    model().load_state(m.state_dict())  # the same half-lives: taken


def test_state_saved_before_fading_keeps_what_was_learned() -> None:
    """An upgrade from format 1 (a population without memories): the learned correction and
    the snapshots waiting for their outcome are kept, the population starts afresh."""
    m = model()
    feed(m, bursts(20, 5, every=30.0))
    probe(m, T0 + 2 * HOUR)
    assert m.learned > 0
    old = pickle.loads(m.state_dict())  # noqa: S301 - our own
    old["format"], old["population"] = 1, object()  # format 1's population, unreadable now
    copy = model()
    copy.load_state(pickle.dumps(old))
    assert (copy.learned, copy.learner.weights) == (m.learned, m.learner.weights)
    assert copy.population.size == 0
    old["format"] = 3
    with pytest.raises(ValueError, match="unknown format"):
        model().load_state(pickle.dumps(old))
