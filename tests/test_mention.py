"""Decoding: good records, and bad ones refused with the field named."""

from __future__ import annotations

import pytest

from watchtower.errors import InvalidMention
from watchtower.mention import decode, format_time, parse_time

GOOD = (
    b'{"id": "t:123", "platform": "twitter", "created_at": "2026-01-05T10:00:00.000Z",'
    b' "text": "@airline lost my bag again", "author": {"id": "u1", "handle": "ann",'
    b' "followers": 250, "verified": false}, "thread_id": "t:100", "reply_to": null,'
    b' "repost_of": null, "quote_of": null, "brand": "united", "url": "https://x/1",'
    b' "lang": "en", "label": "negative", "unknown_field": [1, 2]}'
)


def test_decodes_every_field() -> None:
    m = decode(GOOD, 4000)
    assert m.id == "t:123"
    assert m.created_at == 1767607200.0
    assert m.text == "@airline lost my bag again"
    assert m.author is not None
    assert (m.author.id, m.author.handle, m.author.followers) == ("u1", "ann", 250)
    assert m.thread_id == "t:100"
    assert (m.brand, m.platform, m.url, m.lang, m.label) == (
        "united",
        "twitter",
        "https://x/1",
        "en",
        "negative",
    )
    assert not hasattr(m, "unknown_field")


def test_minimal_record_with_epoch_time() -> None:
    m = decode(b'{"id": "a", "created_at": 1700000000.5, "text": ""}', 10)
    assert m.created_at == 1700000000.5
    assert m.author is None
    assert m.followers == 0
    assert m.parent is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "(record)"),
        (b"[1, 2]", "(record)"),
        (b'{"created_at": 1, "text": ""}', "id"),
        (b'{"id": 5, "created_at": 1, "text": ""}', "id"),
        (b'{"id": "a", "text": ""}', "created_at"),
        (b'{"id": "a", "created_at": "yesterday", "text": ""}', "created_at"),
        (b'{"id": "a", "created_at": "2026-01-05T10:00:00", "text": ""}', "created_at"),
        (b'{"id": "a", "created_at": true, "text": ""}', "created_at"),
        (b'{"id": "a", "created_at": 1}', "text"),
        (
            b'{"id": "a", "created_at": 1, "text": "x", "author": {"followers": "many"}}',
            "author.followers",
        ),
        (
            b'{"id": "a", "created_at": 1, "text": "x", "author": {"followers": -1}}',
            "author.followers",
        ),
        (b'{"id": "a", "created_at": 1, "text": "x", "author": "ann"}', "author"),
        (b'{"id": "a", "created_at": 1, "text": "x", "reply_to": 7}', "reply_to"),
        (b'{"id": "a", "created_at": 1, "text": "x", "label": "angry"}', "label"),
    ],
)
def test_bad_records_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidMention) as caught:
        decode(raw, 4000)
    assert caught.value.field == field


def test_oversized_text_is_refused() -> None:
    with pytest.raises(InvalidMention, match="11 characters, more than 10"):
        decode(b'{"id": "a", "created_at": 1, "text": "01234567890"}', 10)


def test_time_round_trip_with_zones() -> None:
    assert parse_time("2026-01-05T11:00:00+01:00", "t") == parse_time("2026-01-05T10:00:00Z", "t")
    assert format_time(1767607200.25) == "2026-01-05T10:00:00.250Z"
