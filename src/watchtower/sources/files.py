"""Mention files: JSON lines, plain or gzipped, or standard input as ``-``."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def open_binary(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return Path(path).open("rb")


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers, so a rejected one can be found again."""
    stream = open_binary(path)
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
