"""An alert transition as people and machines receive it: what, how fast, how angry, who, where."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson

from watchtower.config import Config
from watchtower.decide.levels import Decision
from watchtower.mention import format_time
from watchtower.scoring.features import Features
from watchtower.scoring.score import Score
from watchtower.state.thread_state import ThreadState

_BARS = "▁▂▃▄▅▆▇█"
_STATE = {"firing": "firing", "escalated": "escalated", "repeat": "firing", "resolved": "resolved"}
# Zero-width (non-)joiners: invisible, yet they build emoji sequences and shape several scripts.
_JOINERS = frozenset("\u200c\u200d")


@dataclass(frozen=True)
class AlertTransition:
    thread_id: str
    episode_id: str
    sequence: int
    level: str
    state: str  # firing | escalated | resolved (a repeat is "firing" with repeat=True)
    repeat: bool
    at: float  # event time
    score: float
    why: str
    explanation: dict[str, Any]
    sparkline: str
    top_mentions: list[dict[str, Any]]
    brand: str | None
    platform: str | None
    url: str | None
    headline: str = ""  # what the thread is about (ThreadState.headline)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Idempotency key: one notification per transition and route, ever."""
        return f"{self.episode_id}#{self.sequence}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "episode_id": self.episode_id,
            "key": self.key,
            "level": self.level,
            "state": self.state,
            "repeat": self.repeat,
            "at": format_time(self.at),
            "score": round(self.score, 4),
            "why": self.why,
            "brand": self.brand,
            "platform": self.platform,
            "url": self.url,
            "headline": self.headline,
            "explanation": self.explanation,
            "sparkline": self.sparkline,
            "top_mentions": self.top_mentions,
            **self.extra,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def summary_line(self) -> str:
        """One readable line: time, level, state, thread, score, the short why."""
        e = self.explanation
        state = "repeat" if self.repeat else self.state
        return (
            f"{format_time(self.at)} {self.level.upper():8} {state:9} {one_line(self.thread_id)} "
            f"score={self.score:.2f} {self.sparkline} {e['rate_per_min']:.1f}/min "
            f"x{e['acceleration']:.1f} accel, {e['negativity']:.0%} negative, "
            f"{e['authors']:.0f} authors: {self.why}"
        )


def build_transition(
    decision: Decision,
    state: ThreadState,
    f: Features,
    s: Score,
    at: float,
    curve: list[int],
    config: Config,
) -> AlertTransition:
    return AlertTransition(
        thread_id=state.thread_id,
        episode_id=decision.episode_id,
        sequence=decision.sequence,
        level=decision.level,
        state=_STATE[decision.change],
        repeat=decision.change == "repeat",
        at=at,
        score=s.value,
        why=decision.why,
        explanation=explain(f, s, config),
        sparkline=sparkline(curve),
        top_mentions=[
            {"id": m.id, "handle": m.handle, "followers": m.followers, "url": m.url, "text": m.text}
            for m in state.top
        ],
        brand=state.brand,
        platform=state.platform,
        url=state.url,
        headline=state.headline,
    )


def explain(f: Features, s: Score, config: Config) -> dict[str, Any]:
    """Every feature the score read, and which of them crossed what."""
    big = s.big if s.big is not None else config.momentum.big_size
    if s.baseline > 0:  # an earlier episode resolved: what counts is the growth since
        growth = f.expected_final - s.baseline
        expected = f"expected size {f.expected_final:.0f}, {growth:.0f} more than when it resolved,"
    else:
        expected = f"expected size {f.expected_final:.0f}"
    crossed = [f"{expected} vs big {big:.0f} -> P(big) {s.momentum:.2f}"]
    if f.acceleration > 1.5:
        crossed.append(f"accelerating x{f.acceleration:.1f} (short vs long rate)")
    if config.scoring.sentiment_gate != "off":
        angry = f.negativity >= config.scoring.min_negativity
        mark = ">=" if angry else "<"
        crossed.append(
            f"negativity {f.negativity:.2f} {mark} {config.scoring.min_negativity}"
            f" ({config.scoring.sentiment_gate})"
        )
    return {
        "crossed": crossed,
        "count": f.count,
        "age_min": round(f.age / 60, 1),
        "rate_per_min": round(f.rate_short, 3),
        "rates_per_min": [round(r, 3) for r in f.rates],
        "acceleration": round(f.acceleration, 3),
        "authors": round(f.authors, 1),
        "reach": round(f.reach, 2),
        "max_followers": f.max_followers,
        "negativity": round(f.negativity, 3),
        "expected_final": round(f.expected_final, 1),
        "resolved_forecast": round(s.baseline, 1),
        "momentum": round(s.momentum, 4),
        "anger": round(s.anger, 4),
    }


def one_line(value: str) -> str:
    """``value`` as one line of plain text, for showing a mention-controlled value to people.

    Control characters (newlines, tabs, terminal escapes, C1), line and paragraph separators and
    all other whitespace become single spaces, with none at the ends; invisible format characters
    (bidi overrides such as U+202E, zero-width spaces) are dropped. The rest is kept as it is.
    """
    if not value.isprintable():  # False if any Cc, Cf, Zl, Zp, Co, Cn or Zs but " " is in it
        value = "".join(_visible(ch) for ch in value)
    return " ".join(value.split())


def _visible(ch: str) -> str:
    if ch.isprintable() or ch in _JOINERS:
        return ch
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    # Private use and code points newer than Python's tables (recent emoji) are shown as sent.
    return ch if category in ("Co", "Cn") else " "


def sparkline(counts: list[int]) -> str:
    """A text growth curve that renders in every chat: one block per bucket."""
    top = max(counts, default=0)
    if top == 0:
        return _BARS[0] * len(counts)
    return "".join(_BARS[min(7, c * 7 // top)] if c else " " for c in counts)
