"""The garbage collector, set for a long stream of short-lived objects over a large live heap.

CPython's defaults collect the youngest generation every 700 allocations and walk the whole
heap each time it has grown by a quarter. A stream processor allocates a few objects per
mention that die young by reference counting, over a heap of models, thread states and caches
that live for minutes to hours and keep being replaced: with the defaults, about a tenth of a
replay went to walking the same long-lived objects again, and the live loop paused for every
older collection (measured at 5k mentions/s: ~20-90 ms each, every second or so, and a full
one grows with the heap). So, while streaming:

- what start-up built is frozen out of the collector's sight;
- the youngest generation is collected every ``YOUNG_THRESHOLD`` allocations instead of 700.
  A young collection walks what has survived so far, about a microsecond per object here:
  with ``settle()`` freezing its survivors, every 2,000 allocations took as much CPU in all as
  every 20,000 (less, in a 60k-mention backlog: 0.15 s against 0.21) and paused the loop at
  most ~2.5 ms instead of ~30 (p99 at 5k mentions/s: 9-16 ms instead of 17-19);
- ``settle()``, called between batches, freezes what survived a young collection since: it
  is long-lived state (thread states, cached sentiment, roots), which refcounting frees when
  it is dropped, so the older collections find next to nothing to walk;
- what freezing costs is that cyclic garbage (rare here: an exception's traceback, say) that
  was still alive when frozen is not collected until ``FULL_EVERY`` seconds have passed, when
  ``settle()`` unfreezes everything and runs one full collection: one pause an hour instead of
  one every few seconds.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 2_000
FULL_EVERY = 3600.0  # wall seconds between full collections while streaming


class _Streaming:
    def __init__(self, full_every: float) -> None:
        self.full_every = full_every
        self.young_collections = gc.get_count()[1]  # young collections since the last older one
        self.full_due = time.monotonic() + full_every
        self.full_collections = 0

    def settle(self) -> None:
        if gc.get_count()[1] != self.young_collections:  # a young collection ran since
            gc.freeze()  # its survivors; this also restarts the collector's counts
            self.young_collections = gc.get_count()[1]
        if time.monotonic() >= self.full_due:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.full_collections += 1
            self.young_collections = gc.get_count()[1]
            self.full_due = time.monotonic() + self.full_every


_streaming: _Streaming | None = None  # the collector is process-wide, and so is this


@contextmanager
def streaming_heap(full_every: float = FULL_EVERY) -> Iterator[None]:
    """Freeze what exists now and collect less often until the block ends (then restore)."""
    global _streaming  # noqa: PLW0603 - one collector per process
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    outer, _streaming = _streaming, _Streaming(full_every)
    try:
        yield
    finally:
        _streaming = outer
        gc.set_threshold(*before)
        gc.unfreeze()


def settle() -> None:
    """Between batches of a stream: see the module notes. Outside ``streaming_heap``: nothing."""
    if _streaming is not None:
        _streaming.settle()


def full_collections() -> int:
    """Full collections ``settle()`` ran in the current streaming block (tests, metrics)."""
    return 0 if _streaming is None else _streaming.full_collections
