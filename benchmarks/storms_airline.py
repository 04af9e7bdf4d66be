"""Complaint storms on the airline tweets (Feb 2015), replayed at their real times.

Each tweet is a one-mention thread of its airline (watchtower.convert.airline). P(negative)
comes from one of: the crowd labels (ground truth: 1 for negative, else 0), VADER alone (the
sentiment model's lexicon prior, never learning), or the blended model as the engine runs it in
a replay (score, then learn the label). Every storm episode is printed with its buckets of
observed vs forecast complaints, and a table of flagged brand-days (Pacific time, the data's
own zone). Then a synthetic check: a seeded stream with one outage must flag the outage brand
at the outage time and nothing else (exit status 1 if not).

    .venv/bin/python benchmarks/storms_airline.py [--data PATH] [--source labels|vader|blended|all]
        [--bucket 15m] [--pending-for 0s] [--compare-forecasters]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from river import time_series

from watchtower.alerting.alert import AlertTransition
from watchtower.config import StormConfig
from watchtower.config_parse import parse_duration
from watchtower.convert.airline import convert
from watchtower.decide.storms import StormWatch
from watchtower.mention import Mention, from_dict
from watchtower.scoring.sentiment import SentimentConfig, SentimentModel
from watchtower.synth import DEFAULT_START, generate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "airline" / "Tweets.csv"
PACIFIC = timezone(timedelta(hours=-8), "PST")  # the zone of the data's own timestamps
SOURCES = ("labels", "vader", "blended")

Negativity = Callable[[Mention], float]


@dataclass(frozen=True)
class Episode:
    brand: str
    fired: AlertTransition
    resolved: AlertTransition | None


def load(path: Path) -> list[Mention]:
    return [from_dict(record, 100_000) for record in convert(path)]


def negativity_source(name: str) -> Negativity:
    if name == "labels":
        return lambda m: 1.0 if m.label == "negative" else 0.0
    model = SentimentModel(SentimentConfig(learn=name == "blended"))

    def score_then_learn(m: Mention) -> float:
        p = model.negativity(m.text)
        if name == "blended" and m.label is not None:
            model.learn(m.text, m.label)
        return p

    return score_then_learn


def replay(
    mentions: Iterable[Mention], roots: Callable[[Mention], str], p: Negativity, cfg: StormConfig
) -> list[AlertTransition]:
    """The stream through StormWatch in order; time then runs on until every storm is over."""
    watch = StormWatch(cfg)
    out: list[AlertTransition] = []
    last = 0.0
    for m in mentions:
        out += watch.observe(m, roots(m), p(m))
        last = m.created_at
    out += watch.advance(last + cfg.resolve_after + 2 * cfg.bucket)
    return out


def episodes(transitions: list[AlertTransition]) -> list[Episode]:
    fired = {t.episode_id: t for t in transitions if t.state == "firing" and not t.repeat}
    ended = {t.episode_id: t for t in transitions if t.state == "resolved"}
    return [Episode(t.brand or "?", t, ended.get(key)) for key, t in fired.items()]


def pacific(epoch: float, form: str = "%a %b %d %H:%M", zone: tzinfo = PACIFIC) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime(form)


def print_episode(e: Episode, zone: tzinfo = PACIFIC) -> None:
    start = float(e.fired.extra["episode_started"])
    end = e.resolved.at if e.resolved else None
    peak = e.resolved.explanation["peak_z"] if e.resolved else e.fired.explanation["peak_z"]
    total = e.resolved.explanation["count"] if e.resolved else e.fired.explanation["count"]
    until = pacific(end, "%a %H:%M", zone) if end else "open"
    span = f"{pacific(start, zone=zone)} .. {until} {zone.tzname(None)}"
    print(f"\n{e.brand}: {span}, ~{total} complaints, peak z {peak}")
    print(f"  fired at {pacific(e.fired.at, '%H:%M', zone)}: {e.fired.why}  {e.fired.sparkline}")
    for row in e.fired.explanation["buckets"]:
        start_at = datetime.fromisoformat(row["start"].replace("Z", "+00:00")).timestamp()
        print(
            f"    {pacific(start_at, '%H:%M', zone)}  observed {row['observed']:5.1f}  "
            f"forecast {_num(row['forecast'])}  z {row['z']:5.1f}  threads {row['threads']}"
        )
    for text in e.fired.explanation["top_texts"]:
        print("    > " + " ".join(text.split()))


def brand_days(found: list[Episode], cfg: StormConfig) -> dict[tuple[str, str], float]:
    """Hours of storm per brand and Pacific day (from its start to the start of the calm)."""
    hours: dict[tuple[str, str], float] = defaultdict(float)
    for e in found:
        start = float(e.fired.extra["episode_started"])
        end = e.resolved.at - cfg.resolve_after if e.resolved else e.fired.at
        t = start
        while t < max(end, start + cfg.bucket):
            hours[(e.brand, pacific(t, "%b %d"))] += cfg.bucket / 3600
            t += cfg.bucket
    return hours


def airline(path: Path, source: str, cfg: StormConfig) -> list[Episode]:
    mentions = load(path)
    found = episodes(replay(mentions, lambda m: m.id, negativity_source(source), cfg))
    print(f"\n=== airline stream, P(negative) from {source}: {len(found)} storm episodes ===")
    for e in found:
        print_episode(e)
    print(f"\nflagged brand-days (hours in storm, Pacific time), P(negative) from {source}:")
    for (brand, day), h in sorted(brand_days(found, cfg).items(), key=lambda kv: kv[0][::-1]):
        print(f"  {day}  {brand:15} {h:4.1f} h")
    return found


def synthetic(cfg: StormConfig, seed: int = 7) -> bool:
    """One outage in a 12-hour synthetic stream: flagged at its time, for its brand only."""
    outage_at, brand = DEFAULT_START + 8 * 3600, "delta"
    records = generate(seed, 3000, 12.0, outage_at=outage_at, outage_brand=brand)
    mentions = [from_dict(r, 100_000) for r in records]
    found = episodes(replay(mentions, root_resolver(), negativity_source("labels"), cfg))
    for e in found:
        print_episode(e, UTC)
    hits = [e for e in found if e.brand == brand and 0 <= e.fired.at - outage_at <= 1800]
    ok = len(hits) == 1 and len(found) == 1
    lag = (hits[0].fired.at - outage_at) / 60 if hits else float("nan")
    print(f"\nsynthetic outage of {brand} at {pacific(outage_at, zone=UTC)} UTC:")
    print(f"  {len(found)} storm episode(s); the outage flagged {lag:.0f} min after it began")
    print("  -> OK" if ok else "  -> FAILED")
    return ok


def compare_forecasters(mentions: list[Mention], bucket: float) -> None:
    """Mean Poisson deviance of one-bucket-ahead forecasts of each airline's negative tweets
    (crowd labels), scored from the second day on: why the baseline is a level, not a season."""
    first = min(m.created_at for m in mentions) // bucket
    size = int(max(m.created_at for m in mentions) // bucket - first) + 1
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * size)
    for m in mentions:
        if m.label == "negative" and m.brand:
            series[m.brand][int(m.created_at // bucket - first)] += 1
    day = round(86400 / bucket)
    print(
        f"\nforecasters, {bucket / 60:.0f}-minute buckets: mean Poisson deviance (lower is better)"
    )
    for name, (make, shift) in _forecasters(bucket, day).items():
        total, n = 0.0, 0
        for ys in series.values():
            model = make()
            for i, y in enumerate(ys):
                if i > day:
                    total += _deviance(y, float(model.forecast(1)[0]) - shift)
                    n += 1
                model.learn_one(y + shift)
        print(f"  {name:52} {total / n:10.3f}")


def _forecasters(bucket: float, day: int) -> dict[str, tuple[Callable[[], Any], float]]:
    """name -> (river forecaster factory, shift added to counts: seasonal HW divides by them)."""
    level: Any = time_series.HoltWinters
    out: dict[str, tuple[Callable[[], Any], float]] = {}
    for minutes in (30, 60, 120, 240):
        alpha = 1 - 0.5 ** (bucket / (60 * minutes))
        out[f"HoltWinters level only, half-life {minutes} min"] = (partial(level, alpha), 0.0)
    for alpha, gamma in ((0.05, 0.3), (0.2, 0.1), (0.2, 0.3)):
        seasonal = partial(level, alpha, 0.001, gamma, day, multiplicative=True)
        out[f"HoltWinters daily season (x), alpha {alpha} gamma {gamma}"] = (seasonal, 1.0)
    snarimax = partial(time_series.SNARIMAX, p=2, d=0, q=0)
    out["SNARIMAX p=2 (river's default regressor)"] = (snarimax, 0.0)
    return out


def _deviance(y: float, expected: float) -> float:
    mu = min(max(expected, 0.05), 1e6)  # a diverged forecast scores as a huge miss, not inf
    return 2 * ((y * math.log(y / mu) if y > 0 else 0.0) - (y - mu))


def root_resolver() -> Callable[[Mention], str]:
    """Thread roots as watchtower.threads resolves them, for a stream seen in order."""
    roots: dict[str, str] = {}

    def root(m: Mention) -> str:
        parent = m.parent
        found = m.thread_id or (roots.get(parent, parent) if parent else m.id)
        roots[m.id] = found
        return found

    return root


def _num(value: Any) -> str:
    return f"{value:5.1f}" if isinstance(value, int | float) else "    -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--source", choices=(*SOURCES, "all"), default="all")
    parser.add_argument("--bucket", help="bucket width, e.g. 10m (default: StormConfig's)")
    parser.add_argument("--pending-for", help="e.g. 0s to fire on one storm bucket")
    parser.add_argument(
        "--compare-forecasters", action="store_true", help="also score river forecasters"
    )
    args = parser.parse_args()
    cfg = StormConfig()
    if args.bucket is not None:
        cfg = replace(cfg, bucket=parse_duration(args.bucket, "--bucket"))
    if args.pending_for is not None:
        cfg = replace(cfg, pending_for=parse_duration(args.pending_for, "--pending-for"))
    print(f"StormConfig: {cfg}")
    if args.compare_forecasters:
        compare_forecasters(load(args.data), cfg.bucket)
    for source in SOURCES if args.source == "all" else (args.source,):
        airline(args.data, source, cfg)
    print("\n=== synthetic outage ===")
    sys.exit(0 if synthetic(cfg) else 1)


if __name__ == "__main__":
    main()
