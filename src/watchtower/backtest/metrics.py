"""The backtest's figures, as issue 4 defines them, from first-alert times per thread.

- precision: big threads among the threads that got any firing alert;
- early recall: big threads whose first alert came before their t_half, over all big threads;
- F1 of those two;
- median lead: t_half minus the first alert, over the big threads caught early (minutes).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from watchtower.backtest.stream import Truth, big_threshold, t_half


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one thread did: the truth an alert is judged against."""

    size: int
    t_half: float  # epoch seconds
    big: bool


@dataclass(frozen=True, slots=True)
class Figures:
    precision: float
    early_recall: float
    f1: float
    median_lead: float  # minutes; nan when no big thread was caught early
    alerted: int  # threads with any alert
    big: int  # big threads in the stream
    early: int  # big threads caught before t_half

    def as_dict(self) -> dict[str, float | int | None]:
        lead = None if math.isnan(self.median_lead) else round(self.median_lead, 2)
        return {
            "precision": round(self.precision, 4),
            "early_recall": round(self.early_recall, 4),
            "f1": round(self.f1, 4),
            "median_lead_min": lead,
            "alerted": self.alerted,
            "big": self.big,
            "early": self.early,
        }


def outcomes(truth: Truth) -> tuple[dict[str, Outcome], float]:
    """Each thread's outcome, and the big threshold (a percentile of the cascades' sizes)."""
    threshold = big_threshold([len(truth.times[c]) for c in truth.cascades if c in truth.times])
    out = {
        thread: Outcome(
            size=len(times),
            t_half=t_half(times),
            big=thread in truth.cascades and len(times) >= threshold,
        )
        for thread, times in truth.times.items()
    }
    return out, threshold


def figures(truth: Mapping[str, Outcome], first_alert: Mapping[str, float]) -> Figures:
    """The figures for one detector, given the time of each thread's first alert."""
    alerted = [thread for thread in first_alert if thread in truth]
    hits = sum(1 for thread in alerted if truth[thread].big)
    big = [thread for thread, outcome in truth.items() if outcome.big]
    leads = [
        (truth[thread].t_half - first_alert[thread]) / 60.0
        for thread in big
        if thread in first_alert and first_alert[thread] < truth[thread].t_half
    ]
    precision = hits / len(alerted) if alerted else 0.0
    recall = len(leads) / len(big) if big else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    lead = statistics.median(leads) if leads else math.nan
    return Figures(precision, recall, f1, lead, len(alerted), len(big), len(leads))


def figures_grid(first: np.ndarray, big: np.ndarray, half: np.ndarray) -> list[Figures]:
    """`figures` for many detectors at once: ``first[i, j]`` is detector j's first alert on
    thread i (inf: never). Threads absent from the rows are taken as never alerted, never big;
    ``big`` must count every big thread of the stream."""
    alerted = np.isfinite(first)
    n_alerted = alerted.sum(axis=0)
    hits = (alerted & big[:, None]).sum(axis=0)
    early = big[:, None] & (first < half[:, None])
    n_big = int(big.sum())
    leads = np.where(early, (half[:, None] - first) / 60.0, np.nan)
    out = []
    for j in range(first.shape[1]):
        precision = hits[j] / n_alerted[j] if n_alerted[j] else 0.0
        recall = early[:, j].sum() / n_big if n_big else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        column = leads[:, j][early[:, j]]
        lead = float(np.median(column)) if column.size else math.nan
        out.append(
            Figures(
                float(precision),
                float(recall),
                float(f1),
                lead,
                int(n_alerted[j]),
                n_big,
                int(early[:, j].sum()),
            )
        )
    return out
