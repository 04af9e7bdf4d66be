"""The threads with an open or pending alert episode, as the API shows them, with the why.

Scored at the engine's event time (its watermark), with the same features, score and
explanation an alert carries, so the list agrees with the alerts it sits next to. Highest level
first (in the configured order; a pending episode has none yet), then highest score: the board
lists them in this order.
"""

from __future__ import annotations

from typing import Any

from watchtower.alerting.alert import explain, sparkline
from watchtower.config import level_rank
from watchtower.engine import Engine
from watchtower.mention import format_time
from watchtower.scoring.features import features
from watchtower.scoring.score import score
from watchtower.state.store import load_readable
from watchtower.state.thread_state import ThreadState, growth_curve

MAX_THREADS = 500  # the API answers with at most this many, the first in its order


async def thread_views(engine: Engine) -> list[dict[str, Any]]:
    """The views, highest level then score first (whether each was acked: the outbox knows)."""
    tids = await engine.store.active_threads()
    states, _ = await load_readable(engine.store, tids[: MAX_THREADS * 2], keep=True)
    views = [_view(engine, state) for state in states.values()]
    rank = level_rank(engine.config.levels)
    views.sort(key=lambda v: (-rank.get(v["level"], -1), -v["score"], v["thread_id"]))
    return views[:MAX_THREADS]


def _view(engine: Engine, state: ThreadState) -> dict[str, Any]:
    now = max(engine.watermark or state.last_seen, state.last_seen)
    f = features(state, now, engine.spec)
    ep = state.episode
    momentum = engine.momentum.predict(f, ep.resolved_forecast)
    big = engine.momentum.big_size(f.at)
    s = score(f, momentum, engine.config.scoring, big, ep.resolved_forecast)
    return {
        "thread_id": state.thread_id,
        "episode_id": ep.id,
        "level": ep.level,
        "pending_level": ep.pending_level,
        "since": format_time(ep.level_since) if ep.id is not None else None,
        "first_seen": format_time(state.first_seen),
        "last_seen": format_time(state.last_seen),
        "score": round(s.value, 4),
        "brand": state.brand,
        "platform": state.platform,
        "url": state.url,
        "headline": state.headline,
        "sparkline": sparkline(growth_curve(state, now, engine.spec)),
        "explanation": explain(f, s, engine.config),
        "top_mentions": [
            {"id": m.id, "handle": m.handle, "followers": m.followers, "url": m.url, "text": m.text}
            for m in state.top
        ],
    }
