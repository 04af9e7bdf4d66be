"""Rejected records: counted by the field at fault, and kept in a file when one is configured.

Also the mentions accepted but never decided (a batch dropped after repeated failures, a thread
whose stored state this build cannot read), each kept as the record it arrived as: an operator
takes them back with ``jq -r .record dead.jsonl > again.jsonl`` then ``watchtower replay`` or
the ingest API, once the cause is fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import BinaryIO

import orjson

from watchtower.errors import InvalidMention
from watchtower.mention import Mention
from watchtower.sources.files import open_output

_KEEP_BYTES = 8192  # enough to see what was wrong, bounded so a huge record cannot fill a disk


class DeadLetter:
    def __init__(self, path: str | None, setting: str = "input.dead_letter") -> None:
        """``setting`` names where ``path`` came from, for the error when it cannot be opened."""
        self.counts: Counter[str] = Counter()  # field at fault -> records
        self._file: BinaryIO | None = None
        if path is not None:
            self._file = open_output(path, setting, "ab")  # closed in close()

    def reject(self, source: str, where: str, error: InvalidMention, raw: bytes | str) -> None:
        self.counts[error.field] += 1
        if self._file is None:
            return
        record = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        entry = {
            "source": source,
            "where": where,
            "field": error.field,
            "error": error.reason,
            "record": record.rstrip("\n")[:_KEEP_BYTES],
        }
        self._write(entry)

    def set_aside(self, mentions: Iterable[tuple[Mention, str]], field: str) -> None:
        """Keep mentions the engine did not decide, each with why (``field``: what failed)."""
        for mention, reason in mentions:
            self.counts[field] += 1
            if self._file is not None:
                record = orjson.dumps(mention).decode()  # the input format: created_at exact
                entry = {"source": "engine", "where": "decide", "field": field, "error": reason}
                self._write(entry | {"record": record})

    def _write(self, entry: dict[str, str]) -> None:
        if self._file is not None:
            self._file.write(orjson.dumps(entry) + b"\n")
            self._file.flush()  # rejects are rare; an operator may be watching with tail -f

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
