"""A mention, and the decoder that turns one JSON record into one or names what is wrong.

Unknown fields are dropped (kept out of the engine), wrong types are refused with the field
named, oversized values are refused rather than truncated. Whatever is accepted here, the engine
and every output can carry: times an alert can print, follower counts any JSON reader gets
exactly, ids short enough for keys and chat titles. An optional string that is empty counts as
absent; a blank id (only spaces) is refused, as it would join unrelated mentions in one thread.

Strings are taken as valid Unicode: orjson, the parser of every source, refuses lone surrogates
and invalid UTF-8, so no field is scanned for them here (a caller building records some other
way must do the same).
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

import orjson

from watchtower.errors import InvalidMention

LABELS = ("negative", "neutral", "positive")
MAX_FIELD_CHARS = 200  # ids, handle, brand, platform, lang (the silences API's brand limit)
MAX_URL_CHARS = 4096
MAX_FOLLOWERS = 10**12  # more than anyone has; exact in every JSON reader (below 2**53)
# Event times: 1970-01-01T00:00:00Z to before 2100-01-01T00:00:00Z. Every output can print them,
# and epoch milliseconds (1.7e12) are refused instead of taken for a date 55,000 years ahead.
MIN_TIME = 0
MAX_TIME = 4_102_444_800
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60
_TIME_RANGE = "a time from 1970-01-01T00:00:00Z to before 2100-01-01T00:00:00Z"
_LINK_FIELDS = ("thread_id", "reply_to", "repost_of", "quote_of")  # ids: never blank
_TEXT_FIELDS = (
    ("platform", MAX_FIELD_CHARS),
    ("brand", MAX_FIELD_CHARS),
    ("url", MAX_URL_CHARS),
    ("lang", MAX_FIELD_CHARS),
)


@dataclass(slots=True)
class Author:
    id: str | None = None
    handle: str | None = None
    followers: int | None = None
    verified: bool = False


@dataclass(slots=True)
class Mention:
    id: str
    created_at: float  # epoch seconds, event time
    text: str
    platform: str | None = None
    author: Author | None = None
    thread_id: str | None = None
    reply_to: str | None = None
    repost_of: str | None = None
    quote_of: str | None = None
    brand: str | None = None
    url: str | None = None
    lang: str | None = None
    label: str | None = None  # ground truth for replays: learned from after scoring only

    @property
    def parent(self) -> str | None:
        """The mention this one answers, reposts or quotes, if any."""
        return self.reply_to or self.repost_of or self.quote_of

    @property
    def followers(self) -> int:
        if self.author is None or self.author.followers is None:
            return 0
        return self.author.followers


def decode(raw: bytes | str, max_text_chars: int) -> Mention:
    """Decode one JSON record; raises InvalidMention naming the field."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMention("(record)", f"not JSON: {exc}") from None
    return from_dict(data, max_text_chars)


def from_dict(data: object, max_text_chars: int) -> Mention:
    """Validate an already parsed record (HTTP and MQTT bodies arrive parsed)."""
    if not isinstance(data, dict):
        raise InvalidMention("(record)", "expected a JSON object")
    text = data.get("text")
    if not isinstance(text, str):
        raise InvalidMention("text", _expected("a string", text))
    if len(text) > max_text_chars:
        raise InvalidMention("text", f"{len(text)} characters, more than {max_text_chars}")
    mention = Mention(
        id=_required_id(data),
        created_at=parse_time(data.get("created_at"), "created_at"),
        text=text,
        author=_author(data.get("author")),
        label=_label(data.get("label")),
    )
    # The hot path: one test per field when it is good; _refuse says what is wrong otherwise.
    for name in _LINK_FIELDS:
        value = data.get(name)
        if value is not None and value != "":
            if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS or value.isspace():
                _refuse(name, value, MAX_FIELD_CHARS)
            setattr(mention, name, value)
    for name, limit in _TEXT_FIELDS:
        value = data.get(name)
        if value is not None and value != "":
            if not isinstance(value, str) or len(value) > limit:
                _refuse(name, value, limit)
            setattr(mention, name, value)
    return mention


def parse_time(value: object, name: str) -> float:
    """RFC 3339 with a zone, or epoch seconds as a number, to epoch seconds (MIN_TIME to
    MAX_TIME: a number is checked before it is converted, so NaN and huge ints are refused)."""
    if isinstance(value, float):
        seconds = value
    elif isinstance(value, str):
        seconds = _iso_seconds(value, name)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise InvalidMention(name, _expected("RFC 3339 time or epoch seconds", value))
    if MIN_TIME <= seconds < MAX_TIME:  # False for NaN
        return float(seconds)
    raise InvalidMention(name, _expected(f"{_TIME_RANGE} (epoch seconds, not milliseconds)", value))


def _iso_seconds(value: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMention(name, f"unparseable time {_shown(value)}") from None
    if parsed.tzinfo is None:
        raise InvalidMention(name, f"time {_shown(value)} has no zone (add Z or +00:00)")
    return parsed.timestamp()  # in range or not: the caller checks


def format_time(epoch: float) -> str:
    """Event time as RFC 3339 UTC with milliseconds, the form every output uses."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _required_id(data: dict[str, object]) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_CHARS or value.isspace():
        _refuse("id", value, MAX_FIELD_CHARS, "a non-empty string")
    return value


def _refuse(name: str, value: object, limit: int, what: str = "a string or null") -> NoReturn:
    """Why a string field is refused: its type, its length or its blankness."""
    if not isinstance(value, str) or not value:
        raise InvalidMention(name, _expected(what, value))
    if len(value) > limit:
        raise InvalidMention(name, f"{len(value)} characters, more than {limit}")
    raise InvalidMention(name, _expected("an id with a non-space character", value))


def _author(value: object) -> Author | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMention("author", _expected("an object or null", value))
    author = Author()
    item = value.get("id")
    if item is not None and item != "":
        if not isinstance(item, str) or len(item) > MAX_FIELD_CHARS or item.isspace():
            _refuse("author.id", item, MAX_FIELD_CHARS)
        author.id = item
    item = value.get("handle")
    if item is not None and item != "":
        if not isinstance(item, str) or len(item) > MAX_FIELD_CHARS:
            _refuse("author.handle", item, MAX_FIELD_CHARS)
        author.handle = item
    followers = value.get("followers")
    if followers is not None:
        if (
            isinstance(followers, bool)
            or not isinstance(followers, int)
            or not 0 <= followers <= MAX_FOLLOWERS
        ):
            wanted = f"a whole number from 0 to {MAX_FOLLOWERS:_}"
            raise InvalidMention("author.followers", _expected(wanted, followers))
        author.followers = followers
    verified = value.get("verified")
    if verified is not None:  # null: not known to be verified, as when absent
        if not isinstance(verified, bool):
            raise InvalidMention("author.verified", _expected("true, false or null", verified))
        author.verified = verified
    return author


def _label(value: object) -> str | None:
    if value is None or value in LABELS:
        return value
    raise InvalidMention("label", _expected("negative, neutral, positive or null", value))


def _expected(what: str, got: object) -> str:
    return f"expected {what}, got {_shown(got)}"


def _shown(value: object) -> str:
    """A value as a reason quotes it, cut short (a reason is read, and kept): reprlib bounds the
    work too, where repr would copy a huge string whole and fails on nesting ~1000 deep."""
    try:
        shown = _REPR.repr(value)
    except ValueError:  # an int with more digits than Python prints
        shown = "a very large number"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return shown
