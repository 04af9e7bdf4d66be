"""Customer Support on Twitter (Kaggle "twcs", Oct-Nov 2017) to mentions.

Customers and brand accounts in reply threads. Only `reply_to` links a tweet to its thread
(no thread_id), so replaying this exercises thread resolution through reply chains. The brand
of a tweet is the company account of its conversation: the author itself when it is a company
(inbound=False), else the first company that answers anywhere in the thread, else a company
the thread's first tweet @-mentions.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from watchtower.convert._records import Record, author_record, mention_record, open_text
from watchtower.errors import InputError

_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Tue Oct 31 22:10:47 +0000 2017"
_COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
_MENTIONED = re.compile(r"@(\w+)")


@dataclass(frozen=True, slots=True)
class _Tweet:
    tweet_id: str
    author_id: str
    inbound: bool
    epoch: float
    text: str
    parent_id: str | None


def convert(path: Path) -> Iterator[Record]:
    """Mentions of one twcs CSV file, or of every *.csv in a folder, sorted by created_at."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    tweets: dict[str, _Tweet] = {}
    for file in files:
        for tweet in read_tweets(file):
            tweets.setdefault(tweet.tweet_id, tweet)
    brands = _thread_brands(tweets)
    ordered = sorted(tweets.values(), key=lambda tweet: tweet.epoch)
    return (_mention(tweet, brands.get(tweet.tweet_id)) for tweet in ordered)


def read_tweets(path: Path) -> Iterator[_Tweet]:
    """Rows of a twcs CSV (Kaggle's layout, or a pandas re-save with a leading index column).

    A file that is not one (another dataset's columns, a time in another format) is an
    ``InputError`` naming the file and the line.
    """
    with open_text(path) as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        offset = header.index("tweet_id") if "tweet_id" in header else 0
        if tuple(header[offset:]) != _COLUMNS:
            raise InputError(f"{path}: not a twcs CSV: its columns are not {', '.join(_COLUMNS)}")
        width = offset + len(_COLUMNS)
        for row in _repair_split_rows(rows, width):
            fields = dict(zip(_COLUMNS, row[offset:], strict=True))
            try:
                tweet = _tweet(fields)
            except ValueError as exc:  # an unparseable time or id
                raise InputError(f"{path} line {rows.line_num}: not a twcs row: {exc}") from None
            yield tweet


def _repair_split_rows(rows: Iterable[list[str]], width: int) -> Iterator[list[str]]:
    """Re-join rows that an unquoted newline inside a text broke into pieces."""
    pending: list[str] | None = None
    for row in rows:
        if pending is None:
            pending = row
        else:
            pending[-1] += "\n" + (row[0] if row else "")
            pending.extend(row[1:])
        if len(pending) >= width:
            yield pending[:width]
            pending = None


def _tweet(fields: dict[str, str]) -> _Tweet:
    parent = fields["in_response_to_tweet_id"].strip()
    return _Tweet(
        tweet_id=_integer_text(fields["tweet_id"]),
        author_id=fields["author_id"],
        inbound=fields["inbound"].strip() == "True",
        epoch=datetime.strptime(fields["created_at"], _TIME_FORMAT).timestamp(),
        text=fields["text"],
        parent_id=_integer_text(parent) if parent else None,
    )


def _integer_text(value: str) -> str:
    """'3.0' (pandas wrote ids as floats) -> '3'."""
    return str(int(float(value))) if "." in value else value.strip()


def _thread_brands(tweets: dict[str, _Tweet]) -> dict[str, str]:
    """Brand of every tweet whose conversation has a known company."""
    companies = {tweet.author_id.lower() for tweet in tweets.values() if not tweet.inbound}
    root_of = {tweet_id: _root(tweet_id, tweets) for tweet_id in tweets}
    brand_of_root: dict[str, str] = {}
    for tweet in sorted(tweets.values(), key=lambda tweet: tweet.epoch):
        if not tweet.inbound:
            brand_of_root.setdefault(root_of[tweet.tweet_id], tweet.author_id.lower())
    for root_id in set(root_of.values()) - brand_of_root.keys():
        root = tweets.get(root_id)
        named = _MENTIONED.findall(root.text) if root else []
        brand = next((name.lower() for name in named if name.lower() in companies), None)
        if brand is not None:
            brand_of_root[root_id] = brand
    result: dict[str, str] = {}
    for tweet_id, root_id in root_of.items():
        tweet = tweets[tweet_id]
        brand = tweet.author_id.lower() if not tweet.inbound else brand_of_root.get(root_id)
        if brand is not None:
            result[tweet_id] = brand
    return result


def _root(tweet_id: str, tweets: dict[str, _Tweet]) -> str:
    """The earliest reachable ancestor; a parent outside the data ends the walk there."""
    seen = {tweet_id}
    current = tweets[tweet_id]
    while current.parent_id is not None and current.parent_id in tweets:
        if current.parent_id in seen:  # a cycle in broken data: stop where it closes
            break
        seen.add(current.parent_id)
        current = tweets[current.parent_id]
    return current.tweet_id


def _mention(tweet: _Tweet, brand: str | None) -> Record:
    return mention_record(
        mention_id=f"tw:{tweet.tweet_id}",
        platform="twitter",
        created_at=tweet.epoch,
        text=tweet.text,
        author=author_record(tweet.author_id, tweet.author_id),
        reply_to=f"tw:{tweet.parent_id}" if tweet.parent_id else None,
        brand=brand,
    )
