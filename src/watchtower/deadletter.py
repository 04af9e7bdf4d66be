"""Rejected records: counted by the field at fault, and kept in a file when one is configured."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import BinaryIO

import orjson

from watchtower.errors import InvalidMention

_KEEP_BYTES = 8192  # enough to see what was wrong, bounded so a huge record cannot fill a disk


class DeadLetter:
    def __init__(self, path: str | None) -> None:
        self.counts: Counter[str] = Counter()  # field at fault -> records
        self._file: BinaryIO | None = None
        if path is not None:
            self._file = Path(path).open("ab")  # noqa: SIM115 - closed in close()

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
        self._file.write(orjson.dumps(entry) + b"\n")
        self._file.flush()  # rejects are rare; an operator may be watching with tail -f

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
