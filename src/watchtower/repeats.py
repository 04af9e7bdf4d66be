"""Repeats: at least once delivery (MQTT QoS 1, an HTTP client resending what timed out) must
not make one post count twice towards its thread.

A mention is a repeat when its id came earlier in its batch, is among the latest
``input.remembered_ids`` ids this process decided, or is one a worker sharing the store decided
(``Store.lookup_batch``: in Redis, a mention has a root once a batch holding it was saved). The
ids join this process's memory once their batch is decided, and the ids of a batch that failed
are no repeats whatever the store says (their roots may reach it with a later save), so a batch
retried is no repeat of itself. ``input.remembered_ids: 0`` turns both checks off.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from watchtower.mention import Mention
from watchtower.state.store import Store
from watchtower.threads import parents_to_look_up


class Repeats:
    def __init__(self, remembered: int) -> None:
        self.remembered = remembered  # input.remembered_ids (a reload may change it)
        self._seen: OrderedDict[str, None] = OrderedDict()  # the latest ids decided here
        self._failed: OrderedDict[str, None] = OrderedDict()  # see failed

    async def dropped(
        self, mentions: Sequence[Mention], store: Store
    ) -> tuple[dict[str, str], Sequence[Mention]]:
        """The roots of the batch's parents (looked up with its ids), and ``mentions`` but
        the repeats: the batch's mentions to decide."""
        mentions = self._first_seen(mentions)
        if not mentions:
            return {}, mentions
        return await self._not_decided_elsewhere(mentions, store)

    def _first_seen(self, mentions: Sequence[Mention]) -> Sequence[Mention]:
        """``mentions`` but repeats in the batch or of the ids this process decided."""
        if self.remembered == 0:
            return mentions
        seen, batch = self._seen, set()

        def first(m: Mention) -> bool:
            if m.id in seen or m.id in batch:
                return False
            batch.add(m.id)
            return True

        return keeping(mentions, first)

    async def _not_decided_elsewhere(
        self, mentions: Sequence[Mention], store: Store
    ) -> tuple[dict[str, str], Sequence[Mention]]:
        """The roots of the batch's parents, and ``mentions`` but those a worker sharing the
        store decided: one lookup answers both."""
        ids = [m.id for m in mentions] if self.remembered else []
        known, decided = await store.lookup_batch(parents_to_look_up(mentions), ids)
        failed = self._failed
        if decided and failed:
            decided = {mid for mid in decided if mid not in failed}
        if not decided:
            return known, mentions
        return known, keeping(mentions, lambda m: m.id not in decided)

    def decided(self, mentions: Sequence[Mention]) -> None:
        """The batch of ``mentions`` is decided: their ids join this process's memory."""
        if self.remembered == 0:
            return
        _hold(self._seen, mentions, self.remembered)
        failed = self._failed
        if failed:
            for m in mentions:
                failed.pop(m.id, None)

    def failed(self, mentions: Sequence[Mention]) -> None:
        """A batch failed in or after its thread resolution, which remembers its roots (a
        shared store writes them with its next save, whoever calls it): its ids stay
        undecided, whatever the store says, until a batch holding them is decided."""
        if self.remembered:
            _hold(self._failed, mentions, self.remembered)


def _hold(ids: OrderedDict[str, None], mentions: Sequence[Mention], cap: int) -> None:
    """Add the mentions' ids to ``ids``, keeping the latest ``cap`` of them."""
    for m in mentions:
        ids[m.id] = None
    while len(ids) > cap:
        ids.popitem(last=False)


def keeping(mentions: Sequence[Mention], keep: Callable[[Mention], bool]) -> Sequence[Mention]:
    """The mentions ``keep`` (asked once each, in order) keeps: ``mentions`` itself when it
    keeps them all, as it does in most batches."""
    kept: list[Mention] | None = None  # made at the first one left out
    for i, m in enumerate(mentions):
        if keep(m):
            if kept is not None:
                kept.append(m)
        elif kept is None:
            kept = list(mentions[:i])
    return mentions if kept is None else kept
