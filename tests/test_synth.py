"""The synthetic stream: reproducible bytes, sorted, well-formed, heavy-tailed, storms."""

from __future__ import annotations

import argparse
import gzip
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from watchtower.convert._records import write_jsonl
from watchtower.mention import from_dict
from watchtower.synth import DEFAULT_START, add_generate_command, generate

Record = dict[str, object]
KEYS = [
    "id",
    "platform",
    "created_at",
    "text",
    "author",
    "thread_id",
    "reply_to",
    "repost_of",
    "quote_of",
    "brand",
    "url",
    "lang",
    "label",
]
LINKS = ("reply_to", "repost_of", "quote_of")


@pytest.fixture(scope="module")
def demo() -> list[Record]:
    """The documented demo scale: 2000 threads over 6 hours."""
    return list(generate(1, 2000, 6))


def _parent(record: Record) -> str | None:
    for name in LINKS:
        value = record[name]
        if value is not None:
            return str(value)
    return None


def _thread_sizes(records: list[Record]) -> Counter[str]:
    root_of: dict[str, str] = {}
    for record in records:
        parent = _parent(record)
        root_of[str(record["id"])] = root_of[parent] if parent else str(record["id"])
    return Counter(root_of.values())


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_generate_command(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    paths = [tmp_path / name for name in ("a.jsonl.gz", "b.jsonl.gz", "c.jsonl.gz")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        assert _run_cli(["generate", "--seed", str(seed), "--threads", "300", "-o", str(path)]) == 0
    first, again, other = (path.read_bytes() for path in paths)
    assert first == again
    assert first != other
    lines = gzip.decompress(first).splitlines()
    assert len(lines) > 300
    assert orjson.loads(lines[0])["created_at"].startswith("2026-01-05T")


def test_records_have_the_format_and_decode(demo: list[Record]) -> None:
    for record in demo:
        assert list(record) == KEYS
        author = record["author"]
        assert isinstance(author, dict)
        assert list(author) == ["id", "handle", "followers", "verified"]
        assert isinstance(author["followers"], int | None)
        assert isinstance(author["verified"], bool)
        assert record["label"] in ("negative", "neutral", "positive")
        assert record["platform"] in ("twitter", "mastodon", "reddit", "bluesky")
        assert str(record["url"]).startswith(f"https://example.social/{record['platform']}/")
        assert from_dict(record, 5000).id == record["id"]  # the engine's own decoder accepts it


def test_sorted_by_time_within_the_window(demo: list[Record]) -> None:
    stamps = [str(record["created_at"]) for record in demo]
    assert stamps == sorted(stamps)
    assert all(len(stamp) == 24 and stamp.endswith("Z") for stamp in stamps)
    first, last = (datetime.fromisoformat(stamps[index]).timestamp() for index in (0, -1))
    assert DEFAULT_START <= first < last < DEFAULT_START + 6 * 3600


def test_links_point_to_earlier_mentions(demo: list[Record]) -> None:
    seen: dict[str, Record] = {}
    for record in demo:
        for name in (*LINKS, "thread_id"):
            target = record[name]
            assert target is None or target in seen, (name, record)
        thread_id = record["thread_id"]
        if thread_id is not None:
            assert _parent(seen[str(thread_id)]) is None  # a thread id names a root
        assert record["id"] not in seen
        seen[str(record["id"])] = record


def test_reposts_carry_the_original_text(demo: list[Record]) -> None:
    by_id = {record["id"]: record for record in demo}
    reposts = [record for record in demo if record["repost_of"] is not None]
    assert len(reposts) > 1000
    for repost in reposts:
        original = by_id[repost["repost_of"]]
        assert original["repost_of"] is None  # reposting a repost reposts the original
        assert repost["label"] == original["label"]
        if repost["platform"] == "twitter":
            author = original["author"]
            assert isinstance(author, dict)
            assert repost["text"] == f"RT @{author['handle']}: {original['text']}"
        else:
            assert repost["text"] == original["text"]


def test_thread_ids_on_some_children_only(demo: list[Record]) -> None:
    children = [record for record in demo if _parent(record) is not None]
    with_thread = sum(1 for record in children if record["thread_id"] is not None)
    assert 0.1 * len(children) < with_thread < 0.6 * len(children)


def test_sizes_are_heavy_tailed(demo: list[Record]) -> None:
    assert 10_000 <= len(demo) <= 60_000
    sizes = sorted(_thread_sizes(demo).values())
    assert sum(1 for size in sizes if size <= 5) >= 0.85 * len(sizes)
    assert sizes[-1] >= 1000
    assert sum(1 for size in sizes if size >= 100) >= 5


def test_big_threads_mostly_but_not_only_complaints(demo: list[Record]) -> None:
    labels = {record["id"]: record["label"] for record in demo}
    big = [root for root, size in _thread_sizes(demo).items() if size >= 100]
    moods = Counter(labels[root] for root in big)
    assert moods["negative"] > len(big) / 2
    assert moods["negative"] < len(big)


def test_outage_floods_one_brand_with_small_threads() -> None:
    outage_at = DEFAULT_START + 2 * 3600
    records = list(generate(3, 1000, 4, outage_at=outage_at, outage_brand="shopfast"))
    hours = Counter(
        str(record["created_at"])[11:13]
        for record in records
        if record["brand"] == "shopfast" and _parent(record) is None
    )
    usual = (hours["00"] + hours["01"] + hours["03"]) / 3
    assert hours["02"] > 5 * usual
    quiet = list(generate(3, 1000, 4))
    assert len(records) > len(quiet)


def test_cli_outage_hours_after_start_and_bad_time(tmp_path: Path) -> None:
    out = tmp_path / "storm.jsonl"
    argv = ["generate", "--threads", "50", "--hours", "2", "--outage-at", "1", "-o", str(out)]
    assert _run_cli(argv) == 0
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    hours = Counter(
        r["created_at"][11:13] for r in records if r["brand"] == "united" and _parent(r) is None
    )
    assert hours["01"] >= 150  # the storm's floor, however small the usual rate
    assert hours["00"] < 60
    with pytest.raises(SystemExit):
        _run_cli(["generate", "--start", "2026-01-05T00:00:00"])  # no zone
    assert _run_cli(["generate", "--outage-brand", "nobody", "-o", str(out)]) == 2


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="hours"):
        generate(1, 10, 0)
    with pytest.raises(ValueError, match="outage"):
        generate(1, 10, 1, outage_at=DEFAULT_START, outage_brand="nobody")


def test_write_jsonl_counts_and_round_trips(tmp_path: Path) -> None:
    records = list(generate(9, 20, 1, chatter=5))
    path = tmp_path / "x.jsonl"
    assert write_jsonl(records, path) == len(records)
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == records
