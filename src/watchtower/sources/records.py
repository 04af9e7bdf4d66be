"""Bodies of records (one JSON object, a JSON array, or NDJSON) into mentions and rejections.

Shared by the HTTP and MQTT sources, pure (no I/O), so both refuse the same records for the same
reasons. A rejection keeps its index in the body and its raw text for the dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import orjson

from watchtower.errors import InvalidMention
from watchtower.mention import Mention, decode, from_dict

BodyKind = Literal["json", "ndjson", "auto"]


class BodyError(ValueError):
    """The body as a whole is unreadable (not JSON, not a record or a list of records)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    error: InvalidMention
    raw: bytes

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.error.field, "error": self.error.reason}


@dataclass(slots=True)
class Decoded:
    mentions: list[Mention] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.mentions) + len(self.rejected)


def decode_body(body: bytes, kind: BodyKind, max_text_chars: int) -> Decoded:
    """Every record of ``body``; raises BodyError when the body itself cannot be read.

    ``auto`` (MQTT payloads carry no content type): JSON first, then NDJSON when the body has
    several lines, so a one-line broken record is a rejection, not a bad body. A body that
    breaks the decoder itself (a bug, or input nobody foresaw) is refused the same ways, with
    the error's text: one payload must never stop a source that thousands more wait behind.
    """
    try:
        return _decode_body(body, kind, max_text_chars)
    except BodyError:
        raise
    except Exception as exc:  # see above: the reason names the exception
        error = _unforeseen(exc)
        if kind == "auto":
            return _one_bad(body, error)
        raise BodyError(error.reason) from exc


def _decode_body(body: bytes, kind: BodyKind, max_text_chars: int) -> Decoded:
    if kind == "ndjson":
        return _ndjson(body, max_text_chars)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if kind == "auto" and b"\n" in body.strip():
            return _ndjson(body, max_text_chars)
        if kind == "auto":
            return _one_bad(body, InvalidMention("(record)", f"not JSON: {exc}"))
        raise BodyError(f"not JSON: {exc}") from None
    if isinstance(data, list):
        return _records(data, max_text_chars)
    if isinstance(data, dict):
        return _records([data], max_text_chars)
    if kind == "auto":
        return _one_bad(body, InvalidMention("(record)", "expected a JSON object or array"))
    raise BodyError("expected a JSON object or an array of objects")


def _records(items: list[object], max_text_chars: int) -> Decoded:
    out = Decoded()
    for index, item in enumerate(items):
        try:
            out.mentions.append(from_dict(item, max_text_chars))
        except InvalidMention as error:
            out.rejected.append(Rejection(index, error, _raw(item)))
        except Exception as exc:  # one record's, not the body's: see _unforeseen
            out.rejected.append(Rejection(index, _unforeseen(exc), _raw(item)))
    return out


def _unforeseen(exc: Exception) -> InvalidMention:
    """What breaks the decoder itself (a bug, or input nobody foresaw), as a rejection naming
    the exception. Caught per record too, so the good records of the body are still taken."""
    return InvalidMention("(record)", f"cannot be decoded: {type(exc).__name__}: {exc}"[:300])


def _raw(item: object) -> bytes:
    """The record as JSON for the dead letter. orjson reads 1024 levels of nesting but writes
    255: a record nested deeper than that is kept as a note, not re-encoded."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        return b'"(a record nested too deeply to keep)"'


def _ndjson(body: bytes, max_text_chars: int) -> Decoded:
    out = Decoded()
    index = 0
    for line in body.splitlines():
        if not line.strip():
            continue  # blank lines are separators, not records
        try:
            out.mentions.append(decode(line, max_text_chars))
        except InvalidMention as error:
            out.rejected.append(Rejection(index, error, line))
        except Exception as exc:  # one record's, not the body's: see _unforeseen
            out.rejected.append(Rejection(index, _unforeseen(exc), line))
        index += 1
    return out


def _one_bad(body: bytes, error: InvalidMention) -> Decoded:
    return Decoded(rejected=[Rejection(0, error, body)])


def refuse_future(decoded: Decoded, not_after: float) -> None:
    """Move mentions stamped after ``not_after`` to the rejections (live sources only).

    A refused mention keeps its index in the body (not its place among the accepted ones) and,
    for the dead letter, the mention as decoded: the raw record is not kept that long.
    """
    kept = []
    earlier: list[int] | None = None  # the indices rejected by the decoder, in body order
    for position, mention in enumerate(decoded.mentions):
        if mention.created_at <= not_after:
            kept.append(mention)
            continue
        if earlier is None:
            earlier = [r.index for r in decoded.rejected]
        ahead = mention.created_at - not_after
        skew = "beyond the accepted clock skew (input.max_future)"  # the setting to look at
        error = InvalidMention("created_at", f"{ahead:.0f} s {skew}")
        index = _body_index(position, earlier)
        decoded.rejected.append(Rejection(index, error, orjson.dumps(mention)))
    if len(kept) < len(decoded.mentions):
        decoded.mentions = kept
        decoded.rejected.sort(key=lambda r: r.index)


def _body_index(position: int, rejected: list[int]) -> int:
    """The index in the body of the accepted mention at ``position``, given the indices of the
    records rejected before it (ascending)."""
    index = position
    for earlier in rejected:
        if earlier > index:
            break
        index += 1
    return index
