"""One alert transition as a short chat/pager message: a title line and a markdown body.

The body answers what on-call asks first: why did it fire, how fast is the thread growing, how
angry is it, who amplifies it, and where is it. It stays short (a few hundred characters per
post) so it reads in a chat window and fits pager payload limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchtower.alerting.alert import AlertTransition

# apprise NotifyType values; plain strings so this module (and the outbox) stay apprise-free.
FAILURE = "failure"
WARNING = "warning"
SUCCESS = "success"

SNIPPET_CHARS = 140  # of each top post's text
MAX_POSTS = 3


@dataclass(frozen=True)
class Message:
    title: str
    body: str  # markdown
    notify_type: str  # failure | warning | success (apprise NotifyType values)


def render(transition: AlertTransition, top_level: str = "critical") -> Message:
    """The message for one transition; ``top_level`` (the highest configured level) pages."""
    t = transition
    if t.state == "resolved":
        title = _title(t, f"resolved after {resolved_minutes(t):.0f} min")
        return Message(title, _resolved(t), SUCCESS)
    kind = FAILURE if t.level == top_level else WARNING
    doing = "still escalating" if t.repeat else "escalating"
    return Message(_title(t, f"{doing} (score {t.score:.2f})"), _firing(t), kind)


def resolved_minutes(t: AlertTransition) -> float:
    """How long the episode lasted: its id is ``<thread>@<start epoch>`` (decide/levels.py)."""
    started = t.extra.get("episode_started")
    if not isinstance(started, int | float):
        _, _, tail = t.episode_id.rpartition("@")
        started = int(tail) if tail.isdigit() else t.at - 60 * _num(t.explanation, "age_min")
    return max(0.0, (t.at - started) / 60)


def _title(t: AlertTransition, what: str) -> str:
    label = "RESOLVED" if t.state == "resolved" else t.level.upper()
    brand = f"{t.brand}: " if t.brand else ""
    return f"[{label}] {brand}thread {t.thread_id} {what}"


def _firing(t: AlertTransition) -> str:
    e = t.explanation
    lines = [f"**Why:** {t.why}"]
    lines += [f"- {reason}" for reason in e.get("crossed", [])]
    lines += ["", *_stats(e, t.sparkline), *_posts(t.top_mentions), *_footer(t)]
    return "\n".join(lines)


def _resolved(t: AlertTransition) -> str:
    e = t.explanation
    lines = [
        f"**Resolved** after {resolved_minutes(t):.0f} min ({t.level} at the end): {t.why}",
        "",
        *_stats(e, t.sparkline),
        *_footer(t),
    ]
    return "\n".join(lines)


def _stats(e: dict[str, Any], spark: str) -> list[str]:
    return [
        f"**Growth:** `{spark}` {_num(e, 'rate_per_min'):.1f}/min, "
        f"acceleration x{_num(e, 'acceleration'):.1f}, "
        f"{_num(e, 'count'):.0f} mentions in {_num(e, 'age_min'):.0f} min",
        f"**Anger:** {_num(e, 'negativity'):.0%} negative · "
        f"**Authors:** {_num(e, 'authors'):.0f} · "
        f"**Reach:** max {followers(int(_num(e, 'max_followers')))} followers",
    ]


def _posts(posts: list[dict[str, Any]]) -> list[str]:
    if not posts:
        return []
    lines = ["", "**Top posts:**"]
    for i, post in enumerate(posts[:MAX_POSTS], 1):
        text = " ".join(str(post.get("text") or "").split())  # one line per post
        if len(text) > SNIPPET_CHARS:
            text = text[: SNIPPET_CHARS - 1].rstrip() + "…"
        handle = post.get("handle") or "?"
        count = followers(int(post.get("followers") or 0))
        link = f" [link]({post['url']})" if post.get("url") else ""
        lines.append(f'{i}. @{handle} ({count} followers): "{text}"{link}')
    return lines


def _footer(t: AlertTransition) -> list[str]:
    where = f"[open thread]({t.url})" if t.url else "(no link)"
    return ["", f"**Thread:** {where} · episode `{t.episode_id}` #{t.sequence}"]


def followers(n: int) -> str:
    """Follower counts as people say them: 950, 12.3k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def _num(e: dict[str, Any], name: str) -> float:
    value = e.get(name)
    return float(value) if isinstance(value, int | float) else 0.0
