"""The backtest figure: growth curves with alert marks, and precision and F1 against lead."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchtower.backtest.metrics import Figures, Outcome
from watchtower.backtest.rules import GridPoint

SAMPLE = 6  # threads of each kind drawn on the growth panel
_RULE_COLOURS = {"spike": "tab:green", "frequency": "tab:orange"}


@dataclass(frozen=True)
class Marks:
    """First alerts of the three detectors, by thread, for the growth panel."""

    watchtower: Mapping[str, float]
    frequency: Mapping[str, float]
    spike: Mapping[str, float]


def sample_threads(outcomes: Mapping[str, Outcome], seed: int, min_size: int) -> list[str]:
    """A seeded sample of big and of small threads (small: cascades that stayed small)."""
    rng = random.Random(seed)
    big = sorted(t for t, o in outcomes.items() if o.big)
    small = sorted(t for t, o in outcomes.items() if not o.big and o.size >= min_size)
    return rng.sample(big, min(SAMPLE, len(big))) + rng.sample(small, min(SAMPLE, len(small)))


def draw(
    path: Path,
    times: Mapping[str, Sequence[float]],
    outcomes: Mapping[str, Outcome],
    sample: Sequence[str],
    marks: Marks,
    sweep: Sequence[tuple[float, Figures]],
    default: Figures,
    grid: Sequence[GridPoint],
) -> None:
    import matplotlib  # noqa: PLC0415 - an optional dependency, only needed for --png

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    fig, (growth, prec, f1) = plt.subplots(1, 3, figsize=(18, 5.5))
    _growth(growth, times, outcomes, sample, marks)
    _tradeoff(prec, "precision", sweep, default, grid)
    _tradeoff(f1, "f1", sweep, default, grid)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _growth(
    ax: Any,
    times: Mapping[str, Sequence[float]],
    outcomes: Mapping[str, Outcome],
    sample: Sequence[str],
    marks: Marks,
) -> None:
    styles = (("watchtower", "o", "black"), ("frequency", "^", "tab:orange"), ("spike", "s", "g"))
    for thread in sample:
        ts = sorted(times[thread])
        start = ts[0]
        xs = [(t - start) / 60.0 for t in ts]
        big = outcomes[thread].big
        colour = "tab:red" if big else "tab:blue"
        ax.step(xs, range(1, len(xs) + 1), where="post", color=colour, alpha=0.7, lw=1.2)
        half = (outcomes[thread].t_half - start) / 60.0
        ax.plot([half], [math.ceil(len(xs) / 2)], "|", color=colour, ms=12)
        for name, marker, mark_colour in styles:
            at = getattr(marks, name).get(thread)
            if at is not None:
                x = (at - start) / 60.0
                y = sum(1 for t in ts if t <= at)
                ax.plot(
                    [x],
                    [y],
                    marker,
                    color=mark_colour,
                    ms=6,
                    mfc="none" if name != "watchtower" else mark_colour,
                )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("log")
    ax.set_xlabel("minutes since the thread's first mention")
    ax.set_ylabel("mentions (cumulative)")
    ax.set_title(
        "growth: big (red) and small (blue) threads; | = t_half\n"
        "first alert: ● watchtower, △ frequency, □ spike (best rules)"
    )


def _tradeoff(
    ax: Any,
    what: str,
    sweep: Sequence[tuple[float, Figures]],
    default: Figures,
    grid: Sequence[GridPoint],
) -> None:
    for rule, colour in _RULE_COLOURS.items():  # spike first: it has far more points
        points = [p.figures for p in grid if p.rule == rule and p.figures.early > 0]
        ax.scatter(
            [f.median_lead for f in points],
            [getattr(f, what) for f in points],
            s=5 if rule == "spike" else 9,
            alpha=0.15 if rule == "spike" else 0.5,
            color=colour,
            label=f"{rule} rule, grid points",
        )
    for rule, colour in _RULE_COLOURS.items():
        top = max((p for p in grid if p.rule == rule), key=lambda p: p.figures.f1)
        f = top.figures
        ax.plot(
            [f.median_lead],
            [getattr(f, what)],
            "D",
            color=colour,
            mec="black",
            ms=9,
            label=f"{rule} rule, best F1",
        )
    shown = [(th, f) for th, f in sweep if f.early > 0]
    ax.plot(
        [f.median_lead for _, f in shown],
        [getattr(f, what) for _, f in shown],
        "-o",
        color="black",
        ms=3,
        label="watchtower, score threshold swept",
    )
    for th, f in shown[::2]:
        ax.annotate(
            f"{th:g}",
            (f.median_lead, getattr(f, what)),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.plot(
        [default.median_lead],
        [getattr(default, what)],
        "*",
        color="red",
        ms=15,
        mec="black",
        label="watchtower, this config",
    )
    ax.set_xlim(0, 120)  # rule points beyond come with precision near the base rate
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("median lead before t_half (minutes)")
    ax.set_ylabel(what if what == "precision" else "F1 (precision, early recall)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if what == "precision" else "upper right")
    ax.set_title(f"{what} against lead")
