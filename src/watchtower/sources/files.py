"""Mention files: JSON lines, plain or gzipped, or standard input as ``-``; and the files a
command writes (dead letters, alerts), opened with an error that names the setting."""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from watchtower.errors import InputError, OutputError


def open_binary(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return Path(path).open("rb")


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers, so a rejected one can be found again.

    A file that cannot be opened, or that breaks off (a truncated or corrupt gzip, a file that
    is not gzip at all) is an ``InputError`` naming it and the last line read before it.
    """
    try:
        stream = open_binary(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    number = 0
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        read = f"after line {number}" if number else "before its first line"
        raise InputError(f"{path}: unreadable {read}: {exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def open_output(path: str | Path, setting: str, mode: Literal["wb", "ab"] = "wb") -> BinaryIO:
    """``path`` opened to write (or append); an ``OutputError`` naming ``setting``
    (``input.dead_letter``, ``--alerts-out``) and the path when it cannot be, not a traceback."""
    try:
        return Path(path).open(mode)
    except OSError as exc:
        raise OutputError(setting, path, exc.strerror or type(exc).__name__) from None
