"""Storm episodes per brand: many separate complaints far above the brand's forecast.

A closed bucket is a *storm bucket* when its complaining threads are ``z_enter`` sd and
``min_ratio`` times above the forecast, from at least ``min_threads`` separate threads (one
viral thread is the thread levels' business, not a storm). As with thread levels (levels.py),
an episode fires once storm buckets have held for ``pending_for`` (the default, one bucket,
asks for two in a row: a lone 15-minute blip of unrelated complaints is common in sparse
streams; an outage lasts longer), holds while the count stays above ``z_exit``, and resolves
only after ``resolve_after`` back near the forecast, so a storm that flickers around its
threshold does not flap; a long storm is re-notified every ``repeat_interval``. Transitions
carry thread_id ``storm:<brand>`` and level ``storm``.

Everything happens in event time at bucket ends: the same stream gives the same transitions
whatever its batches. State is a pickle (``state_dict``/``load_state``), like the baseline's.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from watchtower.alerting.alert import AlertTransition, sparkline
from watchtower.config import StormConfig
from watchtower.mention import Mention, format_time
from watchtower.scoring.baseline import Baseline, BucketResult, BucketRow, Partial

LEVEL = "storm"
_STATE_FORMAT = 1
_EXPLAINED_BUCKETS = 4  # buckets of observed vs forecast listed in an alert
_TEXT_CHARS = 140

Change = Literal["firing", "repeat", "resolved"]


@dataclass(slots=True)
class StormEpisode:
    """One brand's storm episode, or a storm that is pending (``hot_since`` set)."""

    id: str | None = None  # set while firing
    started: float = 0.0
    last_notified: float = 0.0
    notifications: int = 0  # transitions of this episode: the idempotency sequence
    hot_since: float | None = None  # end of the first of consecutive storm buckets
    calm_since: float | None = None  # start of the first of consecutive buckets under z_exit
    complaints: float = 0.0  # complaining threads counted while firing
    peak_z: float = 0.0


class StormWatch:
    """Counts complaints per brand (``observe``), closes buckets in event time and decides."""

    def __init__(self, config: StormConfig, *, collect: bool = False) -> None:
        """``collect``: one of several workers, whose closed buckets are shares for a judge
        (``take_partials``, then ``judge`` on the shared watch) instead of decided here."""
        self.config = config
        self.baseline = Baseline(config, collect=collect)
        self._episodes: dict[str, StormEpisode] = {}  # only brands firing or pending

    @property
    def firing(self) -> dict[str, StormEpisode]:
        """Brands with a storm going on, by brand."""
        return {b: ep for b, ep in self._episodes.items() if ep.id is not None}

    def observe(self, mention: Mention, thread_id: str, negativity: float) -> list[AlertTransition]:
        """Count one mention (``thread_id``: its resolved root); return transitions of buckets
        its time closed. Call in input order, before the mention's own thread is checked."""
        if not self.config.enabled:
            return []
        closed = self.baseline.observe(mention, thread_id, negativity)
        return self._decide_all(closed) if closed else []

    def advance(self, now: float) -> list[AlertTransition]:
        """Let event time pass with no mention (the engine's quiet ticks)."""
        if not self.config.enabled:
            return []
        return self._decide_all(self.baseline.advance(now))

    def take_partials(self) -> list[Partial]:
        """This worker's shares of the buckets it closed since the last call (collect mode)."""
        return self.baseline.take_partials()

    def judge(self, partials: Sequence[Partial], through: int) -> list[AlertTransition]:
        """Decide every bucket up to index ``through`` from all workers' shares of them, as
        one worker seeing the whole stream would have (a share of a bucket already judged
        changes nothing)."""
        by_index: dict[int, list[Partial]] = {}
        for partial in partials:
            if partial.index <= through:
                by_index.setdefault(partial.index, []).append(partial)
        out = []
        for index in sorted(by_index):
            out += self._decide_all(self.baseline.close_merged(index, by_index[index]))
        return out + self.advance((through + 1) * self.config.bucket)

    def _decide_all(self, results: list[BucketResult]) -> list[AlertTransition]:
        if not results:
            return []
        out = [t for r in results if (t := self._decide(r)) is not None]
        return out + self._resolve_dropped(results[-1].end)

    def _decide(self, r: BucketResult) -> AlertTransition | None:
        ep = self._episodes.get(r.brand)
        if ep is None:
            if not self._stormy(r):
                return None
            ep = self._episodes[r.brand] = StormEpisode()
        transition = self._hold(ep, r) if ep.id is not None else self._enter(ep, r)
        if ep.id is None and ep.hot_since is None:
            del self._episodes[r.brand]  # nothing pending: forget the brand
        return transition

    def _stormy(self, r: BucketResult) -> bool:
        cfg = self.config
        return (
            r.forecast is not None
            and r.threads >= cfg.min_threads
            and r.ratio >= cfg.min_ratio
            and r.z >= cfg.z_enter
        )

    def _enter(self, ep: StormEpisode, r: BucketResult) -> AlertTransition | None:
        """Fire once storm buckets have held for ``pending_for`` (0: the first one fires)."""
        if not self._stormy(r):
            ep.hot_since = None
            return None
        if ep.hot_since is None:
            ep.hot_since = r.end
        if r.end - ep.hot_since < self.config.pending_for:
            return None
        started = ep.hot_since - self.config.bucket  # the start of the first storm bucket
        ep.id = f"storm:{r.brand}@{int(started)}"
        ep.started, ep.hot_since, ep.calm_since = started, None, None
        ep.notifications, ep.peak_z = 0, r.z
        ep.complaints = sum(row.observed for row in r.history if row.start >= started)
        return self._transition(ep, r, "firing", _storm_why(r))

    def _hold(self, ep: StormEpisode, r: BucketResult) -> AlertTransition | None:
        cfg = self.config
        ep.complaints += r.observed
        ep.peak_z = max(ep.peak_z, r.z)
        if r.z >= cfg.z_exit:
            ep.calm_since = None
        else:
            if ep.calm_since is None:
                ep.calm_since = r.start
            calm = r.end - ep.calm_since
            if calm >= cfg.resolve_after:
                why = f"back near the forecast (z < {cfg.z_exit:g}) for {calm / 60:.0f} min"
                return self._resolve(ep, r, why)
        if r.end - ep.last_notified >= cfg.repeat_interval:
            return self._transition(ep, r, "repeat", f"storm goes on: {_storm_why(r)}")
        return None

    def _resolve(self, ep: StormEpisode, r: BucketResult, why: str) -> AlertTransition:
        transition = self._transition(ep, r, "resolved", why)
        ep.id, ep.calm_since, ep.hot_since = None, None, None
        return transition

    def _resolve_dropped(self, at: float) -> list[AlertTransition]:
        """A firing brand the baseline dropped (brand cap) cannot resolve by itself."""
        kept = set(self.baseline.brands)
        out = []
        for brand in sorted(set(self._episodes) - kept):
            ep = self._episodes.pop(brand)
            if ep.id is not None:
                r = _empty_result(brand, at, self.config.bucket)
                out.append(self._transition(ep, r, "resolved", "brand no longer tracked"))
        return out

    def _transition(
        self, ep: StormEpisode, r: BucketResult, change: Change, why: str
    ) -> AlertTransition:
        ep.notifications += 1
        if change != "resolved":
            ep.last_notified = r.end
        return AlertTransition(
            thread_id=f"storm:{r.brand}",
            episode_id=ep.id or "",
            sequence=ep.notifications,
            level=LEVEL,
            state="resolved" if change == "resolved" else "firing",
            repeat=change == "repeat",
            at=r.end,
            score=min(1.0, max(0.0, r.z) / (2 * self.config.z_enter)),  # z_enter -> 0.5
            why=why,
            explanation=self._explain(ep, r, change),
            sparkline=sparkline([round(10 * row.observed) for row in r.history]),
            top_mentions=[] if change == "resolved" else list(r.top),
            brand=r.brand,
            platform=None,
            url=None,
            extra={"episode_started": ep.started},
        )

    def _explain(self, ep: StormEpisode, r: BucketResult, change: Change) -> dict[str, Any]:
        """Observed vs forecast per bucket and the thresholds crossed, plus the keys every
        alert carries (message.py reads rate, acceleration, count, age, anger, authors)."""
        minutes = self.config.bucket / 60
        return {
            "kind": "storm",
            "crossed": self._crossed(r, change),
            "observed": round(r.observed, 2),
            "forecast": None if r.forecast is None else round(r.forecast, 2),
            "z": round(r.z, 2),
            "ratio": round(r.ratio, 2),
            "threads": r.threads,
            "mentions": r.mentions,
            "bucket_min": minutes,
            "buckets": [_row(row) for row in r.history[-_EXPLAINED_BUCKETS:]],
            "top_texts": [str(post["text"])[:_TEXT_CHARS] for post in r.top],
            "count": round(ep.complaints),
            "age_min": round((r.end - ep.started) / 60, 1),
            "rate_per_min": round(r.observed / minutes, 3),
            "acceleration": round(r.ratio, 3),
            "negativity": round(r.negativity, 3),
            "authors": r.authors,
            "max_followers": max((int(post["followers"]) for post in r.top), default=0),
            "peak_z": round(ep.peak_z, 2),
        }

    def _crossed(self, r: BucketResult, change: Change) -> list[str]:
        cfg = self.config
        if change == "resolved":
            return [f"z {r.z:.1f} < exit {cfg.z_exit:g}"]
        minutes = cfg.bucket / 60
        return [
            # observed weighs each thread by its P(negative): not the count of the line below
            f"{r.observed:.0f} complaints by P(negative) in {minutes:.0f} min vs "
            f"{r.forecast or 0.0:.1f} expected: x{r.ratio:.1f} >= x{cfg.min_ratio:g}",
            f"z {r.z:.1f} >= {cfg.z_enter:g}",
            f"{r.threads} separate complaining threads >= {cfg.min_threads}",
        ]

    def state_dict(self) -> bytes:
        """Baseline and episodes as a pickle: load only what watchtower itself wrote."""
        state = {
            "format": _STATE_FORMAT,
            "baseline": self.baseline.state_dict(),
            "episodes": self._episodes,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def load_state(self, data: bytes) -> None:
        """Continue from ``state_dict()``; raises ValueError for another format or bucket."""
        state = pickle.loads(data)  # noqa: S301 - our own state (see the module notes)
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError("storm state of another format")
        self.baseline.load_state(state["baseline"])
        self._episodes = state["episodes"]


def _storm_why(r: BucketResult) -> str:
    return (
        f"complaint storm: {r.threads} separate complaining threads, {r.observed:.1f} "
        f"complaints by P(negative) vs {r.forecast or 0.0:.1f} expected "
        f"(x{r.ratio:.1f}, z {r.z:.1f})"
    )


def _row(row: BucketRow) -> dict[str, Any]:
    return {
        "start": format_time(row.start),
        "observed": round(row.observed, 2),
        "forecast": None if row.forecast is None else round(row.forecast, 2),
        "z": round(row.z, 2),
        "threads": row.threads,
    }


def _empty_result(brand: str, at: float, width: float) -> BucketResult:
    return BucketResult(brand, at - width, at, 0.0, 0, 0, 0.0, 0, None, 0.0, 0.0, (), ())
