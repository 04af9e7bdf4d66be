"""``watchtower replay``: a file of mentions through the same engine the daemon runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from watchtower.alerting.alert import AlertTransition
from watchtower.batch_span import spans_too_long
from watchtower.deadletter import DeadLetter
from watchtower.engine import Engine
from watchtower.errors import InputError, InvalidMention
from watchtower.heap import settle, streaming_heap
from watchtower.mention import Mention, decode
from watchtower.sources.files import read_lines

BATCH_SIZE = 512  # replays cut batches here at most, and as the daemon does at BATCH_SPAN


def full(batch: list[Mention], coming: Mention) -> bool:
    """Whether ``batch`` is to be decided before ``coming`` joins it."""
    return len(batch) >= BATCH_SIZE or (bool(batch) and spans_too_long(batch[0], coming))


@dataclass
class ReplaySummary:
    mentions: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    repeats: int = 0  # mentions dropped as repeats of an id already taken
    threads: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "level/state" -> count
    open_episodes: int = 0
    seconds: float = 0.0
    unreadable: list[str] = field(default_factory=list)  # inputs that broke off, and where

    def lines(self) -> list[str]:
        rate = self.mentions / self.seconds if self.seconds > 0 else 0.0
        rejected = sum(self.rejected.values())
        by_field = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items()))
        alerts = ", ".join(f"{k}: {v}" for k, v in sorted(self.transitions.items())) or "none"
        return [
            f"mentions: {self.mentions} accepted, {rejected} rejected"
            + (f" ({by_field})" if by_field else "")
            + (f", {self.repeats} repeats of an id dropped" if self.repeats else ""),
            f"threads: {self.threads}, open alert episodes at end: {self.open_episodes}",
            f"alert transitions: {alerts}",
            f"speed: {rate:,.0f} mentions/s over {self.seconds:.1f} s",
            *(f"input {error}" for error in self.unreadable),
        ]


AlertSink = Callable[[AlertTransition], None]


async def replay(
    paths: Iterable[str],
    engine: Engine,
    sink: AlertSink,
    dead_letter: DeadLetter,
    progress: TextIO | None = None,
) -> ReplaySummary:
    with streaming_heap():
        return await _replay(paths, engine, sink, dead_letter, progress)


async def _replay(
    paths: Iterable[str],
    engine: Engine,
    sink: AlertSink,
    dead_letter: DeadLetter,
    progress: TextIO | None,
) -> ReplaySummary:
    started = time.perf_counter()
    max_chars = engine.config.input.max_text_chars
    batch: list[Mention] = []
    shown = started
    unreadable: list[str] = []
    for path, number, line in _lines(paths, unreadable):
        try:
            mention = decode(line, max_chars)
        except InvalidMention as error:
            dead_letter.reject(path, f"line {number}", error, line)
            continue
        if full(batch, mention):
            await _decide(batch, engine, sink, dead_letter)
            batch = []
            settle()
            if progress is not None and time.perf_counter() - shown > 0.5:
                shown = time.perf_counter()
                _show_progress(progress, engine, shown - started)
        batch.append(mention)
    await _decide(batch, engine, sink, dead_letter)
    if progress is not None:
        progress.write("\n")
    summary = await _summary(engine, dead_letter, time.perf_counter() - started)
    summary.unreadable = unreadable
    return summary


def _lines(paths: Iterable[str], unreadable: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """Each input's lines in turn. A bad input never stops the run: one that cannot be read to
    its end (a truncated gzip) is noted in ``unreadable``, its lines so far replayed."""
    for path in paths:
        try:
            for number, line in read_lines(path):
                yield path, number, line
        except InputError as error:
            unreadable.append(str(error))


async def _decide(
    batch: list[Mention], engine: Engine, sink: AlertSink, dead_letter: DeadLetter
) -> None:
    for transition in await engine.process(batch):
        sink(transition)
    aside = engine.take_set_aside()
    dead_letter.set_aside(aside.too_late, "created_at")
    dead_letter.set_aside(aside.mentions, "(thread state)")


def _show_progress(out: TextIO, engine: Engine, seconds: float) -> None:
    n = engine.stats.mentions
    out.write(f"\r{n:,} mentions, {n / seconds:,.0f}/s ")
    out.flush()


async def _summary(engine: Engine, dead_letter: DeadLetter, seconds: float) -> ReplaySummary:
    transitions = {f"{lvl}/{st}": n for (lvl, st), n in engine.stats.transitions.items()}
    return ReplaySummary(
        mentions=engine.stats.mentions,
        rejected=dict(dead_letter.counts),
        repeats=engine.stats.repeats,
        threads=engine.stats.threads_created,
        transitions=transitions,
        open_episodes=len(await engine.store.active_threads()),
        seconds=seconds,
    )


def progress_stream() -> TextIO | None:
    """A progress line on stderr only when a person is watching it."""
    return sys.stderr if sys.stderr.isatty() else None
