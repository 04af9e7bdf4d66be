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


def test_settle_freezes_what_survived_a_young_collection_and_nothing_else() -> None:
    with streaming_heap():
        frozen = gc.get_freeze_count()
        settle()
        # no young collection since: nothing frozen (a frozen object that another test's
        # leftover thread frees meanwhile lowers the count, so not ==)
        assert gc.get_freeze_count() <= frozen
        survivors = [[i] for i in range(500)]
        gc.collect(0)
        settle()
        assert gc.get_freeze_count() >= frozen + len(survivors)
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
