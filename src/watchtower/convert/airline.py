"""Twitter US Airline Sentiment (Tweets.csv, Feb 2015) to mentions.

Every tweet is its own one-mention thread (the data has no reply ids); the label is the
crowd-sourced `airline_sentiment`, the brand the airline ("US Airways" -> "us_airways").
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from watchtower.convert._records import Record, author_record, mention_record, open_text
from watchtower.errors import InputError

FILE_NAME = "Tweets.csv"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"  # "2015-02-24 11:35:52 -0800"
_COLUMNS = ("tweet_id", "airline_sentiment", "airline", "name", "text", "tweet_created")


def convert(path: Path) -> Iterator[Record]:
    """Mentions of Tweets.csv (or of the folder holding it), sorted by created_at."""
    records, _ = read(path)
    return iter(records)


def read(path: Path) -> tuple[list[Record], int]:
    """The mentions of ``convert``, and how many rows repeated an earlier row's tweet id.

    A tweet id seen twice keeps its first row (the data repeats some ids with other labels).
    A file that is not this dataset's is an ``InputError`` naming what it lacks.
    """
    if path.is_dir():
        if not (path / FILE_NAME).exists():
            raise InputError(f"{path}: no {FILE_NAME} in it, not the airline dataset's folder")
        path = path / FILE_NAME
    timed: list[tuple[float, Record]] = []
    seen: set[str] = set()
    repeated = 0
    with open_text(path) as handle:
        rows = csv.DictReader(handle)
        missing = [name for name in _COLUMNS if name not in (rows.fieldnames or ())]
        if missing:
            what = f"not {FILE_NAME} of Twitter US Airline Sentiment"
            raise InputError(f"{path}: {what}: no column {', '.join(missing)}")
        for row in rows:
            tweet_id = row["tweet_id"]
            if tweet_id in seen:
                repeated += 1
                continue
            seen.add(tweet_id)
            epoch = _epoch(row["tweet_created"], f"{path} line {rows.line_num}")
            timed.append((epoch, _mention(row, epoch)))
    timed.sort(key=lambda item: item[0])  # stable: ties keep file order
    return [record for _, record in timed], repeated


def _epoch(text: str, where: str) -> float:
    try:
        return datetime.strptime(text, _TIME_FORMAT).timestamp()
    except ValueError:
        like = "2015-02-24 11:35:52 -0800"
        raise InputError(f"{where}: tweet_created {text!r} is not a time like {like!r}") from None


def brand_of(airline: str) -> str:
    """Brand key of an airline name: lower case, spaces to underscores."""
    return airline.strip().lower().replace(" ", "_")


def _mention(row: dict[str, str], epoch: float) -> Record:
    handle = row["name"]
    tweet_id = row["tweet_id"]
    return mention_record(
        mention_id=f"tw:{tweet_id}",
        platform="twitter",
        created_at=epoch,
        text=row["text"],
        author=author_record(handle, handle),
        brand=brand_of(row["airline"]),
        url=f"https://twitter.com/{handle}/status/{tweet_id}",
        label=row["airline_sentiment"] or None,
    )
