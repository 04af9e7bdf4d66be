"""The momentum notes workers hand each other (``state.backend: redis``): each worker's
momentum model follows the threads the others scored too (scoring/momentum.py says why).

Exchanged once a batch, after it is decided; a store failure is logged and the notes are kept
for the next batch (a bounded number: a long outage drops the oldest), so it fails no batch.
"""

from __future__ import annotations

import logging

import orjson

from watchtower.logs import kv
from watchtower.scoring.momentum import MomentumModel, Note
from watchtower.state.store import NoteBoard

log = logging.getLogger(__name__)

MAX_UNSENT = 100_000  # notes kept through a store outage


class SharedNotes:
    def __init__(self, board: NoteBoard) -> None:
        self.board = board
        self._unsent: list[Note] = []

    async def sync(self, model: MomentumModel) -> None:
        """Publish ``model``'s new notes and let it absorb the other workers'."""
        self._unsent += model.take_notes()
        del self._unsent[:-MAX_UNSENT]
        try:
            others = await self.board.exchange(orjson.dumps(self._unsent) if self._unsent else None)
        except Exception as exc:  # the stage boundary: the next batch tries again
            log.warning("momentum notes deferred", extra=kv(error=repr(exc)))
            return
        self._unsent = []
        for data in others:
            try:
                model.absorb(orjson.loads(data))
            except (ValueError, TypeError) as exc:  # not a list of notes: another build's
                log.warning("momentum notes unreadable, dropped", extra=kv(error=repr(exc)))
