"""The labelled backtest stream: real cascades at seeded times among one-mention background.

Cascades come from a folder in the Twitter15 layout (``tree/<source_id>.txt``: Twitter15 itself,
or Twitter16) or in the PHEME / RumourEval layout (``posts.json`` and ``structures.json``, per
split or not), read by the shipped converters, or from a file of mentions in watchtower's own
input format (``.jsonl``, ``.jsonl.gz``: any platform, converted), where every thread is a
cascade, its threads found as the engine finds them (``thread_id``, else the parent's thread).
Each cascade starts at a seeded random time within one 24-hour window and is cut at 48 hours
after its source. The airline tweets are one-mention background threads folded into the same
window by their time of day (UTC), so that the background runs through the whole window instead
of sitting days away from it. The truth of each thread (its final size, t_half, big or not) is
taken from the very mentions the engine is fed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchtower.convert import airline, pheme, twitter15
from watchtower.convert._records import Record
from watchtower.errors import InvalidMention
from watchtower.mention import Mention, decode, from_dict
from watchtower.sources.files import read_lines
from watchtower.threads import root_of

WINDOW_START = 1424131200.0  # 2015-02-17T00:00:00Z, a UTC midnight in the airline data's week
WINDOW = 24 * 3600.0  # cascades start within this window
HORIZON_MINUTES = 48 * 60.0  # a cascade is cut this long after its source
BIG_PERCENTILE = 80.0  # big = final size at or above this percentile of the cascades
_MAX_CHARS = 4000


@dataclass(frozen=True)
class StreamSpec:
    data: Path  # the shared data folder: twitter15/ and airline/ under it
    cascades: Path | None = None  # the cascades' folder or mentions file; None: data/twitter15
    seed: int = 1
    limit: int | None = None  # the first N cascades (by source id) only: quick runs and tests
    background: bool = True  # mix in the airline tweets
    keep: float = 1.0  # each reply/repost kept with this probability: a smaller platform
    stretch: float = 1.0  # each cascade's time after its source times this: a slower platform

    @property
    def cascade_path(self) -> Path:
        return self.cascades if self.cascades is not None else self.data / "twitter15"


@dataclass
class Truth:
    """What happened to every thread of a stream, filled in as the stream is read."""

    times: dict[str, list[float]] = field(default_factory=dict)  # thread -> mention times
    cascades: set[str] = field(default_factory=set)  # threads that are cascades (not background)
    threads: dict[str, str] = field(default_factory=dict)  # mention id -> its thread
    rejected: list[str] = field(default_factory=list)  # bad records of a mentions file, why

    def add(self, thread_id: str, at: float) -> None:
        self.times.setdefault(thread_id, []).append(at)

    def thread_of(self, mention: Mention) -> str:
        """Its thread as the engine resolves it (`watchtower.threads.root_of`: PHEME replies
        carry only reply_to), remembered for the mentions that answer it."""
        parent = mention.parent
        thread = root_of(mention, None if parent is None else self.threads.get(parent))
        self.threads[mention.id] = thread
        return thread


def cascade_layout(path: Path) -> str:
    """The cascades' layout: twitter15 (tree/ of edge files), pheme (posts.json) or mentions
    (a JSON-lines file of mentions)."""
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
        return "mentions"
    if (path / "tree").is_dir():
        return "twitter15"
    if pheme.split_folders(path):
        return "pheme"
    raise ValueError(
        f"{path}: not a Twitter15-layout folder (tree/), a PHEME one (posts.json) or a file of"
        " mentions (.jsonl, .jsonl.gz)"
    )


def source_ids(path: Path) -> list[str]:
    """Every cascade's source id: the converter's layout is ``tree/<source_id>.txt``."""
    return sorted(file.stem for file in (path / "tree").glob("*.txt"))


def cascade_starts(ids: Sequence[str], seed: int, limit: int | None = None) -> dict[str, float]:
    """Source id -> a seeded start time within the window, drawn in source-id order."""
    chosen = sorted(ids)[:limit] if limit is not None else sorted(ids)
    rng = random.Random(seed)
    return {source_id: WINDOW_START + rng.uniform(0.0, WINDOW) for source_id in chosen}


def fold_into_window(at: float) -> float:
    """Keep the time of day, move the day into the window."""
    return WINDOW_START + (at - WINDOW_START) % WINDOW


def mentions(spec: StreamSpec, truth: Truth) -> Iterator[Mention]:
    """The whole stream, sorted by created_at, recording each thread's truth on the way."""
    found = _stretched(_cascade_mentions(spec, truth), spec.stretch)
    cascade = ((m, True) for m in _cascade(found, spec.keep, spec.seed))
    background = [(m, False) for m in _background(spec.data / "airline")] if spec.background else []
    for mention, is_cascade in heapq.merge(cascade, background, key=lambda p: p[0].created_at):
        thread = truth.thread_of(mention)
        if is_cascade:
            truth.cascades.add(thread)
        truth.add(thread, mention.created_at)
        yield mention


def _cascade_mentions(spec: StreamSpec, truth: Truth) -> Iterator[Mention]:
    folder = spec.cascade_path
    layout = cascade_layout(folder)
    if layout == "mentions":
        return iter(_file_cascades(folder, spec, truth))
    if layout == "pheme":
        starts = cascade_starts(pheme.thread_ids(folder), spec.seed, spec.limit)
        records: Iterable[Record] = pheme.convert(
            folder, start_times=starts, horizon_minutes=_horizon(spec) / 60.0, only=starts
        )
    else:
        starts = cascade_starts(source_ids(folder), spec.seed, spec.limit)
        records = twitter15.convert(
            folder, start_times=starts, horizon_minutes=_horizon(spec) / 60.0, only=starts
        )
    return (from_dict(record, _MAX_CHARS) for record in records)


def _file_cascades(path: Path, spec: StreamSpec, truth: Truth) -> list[Mention]:
    """A mentions file's threads, each moved to a seeded start (drawn in thread-id order) and
    cut at the horizon; a bad record is left out and noted in ``truth.rejected``."""
    found: list[Mention] = []
    for number, line in read_lines(str(path)):
        try:
            found.append(decode(line, _MAX_CHARS))
        except InvalidMention as error:
            truth.rejected.append(f"line {number}: {error}")
    found.sort(key=lambda m: m.created_at)  # stable: a parent stays before its replies
    threads, origin = _threads_and_origins(found)
    starts = cascade_starts(list(origin), spec.seed, spec.limit)
    out = []
    for mention, thread in zip(found, threads, strict=True):
        age = mention.created_at - origin[thread]
        if thread in starts and age <= _horizon(spec):
            mention.created_at = starts[thread] + age
            out.append(mention)
    out.sort(key=lambda m: m.created_at)
    return out


def _threads_and_origins(found: Sequence[Mention]) -> tuple[list[str], dict[str, float]]:
    """Each mention's thread, resolved as the engine does (on these mentions alone, in time
    order), and each thread's first time."""
    resolve = Truth()
    threads = [resolve.thread_of(mention) for mention in found]
    origin: dict[str, float] = {}
    for mention, thread in zip(found, threads, strict=True):
        origin.setdefault(thread, mention.created_at)
    return threads, origin


def _horizon(spec: StreamSpec) -> float:
    """Seconds after its source a cascade's mentions are read to: 48 h once stretched."""
    return HORIZON_MINUTES * 60.0 / spec.stretch


def _stretched(found: Iterator[Mention], stretch: float) -> Iterator[Mention]:
    """The cascades (sorted by time) with each one's time after its first mention multiplied
    by ``stretch``, sorted again: the same cascades on a platform ``stretch`` times slower."""
    if stretch == 1.0:
        return found
    out = list(found)
    threads, origin = _threads_and_origins(out)
    for mention, thread in zip(out, threads, strict=True):
        start = origin[thread]
        mention.created_at = start + (mention.created_at - start) * stretch
    out.sort(key=lambda m: m.created_at)  # stable: a parent stays before its replies
    return iter(out)


def _cascade(found: Iterable[Mention], keep: float, seed: int) -> Iterator[Mention]:
    """The cascades' mentions; each thread they make is a cascade. With ``keep`` < 1 every
    mention but the roots is kept with that probability (seeded), and a reply whose parent was
    left out goes with it when nothing else links it to its thread."""
    rng = random.Random(f"keep:{seed}")
    dropped: set[str] = set()
    for mention in found:
        parent = mention.parent
        if keep < 1.0 and (parent is not None or mention.thread_id is not None):
            orphan = mention.thread_id is None and parent in dropped
            if orphan or rng.random() >= keep:
                dropped.add(mention.id)
                continue
        yield mention


def _background(path: Path) -> list[Mention]:
    """Airline tweets as one-mention threads (ids namespaced: they are not cascade roots)."""
    out = []
    for record in airline.convert(path):
        mention = from_dict(record, _MAX_CHARS)
        mention.id = f"bg:{mention.id}"
        mention.created_at = fold_into_window(mention.created_at)
        out.append(mention)
    out.sort(key=lambda m: m.created_at)  # stable: ties keep the file's order
    return out


def big_threshold(sizes: Sequence[int], percentile: float = BIG_PERCENTILE) -> float:
    """The percentile of the cascades' sizes, linearly interpolated (numpy's default)."""
    ordered = sorted(sizes)
    if not ordered:
        raise ValueError("no cascades")
    rank = (len(ordered) - 1) * percentile / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def t_half(times: Sequence[float]) -> float:
    """When a thread reached half of its final size: the time of its ceil(n/2)-th mention."""
    ordered = sorted(times)
    return ordered[(len(ordered) + 1) // 2 - 1]
