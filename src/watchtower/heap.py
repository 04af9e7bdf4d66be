"""The garbage collector, set for a long stream of short-lived objects over a large live heap.

CPython's defaults collect the youngest generation every 700 allocations and walk the whole
heap each time it has grown by a quarter. A stream processor allocates a few objects per
mention that die young by reference counting, over a heap of models and thread states that
live for hours: with the defaults, about a tenth of a replay went to walking the same
long-lived objects again, and a full collection paused the live loop ~110 ms.
So, while streaming: what start-up built is frozen out of the collector's sight, and the
youngest generation is collected every ``YOUNG_THRESHOLD`` allocations instead of 700 (each
young collection then takes a millisecond or two; full ones become rare). Cycles are still
collected; only less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000


@contextmanager
def streaming_heap() -> Iterator[None]:
    """Freeze what exists now and collect less often until the block ends (then restore)."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
