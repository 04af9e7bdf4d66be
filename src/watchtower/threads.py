"""Thread resolution: which conversation a mention belongs to.

thread_id when the platform gives it; otherwise the root of the mention it replies to, reposts or
quotes (roots are remembered per mention for ``input.root_memory``; an unknown parent is taken as
the root itself); otherwise the mention starts its own thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchtower.mention import Mention
from watchtower.state.store import Store


async def resolve_roots(mentions: Sequence[Mention], store: Store) -> list[str]:
    """The thread root of each mention, in order; remembers the new ones."""
    in_batch: dict[str, str] = {}
    parents = {m.parent for m in mentions if m.thread_id is None and m.parent is not None}
    known = await store.lookup_roots(sorted(p for p in parents if p is not None))
    roots = []
    for m in mentions:
        parent = m.parent
        if m.thread_id is not None:
            root = m.thread_id
        elif parent is not None:
            root = in_batch.get(parent) or known.get(parent) or parent
        else:
            root = m.id
        in_batch[m.id] = root
        roots.append(root)
    await store.remember_roots(in_batch, max(m.created_at for m in mentions))
    return roots
