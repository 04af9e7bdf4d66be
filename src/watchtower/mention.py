"""A mention, and the decoder that turns one JSON record into one or names what is wrong.

Unknown fields are dropped (kept out of the engine), wrong types are refused with the field
named, oversized texts are refused rather than truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from watchtower.errors import InvalidMention

LABELS = ("negative", "neutral", "positive")
_LINK_FIELDS = ("thread_id", "reply_to", "repost_of", "quote_of")
_TEXT_FIELDS = ("platform", "brand", "url", "lang")


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
    for name in (*_LINK_FIELDS, *_TEXT_FIELDS):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidMention(name, _expected("a string or null", value))
            setattr(mention, name, value)
    return mention


def parse_time(value: object, name: str) -> float:
    """RFC 3339 with a zone, or epoch seconds as a number, to epoch seconds."""
    if isinstance(value, bool):
        raise InvalidMention(name, _expected("RFC 3339 time or epoch seconds", value))
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise InvalidMention(name, _expected("RFC 3339 time or epoch seconds", value))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMention(name, f"unparseable time {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidMention(name, f"time {value!r} has no zone (add Z or +00:00)")
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    """Event time as RFC 3339 UTC with milliseconds, the form every output uses."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _required_id(data: dict[str, object]) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not value:
        raise InvalidMention("id", _expected("a non-empty string", value))
    return value


def _author(value: object) -> Author | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMention("author", _expected("an object or null", value))
    author = Author()
    for name in ("id", "handle"):
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            raise InvalidMention(f"author.{name}", _expected("a string or null", item))
        setattr(author, name, item)
    followers = value.get("followers")
    if followers is not None:
        if isinstance(followers, bool) or not isinstance(followers, int) or followers < 0:
            raise InvalidMention("author.followers", _expected("a whole number >= 0", followers))
        author.followers = followers
    verified = value.get("verified", False)
    if not isinstance(verified, bool):
        raise InvalidMention("author.verified", _expected("true or false", verified))
    author.verified = verified
    return author


def _label(value: object) -> str | None:
    if value is None or value in LABELS:
        return value
    raise InvalidMention("label", _expected("negative, neutral, positive or null", value))


def _expected(what: str, got: object) -> str:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"expected {what}, got {shown}"
