"""The one interface every state backend implements, with the same results.

The engine loads the states a batch touches, updates them in Python, and saves them back with a
compare-and-set on ``version``: a backend shared by several workers reports the threads another
worker changed meanwhile, and the engine redoes just those. So the update maths lives in one
place (thread_state.py) and every backend gives the same alerts for the same stream.

Thread roots (mention -> root) are remembered in the batch's thread resolution and may be held
by a shared backend until the batch's ``save``, which writes them in the same round trip: the
engine saves after every batch it resolves, and a backend's own lookups see them at once. So in
a shared backend a mention with a root is one some worker decided (``lookup_batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Protocol

from watchtower.errors import UnreadableStates
from watchtower.state.thread_state import ThreadState


class Store(Protocol):
    async def load(
        self, thread_ids: Iterable[str], *, new: Set[str] = frozenset(), keep: bool = False
    ) -> dict[str, ThreadState]:
        """The states that exist among ``thread_ids``; absent ones are new threads.

        Raises UnreadableStates naming the stored states this build cannot read (see
        ``load_readable``): taking one for absent would overwrite another build's thread.

        ``new``: threads whose root post the batch holds, which a shared backend may take as
        absent without asking; a thread that existed after all fails the ``save``'s
        compare-and-set and is redone. ``keep``: the caller only reads the states (it will
        not save them), so a backend holding states in process may keep holding them.
        """

    async def save(self, states: Iterable[ThreadState]) -> list[str]:
        """Store states whose ``version`` still matches (then bump it); return the conflicts.

        Also writes the roots remembered since the last save, even when ``states`` is empty;
        they do not depend on the compare-and-set.
        """

    async def lookup_roots(self, mention_ids: Iterable[str]) -> dict[str, str]:
        """Thread roots remembered for these mentions (those this store was just told included)."""

    async def lookup_batch(
        self, parents: Iterable[str], mention_ids: Iterable[str]
    ) -> tuple[dict[str, str], set[str]]:
        """``lookup_roots(parents)``, and which of a batch's ``mention_ids`` a worker sharing
        this backend already decided, in one round trip. The roots may include those of the
        mentions decided. A backend of one process answers none: it remembers roots before the
        batch is decided, and its engine's own memory of ids is the whole answer."""

    async def remember_roots(self, roots: Mapping[str, str], now: float) -> None:
        """Remember mention -> root, for root_memory of event time from ``now``; a shared
        backend may send them with the next ``save``."""

    async def active_threads(self) -> list[str]:
        """Threads with an open alert episode (they are checked on every tick)."""

    async def expire(self, now: float) -> int:
        """Drop threads idle past their TTL as of event time ``now``; return how many."""

    async def thread_count(self) -> int:
        """Threads currently held."""

    async def lost_state(self) -> bool:
        """True (once) when the store is found to have lost what it held since the last call:
        a shared backend flushed, or restarted empty. Called periodically by the daemon."""

    async def close(self) -> None:
        """Release connections; calling it twice is harmless."""


class StormBoard(Protocol):
    """Where workers that split one stream pool their brand-storm buckets, so that one of them
    judges each bucket from every worker's share of it (decide/shared_storms.py)."""

    async def publish(self, shares: Sequence[tuple[int, bytes]], watermark: float | None) -> None:
        """Add this worker's shares, each (bucket index, opaque bytes), and say that it has
        published every bucket that ends by event time ``watermark`` (it is present; None:
        say nothing, as a worker leaving does)."""

    async def leave(self) -> None:
        """This worker stops: judgements no longer wait for it."""

    async def judge(
        self, width: float, decide: Callable[[bytes | None, list[bytes], int], bytes]
    ) -> bool:
        """If the buckets (``width`` wide) that every present worker has closed include any not
        yet judged: ``decide(state, their shares, index of the last of them)`` and keep the
        state it returns, those shares gone. False, keeping nothing, when another worker
        judged or published one of those shares meanwhile (``decide`` may have run)."""


class NoteBoard(Protocol):
    """Where workers that split one stream hand each other the threads they scored, so that
    each momentum model sees the whole stream (scoring/momentum.py)."""

    async def exchange(self, notes: bytes | None) -> list[bytes]:
        """Publish this worker's notes (opaque bytes, or None) and return what the other
        workers published since the last call, oldest first."""


async def load_readable(
    store: Store, thread_ids: Iterable[str], *, new: Set[str] = frozenset(), keep: bool = False
) -> tuple[dict[str, ThreadState], dict[str, str]]:
    """``store.load`` without the states it cannot read, and why each could not be read: one
    unreadable thread must not stop every other thread of a batch (or of every quiet check)."""
    wanted = list(thread_ids)
    unreadable: dict[str, str] = {}
    while True:
        try:
            return await store.load(wanted, new=new, keep=keep), unreadable
        except UnreadableStates as exc:
            unreadable.update(exc.reasons)
            wanted = [tid for tid in wanted if tid not in exc.reasons]
