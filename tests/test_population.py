"""The population "big" is ranked in: each thread at its forecast as of the boundary, faded since
its latest mention, and nothing recorded at or after the boundary."""

from __future__ import annotations

import math
import random

from watchtower.scoring.features import fading_forecast
from watchtower.scoring.population import Population, bin_of, lower_edge

TAUS = (433.0, 2597.0, 15582.0)  # half-lives of 5 min, 30 min and 3 h
HOUR = 3600.0


def shown(population: Population) -> float:
    """The one thread's forecast as the histogram holds it (its bin's upper edge)."""
    return population.quantile(1.0)


def binned(value: float) -> float:
    return lower_edge(bin_of(value) + 1)


def test_a_quiet_thread_fades_bin_by_bin_to_its_size() -> None:
    p = Population(TAUS)
    memory = (2.0, 6.0, 10.0)
    p.move("a", 0.0, 10, memory)
    assert p.apply(60.0)
    assert shown(p) == binned(fading_forecast(10, memory, TAUS, 60.0))
    assert shown(p) > 25.0  # 10 + 3 * 6, barely faded
    changes = 0
    for minute in range(2, 24 * 60, 7):  # with no new mention, at boundaries it never saw
        at = 60.0 * minute
        changes += p.apply(at)
        assert shown(p) == binned(fading_forecast(10, memory, TAUS, at)), minute
    assert changes >= 10  # it came down a bin at a time, each on its own check
    assert shown(p) == binned(10.0)  # a day later: its size, nothing left to come
    assert p.size == 1


def test_a_new_mention_replaces_the_fading_forecast() -> None:
    p = Population(TAUS)
    p.move("a", 0.0, 10, (2.0, 6.0, 10.0))
    p.apply(60.0)
    p.apply(3 * HOUR)
    faded = shown(p)
    p.move("a", 3 * HOUR + 10.0, 30, (5.0, 9.0, 25.0))
    p.apply(3 * HOUR + 60.0)
    assert shown(p) == binned(fading_forecast(30, (5.0, 9.0, 25.0), TAUS, 50.0)) > faded
    assert p.size == 1


def test_only_what_was_recorded_before_the_boundary_counts() -> None:
    p = Population(TAUS)
    p.move("a", 100.0, 10, (1.0, 1.0, 1.0))
    assert not p.apply(100.0)  # at the boundary itself: not yet
    assert p.size == 0
    p.move("a", 130.0, 50, (9.0, 9.0, 9.0))
    assert p.apply(120.0)
    assert shown(p) == binned(fading_forecast(10, (1.0, 1.0, 1.0), TAUS, 20.0))
    p.drop("a", 200.0)
    p.apply(180.0)
    assert shown(p) == binned(fading_forecast(50, (9.0, 9.0, 9.0), TAUS, 50.0))
    assert p.apply(240.0)  # the drop
    assert p.size == 0


def test_the_quantile_ranks_threads_by_their_faded_forecasts() -> None:
    """A thread that burst an hour ago and stopped ranks below one growing steadily now,
    though its forecast at its last mention was higher."""
    p = Population(TAUS)
    p.move("burst", 0.0, 20, (30.0, 30.0, 30.0))  # forecast 110 then
    p.move("steady", HOUR, 40, (2.0, 8.0, 20.0))  # forecast 70 now
    p.apply(HOUR + 60.0)
    assert fading_forecast(20, (30.0, 30.0, 30.0), TAUS, HOUR + 60.0) < 70.0
    assert p.quantile(1.0) == binned(fading_forecast(40, (2.0, 8.0, 20.0), TAUS, 60.0))


def test_the_histogram_is_always_the_faded_forecasts_as_of_its_boundary() -> None:
    """Threads with mentions at random times, applied a minute at a time: at every boundary
    each thread is in the bin of its latest mention's forecast faded to that boundary, whether
    a new mention, a bin-exit check or neither touched it since."""
    rng = random.Random(7)
    p = Population(TAUS)
    latest: dict[str, tuple[float, int, tuple[float, ...]]] = {}
    mentions = sorted((rng.uniform(0.0, 6 * HOUR), f"t{rng.randrange(12)}") for _ in range(600))
    queue = list(mentions)
    for minute in range(1, 12 * 60):
        boundary = 60.0 * minute
        while queue and queue[0][0] < boundary + 120.0:  # recorded up to 2 min ahead
            at, thread = queue.pop(0)
            count, memory = _grown(latest.get(thread), at)
            p.move(thread, at, count, memory)
            latest[thread] = (at, count, memory)
        p.apply(boundary)
        expected = sorted(
            bin_of(fading_forecast(c, m, TAUS, boundary - at))
            for at, c, m in (_as_of(mentions, thread, boundary) for thread in latest)
            if c
        )
        assert _bins(p) == expected, minute


def _grown(
    before: tuple[float, int, tuple[float, ...]] | None, at: float
) -> tuple[int, tuple[float, ...]]:
    """A thread's count and memory after one more mention at ``at``."""
    if before is None:
        return 1, (1.0,) * len(TAUS)
    last, count, memory = before
    return count + 1, tuple(
        m * math.exp(-(at - last) / t) + 1.0 for m, t in zip(memory, TAUS, strict=True)
    )


def _as_of(
    mentions: list[tuple[float, str]], thread: str, boundary: float
) -> tuple[float, int, tuple[float, ...]]:
    state: tuple[float, int, tuple[float, ...]] | None = None
    for at, name in mentions:
        if name == thread and at < boundary:
            state = (at, *_grown(state, at))
    return state or (0.0, 0, ())


def _bins(p: Population) -> list[int]:
    return sorted(b for b, n in p._bins.items() for _ in range(n))
