"""The ElastAlert2 rule types people write today, applied per thread (``query_key: thread``).

- frequency: fire at the first mention with at least ``k`` mentions in the last ``w``
  (ElastAlert's ``num_events`` within ``timeframe``: the window is (t - w, t]).
- spike: fire at the first mention where the current window (t - w, t] holds at least ``c``
  mentions (``threshold_cur``) and at least ``h`` times the previous one (t - 2w, t - w]
  (``spike_height``, ``spike_type: up``). With ``alert_on_new_data: false`` (ElastAlert's
  default) a thread cannot fire before its baseline exists, 2w after its first mention; the grid
  tries both settings.

Each is grid-searched on the stream it is judged on (an advantage watchtower does not get).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from watchtower.backtest.metrics import Figures, figures_grid

WINDOWS_MIN = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360)
HEIGHTS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
MIN_EVENTS = 3  # k and c start here: a rule on one or two mentions alerts on everything


@dataclass(frozen=True, slots=True)
class GridPoint:
    rule: str  # "frequency" or "spike"
    params: dict[str, float | bool]
    figures: Figures


def counts(times: np.ndarray, width: float, back: float = 0.0) -> np.ndarray:
    """For each mention at t: mentions in (t - back - width, t - back]."""
    upper = np.searchsorted(times, times - back, side="right")
    lower = np.searchsorted(times, times - back - width, side="right")
    return np.asarray(upper - lower)


def first_reaching(times: np.ndarray, values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """For each level: the time of the first mention whose value reaches it (inf: never)."""
    peak = np.maximum.accumulate(values)
    index = np.searchsorted(peak, levels, side="left")
    padded = np.append(times, np.inf)
    return np.asarray(padded[np.minimum(index, len(times))])


def frequency_first(times: np.ndarray, window: float, ks: np.ndarray) -> np.ndarray:
    """First alert of the frequency rule for each k (times in seconds, sorted)."""
    return first_reaching(times, counts(times, window), ks)


def spike_first(
    times: np.ndarray, window: float, height: float, cs: np.ndarray, new_data: bool
) -> np.ndarray:
    """First alert of the spike rule for each c (times in seconds, sorted)."""
    current = counts(times, window)
    reference = counts(times, window, back=window)
    ok = current >= height * reference
    if not new_data:
        ok &= times - times[0] >= 2 * window
    return first_reaching(times, np.where(ok, current, 0), cs)


def levels(top: int, n: int = 48) -> np.ndarray:
    """Thresholds from MIN_EVENTS to ``top``, geometric, whole and distinct."""
    return np.unique(np.round(np.geomspace(MIN_EVENTS, max(top, MIN_EVENTS + 1), n)))


def grid_search(
    threads: Sequence[np.ndarray], big: np.ndarray, half: np.ndarray
) -> list[GridPoint]:
    """Every grid point of both rules, with its figures (threads: sorted times, seconds)."""
    top = max((len(t) for t in threads), default=MIN_EVENTS)
    thresholds = levels(top)
    points: list[GridPoint] = []
    for minutes in WINDOWS_MIN:
        w = minutes * 60.0
        first = np.stack([frequency_first(t, w, thresholds) for t in threads])
        for k, fig in zip(thresholds, figures_grid(first, big, half), strict=True):
            points.append(GridPoint("frequency", {"w_min": minutes, "k": float(k)}, fig))
        for height in HEIGHTS:
            for new_data in (False, True):
                first = np.stack([spike_first(t, w, height, thresholds, new_data) for t in threads])
                figs = figures_grid(first, big, half)
                for c, fig in zip(thresholds, figs, strict=True):
                    params = {"w_min": minutes, "h": height, "c": float(c), "new_data": new_data}
                    points.append(GridPoint("spike", params, fig))
    return points


def best(points: Sequence[GridPoint], rule: str, min_lead: float = 0.0) -> GridPoint | None:
    """The rule's grid point with the highest F1 (ties: the longer lead), among those whose
    median lead is at least ``min_lead`` minutes; None when no point qualifies."""
    mine = [
        p for p in points if p.rule == rule and (min_lead <= 0 or p.figures.median_lead >= min_lead)
    ]
    if not mine:
        return None
    return max(mine, key=lambda p: (p.figures.f1, np.nan_to_num(p.figures.median_lead)))
