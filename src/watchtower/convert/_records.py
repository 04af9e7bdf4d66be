"""Building mention records and writing them as JSON lines.

Shared by the converters and by `watchtower generate`: one key order, one time format, one
writer, so that every stream the project produces looks the same and is byte-reproducible.
"""

from __future__ import annotations

import gzip
import heapq
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import orjson

from watchtower.errors import InputError

# Twitter ids are "snowflakes": the high bits are milliseconds since this epoch.
_SNOWFLAKE_EPOCH_MS = 1288834974657
_WRITE_BATCH = 2048

Record = dict[str, object]


def snowflake_seconds(tweet_id: str | int) -> float:
    """Epoch seconds at which a tweet with this (post-2010) id was created."""
    return ((int(tweet_id) >> 22) + _SNOWFLAKE_EPOCH_MS) / 1000.0


def format_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds and Z, the form every produced stream uses."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def author_record(
    author_id: str, handle: str, followers: int | None = None, *, verified: bool = False
) -> Record:
    return {"id": author_id, "handle": handle, "followers": followers, "verified": verified}


def mention_record(
    *,
    mention_id: str,
    platform: str,
    created_at: float,
    text: str,
    author: Record | None,
    thread_id: str | None = None,
    reply_to: str | None = None,
    repost_of: str | None = None,
    quote_of: str | None = None,
    brand: str | None = None,
    url: str | None = None,
    lang: str | None = "en",
    label: str | None = None,
) -> Record:
    """One mention in the fixed key order of the format (created_at given as epoch seconds)."""
    return {
        "id": mention_id,
        "platform": platform,
        "created_at": format_time(created_at),
        "text": text,
        "author": author,
        "thread_id": thread_id,
        "reply_to": reply_to,
        "repost_of": repost_of,
        "quote_of": quote_of,
        "brand": brand,
        "url": url,
        "lang": lang,
        "label": label,
    }


def merge_by_start(
    streams: Iterable[tuple[float, Callable[[], Iterator[tuple[float, Record]]]]],
) -> Iterator[Record]:
    """Merge time-sorted streams, opening each only when the merge reaches its start time.

    Each stream is (start, opener); the opener returns (epoch, record) pairs sorted by epoch,
    none earlier than start. Opening lazily keeps only overlapping streams in memory.
    """
    pending = sorted(enumerate(streams), key=lambda item: (item[1][0], item[0]))
    heap: list[tuple[float, int, Record, Iterator[tuple[float, Record]]]] = []
    next_pending = 0
    while next_pending < len(pending) or heap:
        while next_pending < len(pending) and (
            not heap or pending[next_pending][1][0] <= heap[0][0]
        ):
            order, (_, opener) = pending[next_pending]
            next_pending += 1
            _push_next(heap, order, opener())
        if heap:
            _, order, record, stream = heapq.heappop(heap)
            yield record
            _push_next(heap, order, stream)


def _push_next(
    heap: list[tuple[float, int, Record, Iterator[tuple[float, Record]]]],
    order: int,
    stream: Iterator[tuple[float, Record]],
) -> None:
    item = next(stream, None)
    if item is not None:
        heapq.heappush(heap, (item[0], order, item[1], stream))


def write_jsonl(records: Iterable[Mapping[str, object]], output: str | Path | None) -> int:
    """Write one JSON object a line to a file (".gz" => gzip) or stdout; return the count.

    The gzip header carries no name or time, so the same records give the same bytes.
    """
    if output is None or str(output) == "-":
        return _write_lines(records, sys.stdout.buffer)
    path = Path(output)
    with path.open("wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0
            ) as packed:
                return _write_lines(records, packed)
        return _write_lines(records, raw)


def _write_lines(records: Iterable[Mapping[str, object]], sink: BinaryIO | gzip.GzipFile) -> int:
    count = 0
    batch: list[bytes] = []
    dumps = orjson.dumps
    for record in records:
        batch.append(dumps(record))
        if len(batch) >= _WRITE_BATCH:
            count += _flush(batch, sink)
    count += _flush(batch, sink)
    sink.flush()
    return count


def _flush(batch: list[bytes], sink: BinaryIO | gzip.GzipFile) -> int:
    if not batch:
        return 0
    sink.write(b"\n".join(batch) + b"\n")
    size = len(batch)
    batch.clear()
    return size


def open_text(path: Path) -> TextIO:
    """A dataset's CSV file, as the csv module wants it (``newline=""``: texts hold quoted
    newlines it must see); one that cannot be opened is an ``InputError`` naming it."""
    try:
        return path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def default_data_dir() -> Path:
    """The shared data folder next to the repository (../shared/data), if this is a checkout."""
    return Path(__file__).resolve().parents[4] / "shared" / "data"
