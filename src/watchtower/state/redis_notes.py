"""The NoteBoard on Redis: a stream that every worker appends its notes to and reads the others'
from, one round trip a batch (XADD and XRANGE pipelined)."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis

from watchtower.state import keys
from watchtower.state.redis_store import as_text


class RedisNoteBoard:
    def __init__(self, client: redis.Redis, publisher: str) -> None:
        self._client = client
        self.publisher = publisher.encode()
        self._after = f"{int(time.time() * 1000)}-0"  # what came before this worker: its blob

    async def exchange(self, notes: bytes | None) -> list[bytes]:
        async with self._client.pipeline(transaction=False) as pipe:
            if notes is not None:
                entry: dict[Any, Any] = {b"from": self.publisher, b"notes": notes}  # invariant
                pipe.xadd(keys.MOMENTUM_NOTES, entry, maxlen=keys.NOTES_KEPT, approximate=True)
            pipe.xrange(keys.MOMENTUM_NOTES, min=f"({self._after}", max="+")
            *_, entries = await pipe.execute()
        others = []
        for entry_id, fields in entries:
            self._after = as_text(entry_id)
            if fields.get(b"from") != self.publisher:
                others.append(fields[b"notes"])
        return others
