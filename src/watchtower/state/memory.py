"""The embedded default store: plain dicts in this process, bounded by a TTL and a size cap."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Set

from watchtower.state.thread_state import ThreadState


class MemoryStore:
    """Threads in activity order, so the idle ones to expire or evict are at the front."""

    def __init__(
        self, thread_ttl: float, max_threads: int, root_memory: float, max_roots: int
    ) -> None:
        self._threads: OrderedDict[str, ThreadState] = OrderedDict()
        self._roots: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._active: set[str] = set()
        self._thread_ttl = thread_ttl
        self._max_threads = max_threads
        self._root_memory = root_memory
        self._max_roots = max_roots
        self.evicted = 0  # threads dropped by the size cap before their TTL

    async def load(
        self, thread_ids: Iterable[str], *, new: Set[str] = frozenset(), keep: bool = False
    ) -> dict[str, ThreadState]:
        threads = self._threads
        return {tid: threads[tid] for tid in thread_ids if tid in threads}

    async def save(self, states: Iterable[ThreadState]) -> list[str]:
        threads = self._threads
        for state in states:
            state.version += 1
            tid = state.thread_id
            threads[tid] = state
            threads.move_to_end(tid)
            # as RedisStore's save script: a pending level counts too (ticked, never expired)
            if state.episode.id is not None or state.episode.pending_level is not None:
                self._active.add(tid)
            else:
                self._active.discard(tid)
        while len(threads) > self._max_threads:
            tid, _ = threads.popitem(last=False)
            self._active.discard(tid)
            self.evicted += 1
        return []  # one process: nobody else can have changed a thread

    async def lookup_roots(self, mention_ids: Iterable[str]) -> dict[str, str]:
        roots = self._roots
        found = {}
        for mid in mention_ids:
            entry = roots.get(mid)
            if entry is not None:
                found[mid] = entry[0]
        return found

    async def lookup_batch(
        self, parents: Iterable[str], mention_ids: Iterable[str]
    ) -> tuple[dict[str, str], set[str]]:
        return await self.lookup_roots(parents), set()  # one process: no other worker decides

    async def remember_roots(self, roots: Mapping[str, str], now: float) -> None:
        memory = self._roots
        until = now + self._root_memory
        for mid, root in roots.items():
            memory[mid] = (root, until)
            memory.move_to_end(mid)
        while memory:
            mid, (_, expires) = next(iter(memory.items()))
            if expires > now and len(memory) <= self._max_roots:
                break
            memory.popitem(last=False)

    async def active_threads(self) -> list[str]:
        return sorted(self._active)

    async def expire(self, now: float) -> int:
        """Drop idle threads from the front (least recently active first), but never one with
        an open episode: it must live to resolve."""
        threads = self._threads
        idle = []
        for tid, state in threads.items():
            if state.last_seen + self._thread_ttl > now:
                break
            if tid not in self._active:
                idle.append(tid)
        for tid in idle:
            del threads[tid]
        return len(idle)

    async def thread_count(self) -> int:
        return len(self._threads)

    async def lost_state(self) -> bool:
        return False  # it lives and dies with the process

    async def close(self) -> None:
        self._threads.clear()
        self._roots.clear()
        self._active.clear()
