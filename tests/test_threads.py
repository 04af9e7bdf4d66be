"""Thread resolution: thread_id, parents across batches, unknown parents, root memory."""

from __future__ import annotations

from collections.abc import Iterable

from watchtower.mention import Mention
from watchtower.state.memory import MemoryStore
from watchtower.threads import resolve_roots


def store(root_memory: float = 3600) -> MemoryStore:
    return MemoryStore(thread_ttl=3600, max_threads=100, root_memory=root_memory, max_roots=100)


def m(mid: str, at: float = 0, **links: str) -> Mention:
    return Mention(id=mid, created_at=at, text="", **links)  # type: ignore[arg-type]


async def test_thread_id_wins_then_parents_then_self() -> None:
    s = store()
    roots = await resolve_roots(
        [m("a"), m("b", reply_to="a"), m("c", repost_of="b"), m("d", thread_id="z", reply_to="a")],
        s,
    )
    assert roots == ["a", "a", "a", "z"]


async def test_parents_are_remembered_across_batches() -> None:
    s = store()
    await resolve_roots([m("a"), m("b", quote_of="a")], s)
    assert await resolve_roots([m("c", reply_to="b", at=10)], s) == ["a"]


async def test_unknown_parent_is_taken_as_the_root() -> None:
    assert await resolve_roots([m("x", reply_to="never-seen")], store()) == ["never-seen"]


async def test_root_memory_expires_in_event_time() -> None:
    s = store(root_memory=100)
    await resolve_roots([m("a", at=0), m("b", reply_to="a", at=0)], s)
    await resolve_roots([m("later", at=500)], s)
    assert await resolve_roots([m("c", reply_to="b", at=501)], s) == ["b"]


class Asked(MemoryStore):
    """A MemoryStore that records which parents it was asked for."""

    def __init__(self) -> None:
        super().__init__(thread_ttl=3600, max_threads=100, root_memory=3600, max_roots=100)
        self.asked: list[list[str]] = []

    async def lookup_roots(self, mention_ids: Iterable[str]) -> dict[str, str]:
        mids = list(mention_ids)
        self.asked.append(mids)
        return await super().lookup_roots(mids)


async def test_only_parents_not_resolved_earlier_in_the_batch_are_looked_up() -> None:
    s = Asked()
    await resolve_roots([m("e", thread_id="r"), m("p", thread_id="T")], s)
    batch = [
        m("a"),
        m("b", reply_to="a"),  # a came just before: no lookup
        m("c", reply_to="x"),  # never seen
        m("d", reply_to="e"),  # e comes later in the batch: its remembered root counts
        m("e", thread_id="r2"),
        m("p", thread_id=""),  # an empty root does not answer for p: the remembered one does
        m("q", reply_to="p"),
    ]
    assert await resolve_roots(batch, s) == ["a", "a", "x", "r", "r2", "", "T"]
    assert s.asked[-1] == ["e", "p", "x"]
