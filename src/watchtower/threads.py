"""Thread resolution: which conversation a mention belongs to.

thread_id when the platform gives it; otherwise the root of the mention it replies to, reposts or
quotes (roots are remembered per mention for ``input.root_memory``; an unknown parent is taken as
the root itself); otherwise the mention starts its own thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watchtower.mention import Mention
from watchtower.state.store import Store


async def resolve_roots(
    mentions: Sequence[Mention], store: Store, known: Mapping[str, str] | None = None
) -> list[str]:
    """The thread root of each mention, in order; remembers the new ones. ``known``: the roots
    of the parents the store was asked for already (``parents_to_look_up``, or more)."""
    in_batch: dict[str, str] = {}
    if known is None:
        known = await store.lookup_roots(parents_to_look_up(mentions))
    roots = []
    for m in mentions:
        parent = m.parent
        parent_root = None if parent is None else in_batch.get(parent) or known.get(parent)
        root = root_of(m, parent_root)
        in_batch[m.id] = root
        roots.append(root)
    await store.remember_roots(in_batch, max(m.created_at for m in mentions))
    return roots


def root_of(mention: Mention, parent_root: str | None) -> str:
    """The thread of one mention, given its parent's root when that is known: its thread_id,
    else that root, else the parent itself (an unknown parent is taken as the root), else its
    own id. The backtest's truth resolves threads with this same rule."""
    if mention.thread_id is not None:
        return mention.thread_id
    if mention.parent is not None:
        return parent_root or mention.parent
    return mention.id


def parents_to_look_up(mentions: Sequence[Mention]) -> list[str]:
    """Parents not resolved earlier in the batch, sorted: the store need not be asked for the
    others.

    ``in_batch`` answers for a parent seen earlier whenever its root is non-empty, which it is
    when the parent's own stand-in (its thread_id, its parent, its id) is.
    """
    wanted: set[str] = set()
    earlier: set[str] = set()
    for m in mentions:
        parent = m.parent
        if m.thread_id is None and parent is not None and parent not in earlier:
            wanted.add(parent)
        stand_in = (
            m.thread_id if m.thread_id is not None else parent if parent is not None else m.id
        )
        if stand_in:
            earlier.add(m.id)
    return sorted(wanted)
