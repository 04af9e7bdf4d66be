"""``watchtower backtest``: watchtower against grid-searched ElastAlert2 rules on real cascades.

Builds the labelled stream (see `watchtower.backtest.stream`), replays it through the engine
with the given config, applies the two rule types per thread over their whole grid, and prints
precision, early recall, F1 and median lead for each, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from watchtower.backtest import plot
from watchtower.backtest.metrics import Figures, Outcome, figures, outcomes
from watchtower.backtest.rules import (
    MIN_EVENTS,
    GridPoint,
    best,
    frequency_first,
    grid_search,
    spike_first,
)
from watchtower.backtest.stream import StreamSpec, Truth, cascade_layout, mentions
from watchtower.backtest.watch import WatchRun, run_engine, sweep_first_alerts
from watchtower.config import load_config
from watchtower.convert._records import default_data_dir
from watchtower.errors import InputError


@dataclass
class Report:
    spec: StreamSpec
    truth: Truth
    threshold: float
    outcomes: dict[str, Outcome]
    cascades: int
    watchtower: Figures
    sweep: list[tuple[float, Figures]]
    grid: list[GridPoint]
    run: WatchRun
    rules_seconds: float

    def best(self, rule: str, min_lead: float = 0.0) -> GridPoint:
        point = best(self.grid, rule, min_lead)
        if point is None:
            raise ValueError(f"no {rule} grid point with a lead of {min_lead} min or more")
        return point

    def best_as_early(self, rule: str) -> GridPoint | None:
        """The rule's best F1 among points at least as early as watchtower (median lead)."""
        lead = self.watchtower.median_lead
        return None if math.isnan(lead) else best(self.grid, rule, lead)


def add_backtest_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``backtest [--data DIR] [--config FILE] [--seed N] [--png F] [--json F]``."""
    p = subparsers.add_parser(
        "backtest",
        help="watchtower vs ElastAlert2 rules on real cascades: precision, early recall, lead",
        description=__doc__,
    )
    p.add_argument("--data", type=Path, help="shared data folder (default: ../shared/data)")
    p.add_argument(
        "--cascades",
        type=Path,
        help="the cascades: a Twitter15-layout folder (tree/), a PHEME one (posts.json), or a "
        "file of mentions (.jsonl/.jsonl.gz), a thread a cascade (default: twitter15/ of --data)",
    )
    p.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    p.add_argument("--seed", type=int, default=1, help="seed of the cascades' start times")
    p.add_argument("--limit", type=int, help="only the first N cascades (a quick look)")
    p.add_argument(
        "--keep",
        type=float,
        default=1.0,
        help="keep each reply/repost with this probability (seeded): a platform 1/P the size",
    )
    p.add_argument(
        "--stretch",
        type=float,
        default=1.0,
        help="multiply each cascade's time after its source by K (cut at 48 h after): a "
        "platform where cascades unfold K times slower (K < 1: faster)",
    )
    p.add_argument("--png", type=Path, help="write the figure here (needs matplotlib)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.set_defaults(func=run_backtest)


def run_backtest(args: argparse.Namespace) -> int:
    data: Path = args.data or default_data_dir()
    wrong = _wrong_option(args)
    if wrong is not None:
        print(f"watchtower backtest: {wrong}", file=sys.stderr)
        return 2
    spec = StreamSpec(
        data=data,
        cascades=args.cascades,
        seed=args.seed,
        limit=args.limit,
        keep=args.keep,
        stretch=args.stretch,
    )
    if not (data / "airline").is_dir():
        print(f"watchtower backtest: no airline/ under {data}", file=sys.stderr)
        return 2
    try:
        cascade_layout(spec.cascade_path)  # a clear error before minutes of work
    except ValueError as error:
        print(f"watchtower backtest: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report = backtest(spec, load_config(args.config))
    for line in table(report):
        print(line)
    print(f"total: {time.perf_counter() - started:.1f} s")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(as_json(report), option=orjson.OPT_INDENT_2))
    if args.png is not None:
        try:
            _draw(args.png, report, spec.seed)
        except ImportError:
            print("watchtower backtest: --png needs matplotlib (the plot extra)", file=sys.stderr)
            return 2
        print(f"figure: {args.png}")
    return 0


def _wrong_option(args: argparse.Namespace) -> str | None:
    """What is wrong with a numeric option, if anything, before minutes of work."""
    if not 0.0 < args.keep <= 1.0:
        return f"--keep must be in (0, 1], got {args.keep}"
    if not 0.0 < args.stretch < math.inf:
        return f"--stretch must be > 0, got {args.stretch}"
    if args.limit is not None and args.limit < 1:  # no cascades: no "big" to judge by
        return f"--limit must be 1 or more, got {args.limit}"
    return None


def backtest(spec: StreamSpec, config: Any) -> Report:
    truth = Truth()
    run = asyncio.run(run_engine(config, mentions(spec, truth)))
    if not truth.cascades:  # an empty mentions file, or one whose every record was refused
        rejected = f" ({len(truth.rejected)} records refused)" if truth.rejected else ""
        raise InputError(f"{spec.cascade_path}: no cascades in it{rejected}")
    found, threshold = outcomes(truth)
    sweep = [
        (th, figures(found, first))
        for th, first in zip(run.thresholds, sweep_first_alerts(run), strict=True)
    ]
    started = time.perf_counter()
    grid = _rules(truth, found)
    return Report(
        spec=spec,
        truth=truth,
        threshold=threshold,
        outcomes=found,
        cascades=len(truth.cascades),
        watchtower=figures(found, run.first_alert),
        sweep=sweep,
        grid=grid,
        run=run,
        rules_seconds=time.perf_counter() - started,
    )


def _rules(truth: Truth, found: dict[str, Outcome]) -> list[GridPoint]:
    """The rules see every thread that could fire them (MIN_EVENTS mentions or more)."""
    names = sorted(t for t, ts in truth.times.items() if len(ts) >= MIN_EVENTS)
    threads = [np.sort(np.asarray(truth.times[t])) for t in names]
    big = np.array([found[t].big for t in names], dtype=bool)
    half = np.array([found[t].t_half for t in names])
    if int(big.sum()) != sum(o.big for o in found.values()):
        raise AssertionError("a big thread with fewer than MIN_EVENTS mentions")
    return grid_search(threads, big, half)


def table(report: Report) -> list[str]:
    o = report.outcomes
    n_big = sum(1 for x in o.values() if x.big)
    freq, spike = report.best("frequency"), report.best("spike")
    run = report.run
    rows = [
        ("watchtower (this config)", report.watchtower),
        (f"frequency {_params(freq)}", freq.figures),
        (f"spike {_params(spike)}", spike.figures),
    ]
    rejected = report.truth.rejected
    lines = (
        [f"rejected: {len(rejected)} records of {report.spec.cascade_path} (first {rejected[0]})"]
        if rejected
        else []
    )
    lines += [
        f"stream: {report.cascades} {report.spec.cascade_path.name} cascades "
        f"(seed {report.spec.seed}{_kept(report.spec.keep)}{_stretch(report.spec.stretch)}) + "
        f"{len(o) - report.cascades} one-mention background threads, {run.mentions:,} mentions",
        f"big: final size >= {report.threshold:.1f} (80th percentile of the cascades): "
        f"{n_big} threads, median t_half {_minutes(median_t_half(report))} after their start",
        "",
        f"{'detector':<40} {'precision':>9} {'early recall':>12} {'F1':>6} {'median lead':>12}",
    ]
    for name, f in rows:
        lines.append(
            f"{name:<40} {f.precision:>9.3f} {f.early_recall:>12.3f} {f.f1:>6.3f} "
            f"{_minutes(f.median_lead):>12}"
        )
    for rule in ("frequency", "spike"):
        point = report.best_as_early(rule)
        if point is not None:
            f = point.figures
            lines.append(
                f"{'  ' + rule + ' as early: ' + _params(point):<40} {f.precision:>9.3f} "
                f"{f.early_recall:>12.3f} {f.f1:>6.3f} {_minutes(f.median_lead):>12}"
            )
    lines += [
        "",
        f"watchtower: {run.mentions:,} mentions in {run.seconds:.1f} s "
        f"({run.mentions / max(run.seconds, 1e-9):,.0f}/s, stream building included); "
        f"rules: {len(report.grid):,} grid points in {report.rules_seconds:.1f} s",
    ]
    return lines


def _kept(keep: float) -> str:
    return "" if keep >= 1.0 else f", each reply/repost kept with p={keep:g}"


def _stretch(stretch: float) -> str:
    return "" if stretch == 1.0 else f", times after each source x{stretch:g}"


def _params(point: GridPoint) -> str:
    p = point.params
    if point.rule == "frequency":
        return f"w={p['w_min']:g}m k>={p['k']:g}"
    baseline = "" if p["new_data"] else " baseline"
    return f"w={p['w_min']:g}m h>={p['h']:g} c>={p['c']:g}{baseline}"


def _minutes(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} min"


def median_t_half(report: Report) -> float:
    """Minutes from a big thread's first mention to its t_half, the median over big threads."""
    times = report.truth.times
    halves = [(o.t_half - min(times[t])) / 60.0 for t, o in report.outcomes.items() if o.big]
    return statistics.median(halves) if halves else math.nan


def as_json(report: Report) -> dict[str, Any]:
    return {
        "cascades_from": str(report.spec.cascade_path),
        "rejected": len(report.truth.rejected),
        "seed": report.spec.seed,
        "keep": report.spec.keep,
        "stretch": report.spec.stretch,
        "cascades": report.cascades,
        "big_threshold": report.threshold,
        "watchtower": report.watchtower.as_dict(),
        "frequency": _point(report.best("frequency")),
        "spike": _point(report.best("spike")),
        "as_early": {
            rule: _point(point)
            for rule in ("frequency", "spike")
            if (point := report.best_as_early(rule)) is not None
        },
        "sweep": [{"threshold": th, **f.as_dict()} for th, f in report.sweep],
        "mentions": report.run.mentions,
        "engine_seconds": round(report.run.seconds, 2),
    }


def _point(point: GridPoint) -> dict[str, Any]:
    return {"params": point.params, **point.figures.as_dict()}


def _draw(path: Path, report: Report, seed: int) -> None:
    """Growth curves of a seeded sample with every detector's first alert, and the trade-offs."""
    sample = plot.sample_threads(report.outcomes, seed, MIN_EVENTS)
    marks = plot.Marks(
        watchtower=report.run.first_alert,
        frequency=_rule_alerts(report.best("frequency"), report.truth, sample),
        spike=_rule_alerts(report.best("spike"), report.truth, sample),
    )
    plot.draw(
        path,
        report.truth.times,
        report.outcomes,
        sample,
        marks,
        report.sweep,
        report.watchtower,
        report.grid,
    )


def _rule_alerts(point: GridPoint, truth: Truth, threads: list[str]) -> dict[str, float]:
    """The best rule's first alert on each of a few threads, recomputed for the figure."""
    p = point.params
    out = {}
    for thread in threads:
        ts = np.sort(np.asarray(truth.times[thread]))
        w = float(p["w_min"]) * 60.0
        if point.rule == "frequency":
            first = frequency_first(ts, w, np.array([p["k"]]))
        else:
            first = spike_first(ts, w, float(p["h"]), np.array([p["c"]]), bool(p["new_data"]))
        if np.isfinite(first[0]):
            out[thread] = float(first[0])
    return out
