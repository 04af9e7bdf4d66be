"""``watchtower feed``: POST a stream of mentions to a running daemon, for demos and load.

The stream (generated, or read from a file) is moved in time so that it ends as the feed ends:
event time then runs from the past up to now, never ahead of the wall clock, and the daemon's
idle clock takes over when the feed is done. ``--speed 360`` plays six hours in a minute;
``--speed 0`` sends as fast as the daemon takes it (503 answers are waited out and retried).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from watchtower.errors import InputError, InvalidMention
from watchtower.mention import format_time, parse_time
from watchtower.sources.files import read_lines
from watchtower.synth import generate

BATCH = 500  # mentions per request at most
_MAX_GAP = 0.2  # seconds: a paced batch is sent at least this often


@dataclass
class FeedResult:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    refused: int = 0  # 503 answers waited out
    seconds: float = 0.0


def shift_to_now(records: list[dict[str, Any]], speed: float, now: float) -> list[float]:
    """Move ``created_at`` so the stream ends when a feed at ``speed`` ends; the send offsets."""
    times = [parse_time(r["created_at"], "created_at") for r in records]
    if not times:
        return []
    first, last = min(times), max(times)
    duration = (last - first) / speed if speed > 0 else 0.0
    shift = now + duration - last
    for record, at in zip(records, times, strict=True):
        record["created_at"] = format_time(at + shift)
    return [(at - first) / speed if speed > 0 else 0.0 for at in times]


async def feed(
    url: str,
    records: list[dict[str, Any]],
    speed: float,
    token: str | None = None,
) -> FeedResult:
    """Send ``records`` (sorted by time) at ``speed`` times real time; 0: as fast as accepted."""
    offsets = shift_to_now(records, speed, time.time())
    headers = {"Content-Type": "application/x-ndjson"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    result = FeedResult()
    started = time.monotonic()
    async with aiohttp.ClientSession(headers=headers) as session:
        for batch in _batches(records, offsets, started):
            await _wait_until(batch.due)
            await _post(session, url, batch.records, result)
    result.seconds = time.monotonic() - started
    return result


@dataclass
class _Batch:
    due: float  # monotonic time to send it
    records: list[dict[str, Any]]


def _batches(
    records: list[dict[str, Any]], offsets: list[float], started: float
) -> Iterable[_Batch]:
    batch: list[dict[str, Any]] = []
    due = started
    for record, offset in zip(records, offsets, strict=True):
        if batch and (len(batch) >= BATCH or started + offset - due > _MAX_GAP):
            yield _Batch(due, batch)
            batch = []
        if not batch:
            due = started + offset
        batch.append(record)
    if batch:
        yield _Batch(due, batch)


async def _wait_until(due: float) -> None:
    delay = due - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _post(
    session: aiohttp.ClientSession, url: str, records: list[dict[str, Any]], result: FeedResult
) -> None:
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    while True:
        async with session.post(url, data=body) as response:
            if response.status == 503:
                result.refused += 1
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            answer = await response.read()
            if response.status != 202:
                raise RuntimeError(f"{url} answered {response.status}: {answer[:300]!r}")
        data = orjson.loads(answer)
        result.sent += len(records)
        result.accepted += int(data["accepted"])
        result.rejected += int(data["rejected"])
        return


def load_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.input:
        records = [
            read_record(path, n, line) for path in args.input for n, line in read_lines(path)
        ]
    else:
        records = [dict(m) for m in generate(args.seed, args.threads, args.hours)]
    if not args.keep_labels:  # live mentions carry no ground truth: do not teach the model
        for record in records:
            record.pop("label", None)
    return records


def read_record(path: str, number: int, line: bytes) -> dict[str, Any]:
    """One line of ``--input``: a JSON object with a ``created_at`` the feed can move in time.

    Anything else is an ``InputError`` naming the file and line (main() prints it, exit 2): the
    feed cannot place a record without a time. The daemon judges the rest of each record.
    """
    where = f"{path} line {number}"
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise InputError(f"{where}: not JSON") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a JSON object")
    if "created_at" not in record:
        raise InputError(f"{where}: created_at: required, the feed moves each record in time")
    try:
        parse_time(record["created_at"], "created_at")
    except InvalidMention as error:
        raise InputError(f"{where}: {error}") from None
    return record


def add_feed_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("feed", help="POST a generated or recorded stream to a daemon")
    p.add_argument("--url", default="http://127.0.0.1:8080/v1/mentions", help="ingest endpoint")
    p.add_argument("--speed", type=float, default=360.0, help="x real time; 0: as fast as taken")
    p.add_argument("--token", help="bearer token (default: $WATCHTOWER_TOKEN)")
    p.add_argument("--input", nargs="*", help=".jsonl files to send instead of a generated one")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2000, help="generated cascades")
    p.add_argument("--hours", type=float, default=6.0, help="generated stream length")
    p.add_argument("--keep-labels", action="store_true", help="send `label` fields as well")
    p.set_defaults(func=_run_feed)


def _run_feed(args: argparse.Namespace) -> int:
    records = load_records(args)
    token = args.token or os.environ.get("WATCHTOWER_TOKEN")
    try:
        result = asyncio.run(feed(args.url, records, args.speed, token))
    except (aiohttp.ClientError, RuntimeError) as exc:
        print(f"watchtower feed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during `make run`: a stop asked for, not a crash
        print("watchtower feed: stopped", file=sys.stderr)
        return 130
    rate = result.sent / result.seconds if result.seconds > 0 else 0.0
    print(
        f"fed {result.sent} mentions in {result.seconds:.1f} s ({rate:,.0f}/s): "
        f"{result.accepted} accepted, {result.rejected} rejected, {result.refused} retries"
    )
    return 0
