"""Hysteresis, pending, keep-firing, repeat and quiet resolve, in event time."""

from __future__ import annotations

from collections.abc import Sequence

from watchtower.config import AlertConfig, LevelConfig
from watchtower.config_parse import Duration
from watchtower.decide.levels import Levels
from watchtower.state.thread_state import Episode

LEVELS = (
    LevelConfig(
        "watch", enter=0.5, exit=0.3, pending_for=Duration(60), keep_firing_for=Duration(300)
    ),
    LevelConfig(
        "critical", enter=0.8, exit=0.6, pending_for=Duration(0), keep_firing_for=Duration(300)
    ),
)
ALERTS = AlertConfig(
    repeat_interval=Duration(3600), resolve_after_quiet=Duration(1800), tick=Duration(60)
)


def run(scores: Sequence[tuple[float, float]], last_seen: float | None = None) -> list[str]:
    """Feed (time, score) pairs; return 'time change level' for every decision."""
    levels = Levels(LEVELS, ALERTS)
    ep = Episode()
    out = []
    for at, score in scores:
        d = levels.decide(ep, "t1", at, score, at if last_seen is None else last_seen)
        if d is not None:
            out.append(f"{at:g} {d.change} {d.level}")
    return out


def test_watch_needs_its_pending_time() -> None:
    assert run([(0, 0.55), (30, 0.6), (59, 0.6)]) == []
    assert run([(0, 0.55), (30, 0.6), (60, 0.6)]) == ["60 firing watch"]


def test_pending_restarts_when_the_score_drops_out() -> None:
    assert run([(0, 0.55), (30, 0.2), (60, 0.55), (100, 0.55), (120, 0.55)]) == ["120 firing watch"]


def test_no_flapping_around_the_threshold() -> None:
    scores = [(0, 0.55), (60, 0.55)] + [(60 + 10 * i, 0.45 if i % 2 else 0.55) for i in range(60)]
    assert run(scores) == ["60 firing watch"]


def test_resolves_only_after_keep_firing_below_exit() -> None:
    scores = [(0, 0.6), (60, 0.6), (100, 0.2), (200, 0.2), (399, 0.2), (400, 0.2)]
    assert run(scores) == ["60 firing watch", "400 resolved watch"]


def test_going_back_above_exit_resets_the_keep_firing_clock() -> None:
    scores = [(0, 0.6), (60, 0.6), (100, 0.2), (350, 0.35), (500, 0.2), (700, 0.2), (800, 0.2)]
    assert run(scores) == ["60 firing watch", "800 resolved watch"]


def test_escalates_straight_to_critical_and_steps_down_quietly() -> None:
    scores = [(0, 0.9), (100, 0.5), (400, 0.5), (500, 0.9), (600, 0.1), (900, 0.1)]
    assert run(scores) == [
        "0 firing critical",
        "500 escalated critical",
        "900 resolved critical",
    ]


def test_repeat_interval() -> None:
    scores = [(0, 0.9), (1800, 0.9), (3599, 0.9), (3600, 0.9), (5000, 0.9), (7200, 0.9)]
    assert run(scores) == ["0 firing critical", "3600 repeat critical", "7200 repeat critical"]


def test_quiet_thread_resolves() -> None:
    assert run([(0, 0.9), (1800, 0.9)], last_seen=0) == [
        "0 firing critical",
        "1800 resolved critical",
    ]


def test_episode_ids_and_sequence() -> None:
    levels = Levels(LEVELS, ALERTS)
    ep = Episode()
    first = levels.decide(ep, "t1", 10, 0.9, 10)
    resolved = levels.decide(ep, "t1", 5000, 0.0, 10)
    assert first is not None
    assert resolved is not None
    assert (first.episode_id, first.sequence) == ("t1@10", 1)
    assert (resolved.episode_id, resolved.sequence) == ("t1@10", 2)
    again = levels.decide(ep, "t1", 6000, 0.9, 6000)
    assert again is not None
    assert again.episode_id == "t1@6000"
