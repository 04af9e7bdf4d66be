"""A seeded synthetic mention stream: self-exciting cascades plus background chatter.

Each thread is a root post and a branching process of reposts, replies and quotes (Hawkes-like:
every mention begets Poisson(branching x author influence) children after an exponential or
power-law delay), so final sizes are heavy-tailed: most threads 1-5 mentions, a few thousands.
Big threads are mostly complaints, not all. An optional outage adds, for one brand and one hour,
many small separate complaint threads far above its usual rate. Same seed, same bytes: one
random.Random(seed), no wall clock.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from watchtower.convert import write_output
from watchtower.synth_text import MOODS, Texts

DEFAULT_START = 1767571200.0  # 2026-01-05T00:00:00Z
DEFAULT_BRANDS = ("united", "delta", "acme_telecom", "shopfast")
PLATFORMS = ("twitter", "mastodon", "reddit", "bluesky")
_PLATFORM_WEIGHTS = {"twitter": 0.55, "mastodon": 0.12, "reddit": 0.18, "bluesky": 0.15}
_ID_PREFIX = {"twitter": "tw", "mastodon": "md", "reddit": "rd", "bluesky": "bs"}
# Child kinds by platform (repost, reply, quote): reddit has comments and crossposts only.
_KIND_WEIGHTS = {
    "twitter": (0.62, 0.28, 0.10),
    "mastodon": (0.55, 0.45, 0.0),
    "reddit": (0.0, 0.92, 0.08),
    "bluesky": (0.55, 0.30, 0.15),
}
# Share of replies that also carry the root's thread id (reddit comments always know theirs).
_THREAD_ID_SHARE = {"twitter": 0.5, "mastodon": 0.3, "reddit": 1.0, "bluesky": 0.5}
_MAX_THREAD = 6000  # caps a supercritical draw; the biggest threads land in the thousands
_MIN_DELAY_MS = 1500
ROOT, REPLY, REPOST, QUOTE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Author:
    id: str
    handle: str
    followers: int | None
    verified: bool
    influence: float  # mean 1 over the population: scales how many children a post begets


class _Event(NamedTuple):
    """One mention before ids are assigned; sorts by (time, creation order)."""

    t_ms: int
    seq: int
    platform: str
    author: _Author
    text: str
    label: str
    brand: str
    kind: int
    link: int  # seq of the mention replied to, reposted or quoted; -1 for a root
    root: int  # seq of the thread root
    shows_thread: bool  # carries thread_id, not only its link


@dataclass(frozen=True, slots=True)
class _ThreadPlan:
    brand: str
    platform: str
    mood: str
    branching: float  # mean children of a child post, before author influence
    root_children: float  # mean children of the root
    delay_kind: str  # "exp" or "power"
    delay_scale_ms: float
    delay_shape: float


class _Stream:
    """Everything one generate() run draws from, in a fixed order."""

    def __init__(self, seed: int, brands: Sequence[str], platforms: Sequence[str], size: int):
        self.rng = random.Random(seed)
        self.brands = tuple(brands)
        self.platforms = tuple(platforms)
        weights = [1.0 / (rank + 1.5) for rank in range(len(self.brands))]
        self.brand_share = [weight / sum(weights) for weight in weights]
        self.texts = Texts(self.rng, self.brands)
        self.events: list[_Event] = []
        self.pools = {name: self._authors(name, size) for name in self.platforms}
        self.official = {
            (brand, name): _Author(f"{_prefix(name)}:u:{brand}", brand, 1_200_000, True, 1.0)
            for brand in self.brands
            for name in self.platforms
        }

    def _authors(self, platform: str, size: int) -> list[_Author]:
        rng = self.rng
        prefix = _prefix(platform)
        raw = []
        for index in range(size):
            followers = int(rng.lognormvariate(5.5, 2.0))
            verified = rng.random() < (0.6 if followers >= 100_000 else 0.002)
            shown = None if rng.random() < 0.03 else followers  # some APIs omit the count
            raw.append((f"{prefix}:u{index}", self.texts.handle(), shown, verified, followers))
        mean = sum((item[4] + 1) ** 0.35 for item in raw) / size
        return [_Author(a, h, shown, v, (f + 1) ** 0.35 / mean) for a, h, shown, v, f in raw]

    def author(self, platform: str) -> _Author:
        pool = self.pools[platform]
        return pool[int(len(pool) * self.rng.random() ** 1.5)]  # a few authors post a lot

    def add(
        self,
        plan: _ThreadPlan,
        t_ms: int,
        author: _Author,
        said: tuple[str, str],
        *,
        kind: int = ROOT,
        link: int = -1,
        root: int = -1,
        shows_thread: bool = False,
    ) -> int:
        """Record a mention (said = text, label); a root is its own thread. Returns its seq."""
        seq = len(self.events)
        text, label = said
        root = seq if kind == ROOT else root
        platform, brand = plan.platform, plan.brand
        event = _Event(
            t_ms, seq, platform, author, text, label, brand, kind, link, root, shows_thread
        )
        self.events.append(event)
        return seq

    def pick_brand(self) -> str:
        return self.rng.choices(self.brands, self.brand_share)[0]

    def pick_platform(self) -> str:
        weights = [_PLATFORM_WEIGHTS.get(name, 0.1) for name in self.platforms]
        return self.rng.choices(self.platforms, weights)[0]


def generate(
    seed: int,
    threads: int,
    hours: float,
    start: float | None = None,
    *,
    brands: Sequence[str] = DEFAULT_BRANDS,
    platforms: Sequence[str] = PLATFORMS,
    chatter: int | None = None,
    outage_at: float | None = None,
    outage_brand: str | None = None,
    outage_minutes: float = 60.0,
) -> Iterator[dict[str, object]]:
    """Mentions sorted by created_at, the same for the same arguments.

    threads: cascades whose roots fall uniformly in [start, start + hours); chatter: extra
    single mentions (default: as many as threads); outage_at: epoch seconds at which
    outage_brand (default: the first brand) gets a storm of small complaint threads.
    """
    if threads < 0 or hours <= 0 or not brands or not platforms:
        raise ValueError("need threads >= 0, hours > 0, and at least one brand and platform")
    if outage_brand is not None and outage_brand not in brands:
        raise ValueError(f"outage brand {outage_brand!r} is not one of the brands")
    start_ms = round((DEFAULT_START if start is None else start) * 1000)
    end_ms = start_ms + round(hours * 3_600_000)
    stream = _Stream(seed, brands, platforms, size=min(20_000, max(500, 4 * threads)))
    for _ in range(threads):
        _grow(stream, _plan(stream), stream.rng.randrange(start_ms, end_ms), end_ms)
    for _ in range(threads if chatter is None else chatter):
        _chatter(stream, stream.rng.randrange(start_ms, end_ms))
    if outage_at is not None:
        brand = outage_brand or stream.brands[0]
        per_hour = threads * stream.brand_share[stream.brands.index(brand)] / hours
        at_ms = round(outage_at * 1000)
        _storm(stream, brand, at_ms=at_ms, minutes=outage_minutes, per_hour=per_hour, end_ms=end_ms)
    return _emit(sorted(stream.events))


def _prefix(platform: str) -> str:
    return _ID_PREFIX.get(platform, platform)


def _plan(stream: _Stream) -> _ThreadPlan:
    """Draw one thread's brand, platform, mood and how far and fast it spreads."""
    rng = stream.rng
    mood = rng.choices(MOODS, (0.5, 0.3, 0.2))[0]
    # A few threads are "hot" (near-critical branching); complaints get hot more often.
    hot = rng.random() < (0.14 if mood == "negative" else 0.07)
    branching = rng.uniform(0.7, 0.97) if hot else rng.uniform(0.0, 0.5)
    root_children = 3.0 * rng.paretovariate(1.1) if hot else 0.35 * rng.paretovariate(1.5)
    power = rng.random() < 0.5
    return _ThreadPlan(
        brand=stream.pick_brand(),
        platform=stream.pick_platform(),
        mood=mood,
        branching=branching,
        root_children=root_children,
        delay_kind="power" if power else "exp",
        delay_scale_ms=rng.uniform(60_000, 600_000) if power else rng.uniform(180_000, 2_400_000),
        delay_shape=rng.uniform(0.7, 1.6),
    )


def _grow(stream: _Stream, plan: _ThreadPlan, root_ms: int, end_ms: int) -> None:
    """A root and its branching process, breadth first, cut at the end of the stream."""
    author = stream.author(plan.platform)
    root = stream.add(plan, root_ms, author, stream.texts.root(plan.brand, plan.mood))
    mean = plan.root_children * math.sqrt(author.influence)  # big accounts start big threads
    pending = deque([(root, root_ms, mean)])
    size = 1
    while pending and size < _MAX_THREAD:
        parent, parent_ms, mean = pending.popleft()
        for _ in range(_poisson(stream.rng, mean)):
            t_ms = parent_ms + _delay_ms(stream.rng, plan)
            if t_ms >= end_ms or size >= _MAX_THREAD:
                continue
            child, influence = _child(stream, plan, parent, root, t_ms)
            pending.append((child, t_ms, plan.branching * influence))
            size += 1


def _child(
    stream: _Stream, plan: _ThreadPlan, parent: int, root: int, t_ms: int
) -> tuple[int, float]:
    """One repost, reply or quote of `parent`; returns its seq and its author's influence."""
    rng = stream.rng
    shown = stream.events[parent]
    # Reposting or answering a repost reaches the original post.
    target = stream.events[shown.link] if shown.kind == REPOST else shown
    kind = rng.choices((REPOST, REPLY, QUOTE), _KIND_WEIGHTS.get(plan.platform, (0.5, 0.4, 0.1)))[0]
    if kind == REPLY and rng.random() < 0.03:  # the brand's care team answers
        author = stream.official[(plan.brand, plan.platform)]
        said = stream.texts.care_reply(), "neutral"
    else:
        author = stream.author(plan.platform)
        if kind == REPOST:
            said = _repost_text(plan.platform, target), target.label
        else:
            said = stream.texts.reply(plan.brand, plan.mood)
    shows = kind == REPLY and rng.random() < _THREAD_ID_SHARE.get(plan.platform, 0.5)
    seq = stream.add(
        plan, t_ms, author, said, kind=kind, link=target.seq, root=root, shows_thread=shows
    )
    return seq, author.influence


def _repost_text(platform: str, original: _Event) -> str:
    return (
        f"RT @{original.author.handle}: {original.text}" if platform == "twitter" else original.text
    )


def _chatter(stream: _Stream, t_ms: int) -> None:
    brand, platform = stream.pick_brand(), stream.pick_platform()
    mood = stream.rng.choices(MOODS, (0.3, 0.45, 0.25))[0]
    plan = _ThreadPlan(brand, platform, mood, 0.0, 0.0, "exp", 1.0, 1.0)
    stream.add(plan, t_ms, stream.author(platform), stream.texts.root(brand, mood))


def _storm(
    stream: _Stream, brand: str, *, at_ms: int, minutes: float, per_hour: float, end_ms: int
) -> None:
    """An outage: many separate small complaint threads, rising fast and fading over the hour."""
    rng = stream.rng
    count = max(150, round(12 * per_hour * minutes / 60))
    span_ms = minutes * 60_000
    since = datetime.fromtimestamp(at_ms // 300_000 * 300, UTC).strftime("%H:%M")
    for _ in range(count):
        t_ms = at_ms + round(span_ms * rng.betavariate(1.5, 3.0))
        if t_ms >= end_ms:
            continue
        platform = stream.pick_platform()
        plan = _ThreadPlan(brand, platform, "negative", 0.2, 0.0, "exp", 300_000.0, 1.0)
        said = stream.texts.outage(brand, since), "negative"
        root = stream.add(plan, t_ms, stream.author(platform), said)
        for _ in range(_poisson(rng, 0.8)):
            child_ms = t_ms + _delay_ms(rng, plan)
            if child_ms < end_ms:
                _child(stream, plan, root, root, child_ms)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation: Knuth's product loop is slow for large means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _delay_ms(rng: random.Random, plan: _ThreadPlan) -> int:
    if plan.delay_kind == "exp":
        delay = rng.expovariate(1.0 / plan.delay_scale_ms)
    else:  # Lomax: most children come fast, a long tail keeps a thread alive for hours
        delay = plan.delay_scale_ms * ((1.0 - rng.random()) ** (-1.0 / plan.delay_shape) - 1.0)
    return _MIN_DELAY_MS + round(min(delay, 1e11))


def _emit(events: list[_Event]) -> Iterator[dict[str, object]]:
    """Events sorted by time -> mention dicts; ids grow with time, like snowflakes."""
    ids = [""] * len(events)
    last_second, stamp = -1, ""
    for number, event in enumerate(events, start=1_000_000):
        platform = event.platform
        native = str(number)
        ids[event.seq] = mention_id = f"{_prefix(platform)}:{native}"
        second, millis = divmod(event.t_ms, 1000)
        if second != last_second:  # sorted input: one strftime a second, not a mention
            last_second = second
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        link = ids[event.link] if event.link >= 0 else None
        author = event.author
        yield {
            "id": mention_id,
            "platform": platform,
            "created_at": f"{stamp}.{millis:03d}Z",
            "text": event.text,
            "author": {
                "id": author.id,
                "handle": author.handle,
                "followers": author.followers,
                "verified": author.verified,
            },
            "thread_id": ids[event.root] if event.shows_thread else None,
            "reply_to": link if event.kind == REPLY else None,
            "repost_of": link if event.kind == REPOST else None,
            "quote_of": link if event.kind == QUOTE else None,
            "brand": event.brand,
            "url": f"https://example.social/{platform}/{native}",
            "lang": "en",
            "label": event.label,
        }


def add_generate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``generate``: a synthetic stream as JSON lines, the same bytes for the same args."""
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic mention stream (JSON lines, sorted by time)",
        description=__doc__,
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--threads", type=int, default=2000, help="cascades (default 2000)")
    parser.add_argument("--hours", type=float, default=6.0, help="stream length (default 6)")
    parser.add_argument(
        "--start", type=_rfc3339, help="RFC 3339 start time (default 2026-01-05T00:00:00Z)"
    )
    parser.add_argument("--chatter", type=int, help="single mentions (default: --threads)")
    parser.add_argument(
        "--brands", default=",".join(DEFAULT_BRANDS), help="comma-separated brand keys"
    )
    parser.add_argument("--outage-brand", help="brand hit by an outage (default: the first)")
    parser.add_argument(
        "--outage-at", help="outage start: RFC 3339, or hours after --start (e.g. 2.5)"
    )
    parser.add_argument("-o", "--output", help="output file (default stdout; .gz => gzip)")
    parser.set_defaults(func=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    start = DEFAULT_START if args.start is None else args.start
    brands = [brand.strip() for brand in args.brands.split(",") if brand.strip()]
    outage_at = None
    if args.outage_at is not None or args.outage_brand is not None:
        outage_at = _outage_time(args.outage_at, start, args.hours)
        if outage_at is None or (args.outage_brand and args.outage_brand not in brands):
            print("watchtower generate: bad --outage-at or --outage-brand", file=sys.stderr)
            return 2
    try:
        mentions = generate(
            args.seed,
            args.threads,
            args.hours,
            start,
            brands=brands,
            chatter=args.chatter,
            outage_at=outage_at,
            outage_brand=args.outage_brand,
        )
    except ValueError as exc:
        print(f"watchtower generate: {exc}", file=sys.stderr)
        return 2
    return write_output(mentions, args.output)


def _outage_time(value: str | None, start: float, hours: float) -> float | None:
    """Hours after start, or an RFC 3339 time; absent: a third into the stream."""
    if value is None:
        return start + hours * 3600 / 3
    try:
        return start + float(value) * 3600
    except ValueError:
        pass
    try:
        return _rfc3339(value)
    except argparse.ArgumentTypeError:
        return None


def _rfc3339(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {value!r} has no zone (add Z or +00:00)")
    return moment.timestamp()
