"""A per-brand baseline of complaint volume, in event time: what a storm is measured against.

Mentions are counted per brand in fixed buckets of event time (a global grid, ``bucket`` wide).
A bucket's signal is its *complaining threads*: each thread adds its highest P(negative) in the
bucket, at most 1, so a single viral thread (a thousand reposts) counts as one complaint, not a
thousand; many separate complaints are what an outage looks like. A bucket closes when the
event-time watermark passes its end (a later mention, or the engine advancing time), so the
result does not depend on how the stream is cut into batches.

The forecast of the next bucket is river's ``HoltWinters`` with the level only (simple
exponential smoothing, ``half_life`` of memory). Daily seasonality (HoltWinters with a season of
one day) and SNARIMAX were measured on the airline stream and forecast worse (docs/storms.md):
with days, not weeks, of sparse counts a seasonal index rests on a handful of noisy buckets.
A bucket teaches the level at most ``_LEARN_CLIP_Z`` standard deviations above its forecast
(Huber style), so a storm does not become the baseline it is measured against. The spread is
Poisson times an overdispersion factor (EW mean of squared Pearson residuals, never below 1), so
the z-score means the same for a brand with 2 complaints an hour and one with 2,000.

Several workers splitting one stream each see a share of every brand's complaints, so none can
judge a bucket alone. A baseline built with ``collect=True`` judges nothing: each bucket it
closes comes out as a ``Partial`` (``take_partials``), and one judging baseline merges every
worker's partials of a bucket (``close_merged``) before closing it as above (decide/storms.py).

State (``state_dict``/``load_state``) is a pickle, as for the sentiment model: load it only
from storage that watchtower itself wrote. Pure: no I/O, no wall clock. Memory is bounded:
``max_brands`` brands (the least recently mentioned go first) and ``max_threads_per_bucket``
remembered threads per brand's open bucket.
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from river import time_series

from watchtower.config import StormConfig
from watchtower.mention import Mention

_STATE_FORMAT = 2  # 2: the open bucket remembers its worst top complaint
_LEARN_CLIP_Z = 3.0  # a bucket teaches the level at most this many sd above the forecast
_HoltWinters: Any = time_series.HoltWinters  # river's forecasters carry no type hints


class BucketRow(NamedTuple):
    """What a brand's bucket history keeps: enough to explain and draw the lead-up."""

    start: float
    observed: float
    forecast: float | None
    z: float
    threads: int


@dataclass(frozen=True, slots=True)
class BucketResult:
    """One closed bucket of one brand: what was seen, what was expected, how unusual."""

    brand: str
    start: float
    end: float
    observed: float  # complaining threads (soft: each adds its max P(negative), at most 1)
    threads: int  # distinct threads with P(negative) >= negative_at
    mentions: int  # all mentions of the brand in the bucket
    negativity: float  # mean P(negative) over those mentions
    authors: int  # distinct authors of complaining mentions
    forecast: float | None  # expected complaining threads; None while warming up
    sd: float
    z: float  # (observed - forecast) / sd; 0 while warming up
    history: tuple[BucketRow, ...]  # the last buckets, oldest first (this one last)
    top: tuple[dict[str, Any], ...]  # the most negative complaints, one per thread

    @property
    def ratio(self) -> float:
        return self.observed / self.forecast if self.forecast else 0.0


@dataclass(slots=True)
class _Open:
    """The open bucket of one brand: bounded by the thread cap and top size."""

    complaints: dict[str, float] = field(default_factory=dict)  # thread -> max P(negative)
    overflow: float = 0.0  # soft complaints of threads beyond the cap
    overflow_threads: int = 0
    authors: set[str] = field(default_factory=set)
    mentions: int = 0
    negativity: float = 0.0
    top: dict[str, tuple[tuple[float, int, str], dict[str, Any]]] = field(default_factory=dict)
    worst: tuple[tuple[float, int, str], str] | None = None  # top's lowest (key, thread)

    def add(self, m: Mention, thread: str, p: float, cfg: StormConfig) -> None:
        self.mentions += 1
        self.negativity += p
        complaints = self.complaints
        known = complaints.get(thread)
        if known is None:
            if len(complaints) < cfg.max_threads_per_bucket:
                complaints[thread] = p
            else:  # past the cap: counted, not remembered (a repeat may count twice)
                self.overflow += p
                self.overflow_threads += p >= cfg.negative_at
        elif p > known:
            complaints[thread] = p
        if p >= cfg.negative_at:
            author = (m.author.id or m.author.handle) if m.author else None
            if author and len(self.authors) < cfg.max_threads_per_bucket:
                self.authors.add(author)
            self._rank(m, thread, p, cfg.top_mentions)

    def merge(self, other: _Open, cfg: StormConfig) -> None:
        """Fold in another worker's share of the same bucket (disjoint mentions)."""
        self.mentions += other.mentions
        self.negativity += other.negativity
        self.overflow += other.overflow
        self.overflow_threads += other.overflow_threads
        complaints = self.complaints
        for thread, p in other.complaints.items():
            known = complaints.get(thread)
            if known is not None:
                complaints[thread] = max(known, p)
            elif len(complaints) < cfg.max_threads_per_bucket:
                complaints[thread] = p
            else:
                self.overflow += p
                self.overflow_threads += p >= cfg.negative_at
        room = cfg.max_threads_per_bucket - len(self.authors)
        self.authors.update(list(other.authors - self.authors)[: max(0, room)])
        top = self.top
        for thread, entry in other.top.items():
            held = top.get(thread)
            if held is None or entry[0] > held[0]:
                top[thread] = entry
        if len(top) > cfg.top_mentions:  # the best, one per thread, as _rank keeps them
            kept = sorted(top.items(), key=lambda item: item[1][0], reverse=True)
            self.top = dict(kept[: cfg.top_mentions])
        self.worst = None

    def _rank(self, m: Mention, thread: str, p: float, size: int) -> None:
        """Keep the ``size`` best complaints, one per thread: the result is order-free."""
        key = (round(p, 6), m.followers, m.id)
        held = self.top.get(thread)
        if held is not None and held[0] >= key:
            return
        if held is None and len(self.top) >= size:
            if size == 0:
                return
            if self.worst is None:  # found again only after the top changed
                self.worst = min((entry[0], t) for t, entry in self.top.items())
            if self.worst[0] >= key:
                return
            del self.top[self.worst[1]]
        handle = m.author.handle if m.author else None
        post = {"id": m.id, "handle": handle, "followers": m.followers, "url": m.url}
        self.top[thread] = (key, {**post, "text": m.text})
        self.worst = None

    def observed(self, negative_at: float) -> tuple[float, int]:
        """Soft complaining threads, and the threads at or above ``negative_at``."""
        values = self.complaints.values()
        hard = sum(1 for v in values if v >= negative_at)
        return sum(values) + self.overflow, hard + self.overflow_threads


@dataclass(slots=True)
class Partial:
    """One worker's share of one closed bucket: its open buckets by brand, in the order the
    worker last mentioned them (the brand cap drops the least recent first)."""

    index: int  # the bucket on the grid
    stream_mentions: int  # mentions of any brand (0: this worker's stream was silent)
    brands: dict[str, _Open]


class _Level:
    """The forecast of one brand: river's level-only HoltWinters plus overdispersion."""

    def __init__(self, cfg: StormConfig) -> None:
        self.model = _HoltWinters(alpha=cfg.decay(cfg.half_life))
        self.dispersion = 1.0  # EW mean of squared Pearson residuals
        self.learned = 0  # buckets learned

    def forecast(self, cfg: StormConfig) -> tuple[float, float]:
        """Expected complaining threads in the next bucket, and its standard deviation."""
        floor = cfg.min_rate * cfg.bucket / 3600.0
        level = float(self.model.forecast(1)[0]) if self.learned >= 2 else 0.0
        expected = max(level, floor)
        return expected, math.sqrt(max(1.0, self.dispersion) * expected)

    def learn(self, y: float, cfg: StormConfig, judged: tuple[float, float] | None) -> None:
        if judged is not None:
            expected, sd = judged
            cap = expected + _LEARN_CLIP_Z * sd
            if y > cap:
                # An outlier teaches the level a clipped value and the spread nothing: a storm
                # must neither become its own baseline nor widen the spread it is judged by.
                y = cap
            else:
                pearson = (y - expected) ** 2 / expected
                self.dispersion += cfg.decay(cfg.dispersion_half_life) * (pearson - self.dispersion)
        self.model.learn_one(y)
        self.learned += 1


class _Brand:
    def __init__(self, cfg: StormConfig) -> None:
        self.open = _Open()
        self.level = _Level(cfg)
        self.history: deque[BucketRow] = deque(maxlen=cfg.sparkline_buckets)

    def close(self, name: str, start: float, cfg: StormConfig, learn: bool) -> BucketResult:
        """Judge the open bucket against the forecast made before it, then learn from it."""
        observed, threads = self.open.observed(cfg.negative_at)
        judged = self.level.forecast(cfg) if self.level.learned >= cfg.warmup_buckets else None
        z = (observed - judged[0]) / judged[1] if judged is not None else 0.0
        if learn:
            self.level.learn(observed, cfg, judged)
        forecast = judged[0] if judged is not None else None
        self.history.append(BucketRow(start, observed, forecast, z, threads))
        o = self.open
        ranked = sorted(o.top.values(), key=lambda item: item[0], reverse=True)
        result = BucketResult(
            brand=name,
            start=start,
            end=start + cfg.bucket,
            observed=observed,
            threads=threads,
            mentions=o.mentions,
            negativity=o.negativity / o.mentions if o.mentions else 0.0,
            authors=len(o.authors),
            forecast=forecast,
            sd=judged[1] if judged is not None else 0.0,
            z=z,
            history=tuple(self.history),
            top=tuple(post for _, post in ranked),
        )
        if o.mentions:
            self.open = _Open()
        return result


class Baseline:
    """Complaint buckets and forecasts for every brand; closed buckets come out as results.

    Buckets lie on one grid for all brands (multiples of ``bucket`` since the epoch). A bucket in
    which the whole stream was silent teaches no forecast: that is a feed outage or a pause in a
    replay, not a quiet brand. A longer silence is skipped once nothing more can change.
    """

    def __init__(self, config: StormConfig, *, collect: bool = False) -> None:
        self.config = config
        self.collect = collect  # close buckets into partials for a judge, never judge them
        self._partials: list[Partial] = []
        self._brands: dict[str, _Brand] = {}  # insertion order = least recently mentioned first
        self._open: int | None = None  # index of the open bucket on the grid
        self._stream_mentions = 0  # mentions of any brand in the open bucket
        self._recent: str | None = None  # the brand last moved to the end of ``_brands``

    @property
    def brands(self) -> list[str]:
        return list(self._brands)

    def observe(self, mention: Mention, thread_id: str, negativity: float) -> list[BucketResult]:
        """Count one mention (in its bucket, or the open one if late); return closed buckets."""
        now = mention.created_at
        if self._open is not None and math.floor(now / self.config.bucket) <= self._open:
            closed = []  # the common case: still in the open bucket (or a late mention)
        else:
            closed = self.advance(now)
        self._stream_mentions += 1
        name = mention.brand
        if name is None:
            return closed
        p = 0.0 if negativity < 0.0 else 1.0 if negativity > 1.0 else negativity
        brand = self._brands.get(name) if name == self._recent else None
        if brand is None:
            brand = self._brand(name)  # moves it to the recent end
        brand.open.add(mention, thread_id, p, self.config)
        return closed

    def advance(self, now: float) -> list[BucketResult]:
        """Close every bucket that ends at or before ``now`` (event time)."""
        index = math.floor(now / self.config.bucket)
        if self._open is None:
            self._open = index
            return []
        if index <= self._open:
            return []  # the common case: still in the open bucket
        out: list[BucketResult] = []
        silent = 0
        while self._open < index:
            learn = self._stream_mentions > 0
            out += self._close(self._open, learn)
            self._stream_mentions = 0
            self._open += 1
            silent = 0 if learn else silent + 1
            if silent > self._max_silent_buckets():
                self._open = index  # nothing more changes: jump
        return out

    def _max_silent_buckets(self) -> int:
        cfg = self.config
        return max(cfg.sparkline_buckets, math.ceil(cfg.resolve_after / cfg.bucket)) + 1

    def _close(self, index: int, learn: bool) -> list[BucketResult]:
        if self.collect:
            self._collect(index)
            return []
        start = index * self.config.bucket
        brands = sorted(self._brands.items())  # results in brand order, not recency order
        return [brand.close(name, start, self.config, learn) for name, brand in brands]

    def _collect(self, index: int) -> None:
        shares = {name: b.open for name, b in self._brands.items() if b.open.mentions}
        if shares or self._stream_mentions:
            self._partials.append(Partial(index, self._stream_mentions, shares))
        for name in shares:
            self._brands[name].open = _Open()

    def take_partials(self) -> list[Partial]:
        """The buckets closed since the last call, each this worker's share (collect mode)."""
        taken, self._partials = self._partials, []
        return taken

    def open_partial(self) -> Partial | None:
        """The open bucket as a partial, taken out (a stopping worker hands over its share)."""
        if self._open is None:
            return None
        held = len(self._partials)
        self._collect(self._open)
        self._stream_mentions = 0
        return self._partials.pop() if len(self._partials) > held else None

    @property
    def next_index(self) -> int | None:
        """The open bucket's index: every bucket before it is closed."""
        return self._open

    def close_merged(self, index: int, partials: list[Partial]) -> list[BucketResult]:
        """Close bucket ``index`` from every worker's share of it, and any silent bucket
        before it; a bucket already closed here (a share that came too late) changes nothing."""
        if self._open is not None and index < self._open:
            return []
        out = self.advance(index * self.config.bucket)  # the silent buckets before it
        self._open = index  # also when the first bucket ever, or after a jump
        for partial in partials:
            self._stream_mentions += partial.stream_mentions
            for name, share in partial.brands.items():
                self._brand(name).open.merge(share, self.config)
        return out + self.advance((index + 1) * self.config.bucket)

    def _brand(self, name: str) -> _Brand:
        brand = self._brands.pop(name, None)
        if brand is None:
            brand = _Brand(self.config)
            if len(self._brands) >= self.config.max_brands:
                del self._brands[next(iter(self._brands))]
        self._brands[name] = brand  # re-inserted: now the most recently mentioned
        self._recent = name
        return brand

    def state_dict(self) -> bytes:
        """The whole state, river models included, as a pickle: see the module notes."""
        state = {
            "format": _STATE_FORMAT,
            "bucket": self.config.bucket,
            "open": self._open,
            "stream_mentions": self._stream_mentions,
            "brands": self._brands,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def load_state(self, data: bytes) -> None:
        """Continue from ``state_dict()`` bytes written by watchtower itself (never by users)."""
        state = pickle.loads(data)  # noqa: S301 - our own state, as for the sentiment model
        if state.get("format") != _STATE_FORMAT or state.get("bucket") != self.config.bucket:
            raise ValueError("baseline state of another format or bucket width")
        self._open = state["open"]
        self._stream_mentions = state["stream_mentions"]
        self._brands = state["brands"]
        self._recent = None
