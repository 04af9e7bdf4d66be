"""A thread's state: small, fixed size, updated one mention at a time in event time.

Decayed rates follow r <- r * exp(-dt / tau) + 1 with tau = half_life / ln 2, so r / tau is the
current mentions-per-second estimate on irregular timestamps. A mention older than the state
(out of order) adds its already-decayed weight instead of rewinding time.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_left
from dataclasses import dataclass, field

_SKETCH_SIZE = 32  # k of the k-minimum-values author sketch: ~18% error, fixed 32 ints
_HASH_SPACE = 2**32


@dataclass(slots=True)
class TopMention:
    followers: int
    id: str
    handle: str | None
    url: str | None
    text: str


@dataclass(slots=True)
class Episode:
    """The alert episode of a thread: at most one open at a time."""

    id: str | None = None  # set while firing
    level: str | None = None
    started: float = 0.0
    level_since: float = 0.0
    last_notified: float = 0.0
    notifications: int = 0  # transitions sent in this episode (idempotency sequence)
    pending_level: str | None = None  # a level whose threshold holds but not yet long enough
    pending_since: float = 0.0
    below_since: float | None = None  # since when the score is below the exit threshold
    peak_level: str | None = None  # the highest level reached: resolves go where pages went
    # The forecast when the last episode resolved: a thread is scored from then on on what it is
    # expected to add beyond it, so a cascade's long tail (a straggler hours later, with the
    # thread already past the big size) does not fire a new episode each time.
    resolved_forecast: float = 0.0


@dataclass(slots=True)
class Observation:
    """What the state keeps of one mention."""

    at: float
    mention_id: str
    author_id: str | None
    followers: int
    negativity: float
    handle: str | None = None
    url: str | None = None
    text: str = ""


@dataclass(slots=True)
class ThreadState:
    thread_id: str
    first_seen: float
    last_seen: float
    version: int = 0  # bumped on every save: compare-and-set between workers
    count: int = 0
    rates: list[float] = field(default_factory=list)  # one per half-life, as of last_seen
    reach: float = 0.0  # decayed sum of log1p(followers), long half-life
    max_followers: int = 0
    negativity_sum: float = 0.0  # decayed, long half-life
    negativity_weight: float = 0.0
    author_sketch: list[int] = field(default_factory=list)  # k smallest author hashes
    buckets: list[int] = field(default_factory=list)  # growth curve, newest last
    bucket_start: float = 0.0  # start of the newest bucket
    top: list[TopMention] = field(default_factory=list)
    brand: str | None = None
    platform: str | None = None
    url: str | None = None  # the root's link where known
    # What the thread is about, for the alert's title: the root's text once it is seen, until
    # then the first mention's with any text (a repost's carries its root's)
    headline: str = ""
    episode: Episode = field(default_factory=Episode)


@dataclass(frozen=True, slots=True)
class DecaySpec:
    """The constants an update needs, derived once from the config."""

    taus: tuple[float, ...]  # seconds, one per half-life
    bucket_width: float
    bucket_count: int
    top_size: int

    @classmethod
    def from_half_lives(
        cls, half_lives: tuple[float, ...], bucket_width: float, bucket_count: int, top_size: int
    ) -> DecaySpec:
        return cls(tuple(h / math.log(2) for h in half_lives), bucket_width, bucket_count, top_size)

    @property
    def long_tau(self) -> float:
        return self.taus[-1]


def new_state(thread_id: str, at: float, spec: DecaySpec) -> ThreadState:
    start = at - at % spec.bucket_width
    return ThreadState(
        thread_id=thread_id,
        first_seen=at,
        last_seen=at,
        rates=[0.0] * len(spec.taus),
        buckets=[0] * spec.bucket_count,
        bucket_start=start,
    )


def observe(state: ThreadState, obs: Observation, spec: DecaySpec) -> None:
    """Fold one mention into the state, in place.

    The engine's hottest code, run for every mention: kept plain, with the common cases of the
    helpers (nothing to rank, same bucket) tested here rather than paid for as calls.
    """
    at = obs.at
    dt = at - state.last_seen
    rates = state.rates
    if dt > 0:
        keep = 1.0
        for i, tau in enumerate(spec.taus):
            keep = math.exp(-dt / tau)
            rates[i] = rates[i] * keep + 1.0
        # the longest half-life is the last: its factor decays reach and negativity too
        state.reach *= keep
        state.negativity_sum *= keep
        state.negativity_weight *= keep
        weight = 1.0
        state.last_seen = at
    elif dt == 0:  # bursts share timestamps: nothing to decay
        for i in range(len(rates)):
            rates[i] += 1.0
        weight = 1.0
    else:
        weight = _add_late(state, dt, at, spec)
    state.count += 1
    followers = obs.followers
    if followers:
        state.reach += weight * math.log1p(followers)
        state.max_followers = max(state.max_followers, followers)
    state.negativity_sum += weight * obs.negativity
    state.negativity_weight += weight
    sketch = state.author_sketch
    author_hash = zlib.crc32((obs.author_id or obs.mention_id).encode())
    if len(sketch) < _SKETCH_SIZE or author_hash < sketch[-1]:
        _add_author(sketch, author_hash)  # else not among the k smallest: the common case
    if at - state.bucket_start < spec.bucket_width and at >= state.bucket_start:
        state.buckets[-1] += 1  # the newest bucket
    else:
        _add_to_buckets(state, at, spec)
    top = state.top
    if len(top) < spec.top_size or (top and followers > top[-1].followers):
        _add_top(state, obs, spec.top_size)


def _add_late(state: ThreadState, dt: float, at: float, spec: DecaySpec) -> float:
    """A late mention (``dt`` < 0) adds its weight as decayed to the state's time: no rewind."""
    rates = state.rates
    for i, tau in enumerate(spec.taus):
        rates[i] += math.exp(dt / tau)
    state.first_seen = min(state.first_seen, at)
    return math.exp(dt / spec.long_tau)


def decayed_rates(state: ThreadState, now: float, spec: DecaySpec) -> list[float]:
    """Mentions per second at each half-life, as of ``now``."""
    dt = max(0.0, now - state.last_seen)
    return [r * math.exp(-dt / tau) / tau for r, tau in zip(state.rates, spec.taus, strict=True)]


def unique_authors(state: ThreadState) -> float:
    """Distinct authors: exact below the sketch size, a KMV estimate above it."""
    sketch = state.author_sketch
    if len(sketch) < _SKETCH_SIZE:
        return float(len(sketch))
    return (_SKETCH_SIZE - 1) * _HASH_SPACE / (sketch[-1] + 1)


def mean_negativity(state: ThreadState) -> float:
    if state.negativity_weight <= 0:
        return 0.0
    return state.negativity_sum / state.negativity_weight


def growth_curve(state: ThreadState, now: float, spec: DecaySpec) -> list[int]:
    """The bucket counts shifted so the last one is the bucket holding ``now``."""
    shift = int((now - state.bucket_start) // spec.bucket_width)
    if shift <= 0:
        return list(state.buckets)
    if shift >= spec.bucket_count:
        return [0] * spec.bucket_count
    return state.buckets[shift:] + [0] * shift


def _add_author(sketch: list[int], value: int) -> None:
    """Keep ``value`` (an author's hash) if it is among the k smallest and new."""
    index = bisect_left(sketch, value)
    if index < len(sketch) and sketch[index] == value:
        return  # an author seen before
    if len(sketch) >= _SKETCH_SIZE:
        sketch.pop()
    sketch.insert(index, value)


def _add_to_buckets(state: ThreadState, at: float, spec: DecaySpec) -> None:
    shift = int((at - state.bucket_start) // spec.bucket_width)
    if shift > 0:
        state.buckets = growth_curve(state, at, spec)
        state.bucket_start += shift * spec.bucket_width
        shift = 0
    index = spec.bucket_count - 1 + shift
    if index >= 0:  # a late mention older than the whole curve is counted but not drawn
        state.buckets[index] += 1


HEADLINE_CHARS = 280


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _add_top(state: ThreadState, obs: Observation, size: int) -> None:
    """Rank a mention with more followers than the last of the top (or a top not full)."""
    top = state.top
    text = shortened(obs.text, 280)
    top.append(TopMention(obs.followers, obs.mention_id, obs.handle, obs.url, text))
    top.sort(key=lambda m: (-m.followers, m.id))
    del top[size:]
