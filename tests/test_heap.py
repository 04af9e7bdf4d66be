"""The collector while streaming: survivors of young collections frozen between batches, and
the periodic full collection that frees cyclic garbage frozen while it was still alive."""

from __future__ import annotations

import gc
import weakref

from watchtower.heap import full_collections, settle, streaming_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def tracked(objects: list[list[int]]) -> int:
    """How many of these the collector still walks (frozen objects are out of gc.get_objects)."""
    walked = {id(o) for o in gc.get_objects()}
    return sum(id(o) in walked for o in objects)


def test_settle_freezes_what_survived_a_young_collection_and_nothing_else() -> None:
    # judged by the objects themselves, not by gc.get_freeze_count(): another test's leftover
    # thread freeing a frozen object meanwhile moves that count
    with streaming_heap():
        gc.collect(0)
        settle()  # a clean start: 500 allocations now stay below the young threshold
        young = [[i] for i in range(500)]
        settle()  # no young collection since they were made: they stay in the collector's sight
        assert tracked(young) == len(young)
        gc.collect(0)
        settle()
        assert tracked(young) == 0
        assert full_collections() == 0
    assert gc.get_freeze_count() == 0  # the block restores the collector


def test_cyclic_garbage_frozen_alive_waits_for_the_periodic_full_collection() -> None:
    with streaming_heap(full_every=0.0):  # every settle() is due for one
        node = cycle()
        alive = weakref.ref(node)
        settle()  # frozen while alive
        del node
        gc.collect()  # an ordinary full collection does not look at frozen objects
        assert alive() is not None
        settle()
        assert alive() is None
        assert full_collections() == 2
