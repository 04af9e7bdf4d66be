"""Tiny hand-made streams for engine tests: a burst thread among background chatter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from watchtower.mention import Mention, from_dict

T0 = 1_767_600_000.0  # 2026-01-05T08:00:00Z


def mention(
    mid: str, at: float, text: str, *, parent: str | None = None, followers: int = 100, **more: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": mid,
        "created_at": T0 + at,
        "text": text,
        "author": {"id": f"a-{mid}", "handle": f"h{mid}", "followers": followers},
        "brand": "acme",
        "platform": "twitter",
        "url": f"https://example.social/{mid}",
    }
    if parent is not None:
        record["repost_of"] = parent
    record.update(more)
    return record


def burst(root: str, start: float, size: int, spacing: float, text: str) -> list[dict[str, Any]]:
    """A root and ``size - 1`` reposts ``spacing`` seconds apart."""
    out = [mention(root, start, text, followers=50_000)]
    out += [
        mention(f"{root}-{i}", start + i * spacing, f"RT @h{root}: {text}", parent=root)
        for i in range(1, size)
    ]
    return out


def chatter(
    n: int, every: float, text: str = "what time does the store open"
) -> list[dict[str, Any]]:
    return [mention(f"bg{i}", i * every, text) for i in range(n)]


def stream(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((m for part in parts for m in part), key=lambda m: (m["created_at"], m["id"]))


def to_jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def with_threads(records: Iterable[dict[str, Any]], max_chars: int = 4000) -> list[Mention]:
    """Mentions that each name their thread, the root their reply chain leads to: however a
    test splits them among workers, each resolves to the thread it would in one engine."""
    mentions: list[Mention] = []
    roots: dict[str, str] = {}
    for record in records:
        m = from_dict(record, max_chars)
        parent = m.parent
        m.thread_id = roots[m.id] = m.thread_id or (roots.get(parent, parent) if parent else m.id)
        mentions.append(m)
    return mentions
