"""Adversarial records: each is accepted with a precise value or refused naming its field.

House rule: bad input gets a clear error or a dead-letter entry and a metric, never a crash or
silent loss. A record given as a dict goes through ``from_dict`` (the parsed HTTP and MQTT path)
and, when JSON can carry it exactly, also through ``decode`` of its JSON (files, NDJSON): both
must agree. A record given as bytes is raw JSON that orjson alone can express (duplicate keys,
literals, escapes, bad UTF-8, nesting deeper than orjson writes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from watchtower.alerting.message import render
from watchtower.cli import main
from watchtower.config import Config, MomentumConfig
from watchtower.deadletter import DeadLetter
from watchtower.errors import InvalidMention
from watchtower.mention import MAX_TIME, Mention, decode, from_dict
from watchtower.sources import records
from watchtower.sources.records import decode_body, refuse_future
from watchtower.wiring import build_engine

from streams import T0, burst, chatter, to_jsonl

MAX_CHARS = 4000
NOON = 1_767_607_200.0  # 2026-01-05T10:00:00Z
BASE: dict[str, Any] = {"id": "t:1", "created_at": "2026-01-05T10:00:00Z", "text": "hi"}
ANGRY = "@acme you lost my bag again, worst airline ever, furious and disgusted"


def rec(**fields: Any) -> dict[str, Any]:
    """The base record with ``fields`` set (``None`` included: it is sent as null)."""
    return {**BASE, **fields}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k != name}


def raw(**fields: bytes) -> bytes:
    """The base record as JSON with raw JSON text for ``fields``."""
    parts = [f'"{k}": '.encode() + orjson.dumps(v) for k, v in BASE.items() if k not in fields]
    parts += [f'"{k}": '.encode() + v for k, v in fields.items()]
    return b"{" + b", ".join(parts) + b"}"


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = b"[" * 1000 + b"]" * 1000  # orjson reads 1024 levels; repr gives up near 1000


def outcomes(record: dict[str, Any] | bytes) -> list[Mention | InvalidMention]:
    """What every path that can carry ``record`` makes of it."""
    if isinstance(record, bytes):
        return [_outcome(decode, record)]
    results = [_outcome(from_dict, record)]
    try:
        wire = orjson.dumps(record)
    except orjson.JSONEncodeError:
        return results  # surrogates, ints past 64 bits: JSON cannot carry them
    if orjson.loads(wire) == record:  # NaN and inf would arrive as null: another record
        results.append(_outcome(decode, wire))
    return results


def _outcome(step: Any, record: object) -> Mention | InvalidMention:
    try:
        mention: Mention = step(record, MAX_CHARS)
    except InvalidMention as error:
        return error
    return mention


def value_at(mention: Mention, path: str) -> object:
    value: object = mention
    for name in path.split("."):
        value = getattr(value, name)
    return value


ACCEPTED = [
    # created_at: epoch seconds or RFC 3339 with a zone, 1970 up to 2100
    ("time-epoch-int", rec(created_at=1_767_607_200), "created_at", NOON),
    ("time-epoch-float", rec(created_at=1_767_607_200.25), "created_at", NOON + 0.25),
    ("time-epoch-zero", rec(created_at=0), "created_at", 0.0),
    ("time-negative-zero", rec(created_at=-0.0), "created_at", 0.0),
    ("time-odd-offset", rec(created_at="2026-01-05T10:00:00+23:59"), "created_at", 1_767_520_860.0),
    (
        "time-minus-half-hour",
        rec(created_at="2026-01-05T10:00:00-00:30"),
        "created_at",
        NOON + 1800,
    ),
    (
        "time-seconds-offset",
        rec(created_at="2026-01-05T10:00:00+00:00:30"),
        "created_at",
        NOON - 30,
    ),
    ("time-nanoseconds", rec(created_at="2026-01-05T10:00:00.000000999Z"), "created_at", NOON),
    ("time-last-second", rec(created_at="2099-12-31T23:59:59Z"), "created_at", MAX_TIME - 1.0),
    ("time-1970", rec(created_at="1970-01-01T00:00:00Z"), "created_at", 0.0),
    # id: any non-blank string up to 200 characters, kept verbatim
    ("id-redis-hash-tag", rec(id="a}b{c}"), "id", "a}b{c}"),
    ("id-url-characters", rec(id="x/y?z#w%20@1"), "id", "x/y?z#w%20@1"),
    ("id-padded", rec(id=" t:1 "), "id", " t:1 "),
    ("id-nul", rec(id="a\x00b"), "id", "a\x00b"),
    ("id-200-chars", rec(id="i" * 200), "id", "i" * 200),
    ("id-digits", rec(id="0"), "id", "0"),
    # text: any string up to max_text_chars, NUL and astral characters included
    ("text-empty", rec(text=""), "text", ""),
    ("text-nul", rec(text="a\x00b"), "text", "a\x00b"),
    ("text-at-limit", rec(text="x" * MAX_CHARS), "text", "x" * MAX_CHARS),
    ("text-astral", rec(text="\U0001f600\U0010ffff"), "text", "\U0001f600\U0010ffff"),
    ("text-surrogate-pair-escape", raw(text=b'"\\ud83d\\ude00"'), "text", "\U0001f600"),
    ("text-control-characters", rec(text="\u2028\u202e\ufeff"), "text", "\u2028\u202e\ufeff"),
    # from_dict trusts its parser (orjson refuses these: see the escapes refused below)
    ("text-lone-surrogate-python", rec(text="a\ud800"), "text", "a\ud800"),
    # author
    ("author-null", rec(author=None), "author", None),
    ("author-empty", rec(author={}), "followers", 0),
    ("followers-zero", rec(author={"followers": 0}), "author.followers", 0),
    ("followers-10e12", rec(author={"followers": 10**12}), "author.followers", 10**12),
    ("followers-null", rec(author={"followers": None}), "followers", 0),
    ("verified-null", rec(author={"verified": None}), "author.verified", False),
    ("verified-true", rec(author={"verified": True}), "author.verified", True),
    ("author-id-empty", rec(author={"id": ""}), "author.id", None),
    ("handle-empty", rec(author={"handle": ""}), "author.handle", None),
    ("author-unknown-field", rec(author={"id": "u", "bio": [1, {}]}), "author.id", "u"),
    # optional strings: empty means absent
    ("thread-id-empty", rec(thread_id=""), "thread_id", None),
    ("reply-to-empty", rec(reply_to=""), "parent", None),
    ("brand-empty", rec(brand=""), "brand", None),
    ("url-4096-chars", rec(url="u" * 4096), "url", "u" * 4096),
    ("brand-200-chars", rec(brand="b" * 200), "brand", "b" * 200),
    ("label-null", rec(label=None), "label", None),
    # the record as a whole
    ("duplicate-key-last-wins", raw(id=b'"first", "id": "second"'), "id", "second"),
    ("unknown-fields-ignored", rec(extra={"a": [1, 2]}, followers=-5), "id", "t:1"),
    ("unknown-field-deep", raw(extra=DEEP), "id", "t:1"),
]


@pytest.mark.parametrize(
    ("record", "path", "expected"),
    [pytest.param(r, p, e, id=i) for i, r, p, e in ACCEPTED],
)
def test_accepted_with_the_value(
    record: dict[str, Any] | bytes, path: str, expected: object
) -> None:
    for outcome in outcomes(record):
        assert isinstance(outcome, Mention), outcome
        assert value_at(outcome, path) == expected


REFUSED = [
    # created_at: what no post carries, what no output can print, or not a time at all
    ("time-nan", rec(created_at=float("nan")), "created_at", "got nan"),
    ("time-inf", rec(created_at=float("inf")), "created_at", "got inf"),
    ("time-minus-inf", rec(created_at=float("-inf")), "created_at", "got -inf"),
    ("time-1e400-literal", raw(created_at=b"1e400"), "(record)", "not JSON: number is infinity"),
    ("time-nan-literal", raw(created_at=b"NaN"), "(record)", "not JSON"),
    ("time-negative", rec(created_at=-1), "created_at", "from 1970-01-01T00:00:00Z"),
    ("time-2100", rec(created_at=MAX_TIME), "created_at", "before 2100-01-01T00:00:00Z"),
    ("time-milliseconds", rec(created_at=1_767_607_200_000), "created_at", "not milliseconds"),
    ("time-2-pow-70", rec(created_at=2**70), "created_at", "got 1180591620717411303424"),
    ("time-2-pow-70-literal", raw(created_at=b"1180591620717411303424"), "created_at", "e+21"),
    ("time-huge-int", rec(created_at=10**400), "created_at", "got 100000000000000000...000"),
    ("time-bool", rec(created_at=True), "created_at", "epoch seconds, got True"),
    ("time-digit-string", rec(created_at="1767607200"), "created_at", "unparseable"),
    ("time-year-1-east", rec(created_at="0001-01-01T00:00:00+01:00"), "created_at", "1970"),
    ("time-year-9999", rec(created_at="9999-12-31T23:59:59Z"), "created_at", "2100"),
    ("time-no-zone", rec(created_at="2026-01-05T10:00:00"), "created_at", "has no zone"),
    ("time-offset-24h", rec(created_at="2026-01-05T10:00:00+24:00"), "created_at", "unparseable"),
    ("time-list", rec(created_at=[NOON]), "created_at", "got [1767607200.0]"),
    ("time-object", rec(created_at={"s": 1}), "created_at", "got {'s': 1}"),
    ("time-null", rec(created_at=None), "created_at", "got None"),
    ("time-missing", without("created_at"), "created_at", "got None"),
    ("time-1mb-string", rec(created_at="9" * 1_000_000), "created_at", "unparseable time '999"),
    ("time-deep", raw(created_at=DEEP), "created_at", "got [[[[...]]]]"),
    # id
    ("id-empty", rec(id=""), "id", "expected a non-empty string, got ''"),
    ("id-blank", rec(id="   "), "id", "non-space character, got '   '"),
    ("id-blank-tab-newline", rec(id="\t\n"), "id", "non-space character"),
    ("id-201-chars", rec(id="i" * 201), "id", "201 characters, more than 200"),
    ("id-10mb", rec(id="i" * 10_000_000), "id", "10000000 characters, more than 200"),
    ("id-int", rec(id=5), "id", "got 5"),
    ("id-float", rec(id=5.0), "id", "got 5.0"),
    ("id-bool", rec(id=True), "id", "got True"),
    ("id-null", rec(id=None), "id", "got None"),
    ("id-list", rec(id=["t:1"]), "id", "got ['t:1']"),
    ("id-object", rec(id={"id": "t:1"}), "id", "got {'id': 't:1'}"),
    ("id-deep", raw(id=DEEP), "id", "got [[[[...]]]]"),
    ("id-deep-python", rec(id=nested(5000)), "id", "got [[[[...]]]]"),
    # text
    ("text-over-limit", rec(text="x" * (MAX_CHARS + 1)), "text", "4001 characters, more than 4000"),
    ("text-10mb", rec(text="x" * 10_000_000), "text", "10000000 characters, more than 4000"),
    ("text-lone-surrogate-escape", raw(text=b'"a\\ud800b"'), "(record)", "no low surrogate"),
    ("text-reversed-pair-escape", raw(text=b'"\\ude00\\ud83d"'), "(record)", "not JSON"),
    ("text-invalid-utf8", raw(text=b'"a\xffb"'), "(record)", "not JSON"),
    ("text-raw-newline", raw(text=b'"a\nb"'), "(record)", "not JSON"),
    ("text-int", rec(text=5), "text", "got 5"),
    ("text-null", rec(text=None), "text", "got None"),
    ("text-list", rec(text=["hi"]), "text", "got ['hi']"),
    ("text-deep", raw(text=DEEP), "text", "got [[[[...]]]]"),
    # author
    ("author-string", rec(author="ann"), "author", "an object or null, got 'ann'"),
    ("author-list", rec(author=[{"id": "u"}]), "author", "got [{'id': 'u'}]"),
    ("author-deep", raw(author=DEEP), "author", "got [[[[...]]]]"),
    ("author-id-int", rec(author={"id": 5}), "author.id", "got 5"),
    ("author-id-blank", rec(author={"id": " "}), "author.id", "non-space character"),
    ("author-id-201", rec(author={"id": "u" * 201}), "author.id", "201 characters"),
    ("handle-list", rec(author={"handle": ["ann"]}), "author.handle", "got ['ann']"),
    ("handle-201", rec(author={"handle": "h" * 201}), "author.handle", "201 characters"),
    ("followers-negative", rec(author={"followers": -1}), "author.followers", "got -1"),
    ("followers-float", rec(author={"followers": 1.5}), "author.followers", "got 1.5"),
    ("followers-whole-float", rec(author={"followers": 250.0}), "author.followers", "got 250.0"),
    ("followers-string", rec(author={"followers": "250"}), "author.followers", "got '250'"),
    ("followers-bool", rec(author={"followers": True}), "author.followers", "got True"),
    ("followers-over-10e12", rec(author={"followers": 10**12 + 1}), "author.followers", "0 to"),
    ("followers-2-pow-62", rec(author={"followers": 2**62}), "author.followers", "got 46116"),
    (
        "followers-2-pow-64-literal",
        raw(author=b'{"followers": 18446744073709551616}'),
        "author.followers",
        "got 1.8446744073709552e+19",
    ),
    ("followers-2-pow-70", rec(author={"followers": 2**70}), "author.followers", "got 11805"),
    ("verified-string", rec(author={"verified": "yes"}), "author.verified", "got 'yes'"),
    ("verified-int", rec(author={"verified": 1}), "author.verified", "got 1"),
    # links and other strings
    ("thread-id-blank", rec(thread_id=" "), "thread_id", "non-space character"),
    ("thread-id-int", rec(thread_id=7), "thread_id", "a string or null, got 7"),
    ("reply-to-list", rec(reply_to=["a"]), "reply_to", "got ['a']"),
    ("quote-of-object", rec(quote_of={}), "quote_of", "got {}"),
    ("repost-of-201", rec(repost_of="r" * 201), "repost_of", "201 characters"),
    ("repost-of-false", rec(repost_of=False), "repost_of", "got False"),
    ("url-4097-chars", rec(url="u" * 4097), "url", "4097 characters, more than 4096"),
    ("brand-201-chars", rec(brand="b" * 201), "brand", "201 characters, more than 200"),
    ("platform-int", rec(platform=5), "platform", "got 5"),
    ("lang-false", rec(lang=False), "lang", "got False"),
    ("label-unknown", rec(label="angry"), "label", "got 'angry'"),
    ("label-upper-case", rec(label="NEGATIVE"), "label", "got 'NEGATIVE'"),
    ("label-list", rec(label=["negative"]), "label", "got ['negative']"),
    ("label-deep", raw(label=DEEP), "label", "got [[[[...]]]]"),
    # not a record at all
    ("record-array", b"[]", "(record)", "expected a JSON object"),
    ("record-string", b'"t:1"', "(record)", "expected a JSON object"),
    ("record-null", b"null", "(record)", "expected a JSON object"),
    ("record-bom", b"\xef\xbb\xbf" + orjson.dumps(BASE), "(record)", "not JSON"),
    ("record-truncated", orjson.dumps(BASE)[:-1], "(record)", "not JSON"),
]


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [pytest.param(r, f, why, id=i) for i, r, f, why in REFUSED],
)
def test_refused_naming_the_field(record: dict[str, Any] | bytes, field: str, reason: str) -> None:
    for outcome in outcomes(record):
        assert isinstance(outcome, InvalidMention), outcome
        assert (outcome.field, reason in outcome.reason) == (field, True), outcome.reason
        assert len(outcome.reason) <= 200  # bounded: it goes back to the producer and is kept


# Downstream: what is accepted at the edges goes through the engine and every output.


async def _transitions(records_: list[dict[str, Any]]) -> list[Any]:
    # A lone thread is judged against the floor of "big": pinned, so the times below do not
    # move with the default.
    engine = build_engine(Config(momentum=MomentumConfig(big_size=100)))
    mentions = [from_dict(r, MAX_CHARS) for r in records_]
    out = []
    for i in range(0, len(mentions), 50):
        out += await engine.process(mentions[i : i + 50])
    assert engine.watermark is not None
    return out + await engine.advance(engine.watermark + 6 * 3600)


@pytest.mark.parametrize(
    ("start", "first_at", "resolved_at"),
    [
        pytest.param(0.0, "1970-01-01T00:05:30.000Z", "1970-01-01T02:20:00.000Z", id="1970"),
        pytest.param(
            MAX_TIME - 1200, "2099-12-31T23:45:30.000Z", "2100-01-01T02:00:00.000Z", id="2099"
        ),
    ],
)
async def test_threads_at_both_ends_of_time_alert_and_print(
    start: float, first_at: str, resolved_at: str
) -> None:
    records_ = burst("r1", start - T0, 120, 10, ANGRY)
    transitions = await _transitions(records_)
    assert [(t.state, t.level) for t in transitions] == [
        ("firing", "watch"),
        ("escalated", "critical"),
        ("resolved", "critical"),
    ]
    ats = [orjson.loads(t.to_json())["at"] for t in transitions]
    assert (ats[0], ats[-1]) == (first_at, resolved_at)
    assert render(transitions[-1]).title == (
        '[RESOLVED] acme: thread r1 resolved after 134 min: "@\u200bacme you lost my bag again,'
        ' worst airline ever, furious and disgusted"'
    )


async def test_extreme_accepted_values_reach_the_alert_intact() -> None:
    root = "r{1}/#@?%"
    records_ = burst(root, 600, 120, 10, ANGRY)
    records_[0]["text"] = ANGRY + " \x00 \U0001f600"
    records_[0]["author"] = {"id": "a" * 200, "handle": "h" * 200, "followers": 10**12}
    records_[0]["url"] = "https://example.social/" + "u" * 4073  # 4096 characters
    for r in records_:
        r["brand"] = "b" * 200
    transitions = await _transitions(records_)
    assert [t.state for t in transitions] == ["firing", "escalated", "resolved"]
    first = orjson.loads(transitions[0].to_json())
    assert first["thread_id"] == root
    assert first["episode_id"].startswith(root + "@")
    assert first["url"] == records_[0]["url"]
    assert first["explanation"]["max_followers"] == 10**12
    top = first["top_mentions"][0]
    assert (top["followers"], top["handle"], top["text"]) == (
        10**12,
        "h" * 200,
        records_[0]["text"],
    )
    message = render(transitions[0])
    assert message.title.startswith(f"[WATCH] {'b' * 200}: thread {root} escalating")
    assert "**Reach:** max 1000000.0M followers" in message.body
    assert (
        transitions[0]
        .summary_line()
        .startswith(f"2026-01-05T08:15:30.000Z WATCH    firing    {root} score=0.65 ")
    )


async def test_empty_thread_ids_do_not_join_one_thread() -> None:
    """``"thread_id": ""`` is absent: each such mention starts its own thread (they used to
    share the thread "", one thread made of unrelated mentions)."""
    engine = build_engine(Config())
    mentions = [from_dict({**r, "thread_id": ""}, MAX_CHARS) for r in chatter(3, 60)]
    await engine.process(mentions)
    assert engine.stats.threads_created == 3


# The sources' body decoder: one record never costs the others.


def test_a_record_nested_too_deep_to_print_is_refused_alone() -> None:
    body = b"[" + raw(text=DEEP) + b", " + orjson.dumps(BASE) + b"]"
    for kind in ("json", "auto"):
        decoded = decode_body(body, kind, MAX_CHARS)
        assert [m.id for m in decoded.mentions] == ["t:1"]
        assert [(r.index, r.error.field) for r in decoded.rejected] == [(0, "text")]


def _fragile_from_dict(item: Any, max_text_chars: int) -> Mention:
    if isinstance(item, dict) and item.get("id") == "boom":
        raise RuntimeError("unforeseen")
    return from_dict(item, max_text_chars)


def _fragile_decode(line: bytes, max_text_chars: int) -> Mention:
    if b"boom" in line:
        raise RuntimeError("unforeseen")
    return decode(line, max_text_chars)


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_record_that_breaks_the_validator_is_refused_alone(
    kind: records.BodyKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Used to cost the whole body: a 400 for HTTP, one rejection for an MQTT payload."""
    monkeypatch.setattr(records, "from_dict", _fragile_from_dict)
    monkeypatch.setattr(records, "decode", _fragile_decode)
    items = [rec(id="a"), rec(id="boom"), rec(id="b")]
    body = orjson.dumps(items) if kind == "json" else to_jsonl(items)
    decoded = decode_body(body, kind, MAX_CHARS)
    assert [m.id for m in decoded.mentions] == ["a", "b"]
    (rejected,) = decoded.rejected
    assert (rejected.index, rejected.error.field) == (1, "(record)")
    assert rejected.error.reason == "cannot be decoded: RuntimeError: unforeseen"
    assert orjson.loads(rejected.raw)["id"] == "boom"


def test_mentions_from_the_future_are_refused_at_their_index_in_the_body() -> None:
    """The index is the record's in the body (it was its place among the accepted), and the
    dead letter keeps the mention (it kept only the id)."""
    items = [rec(id=5), rec(id="f1", created_at=NOON + 3600), rec(id="ok"), rec(id="f2")]
    items[3]["created_at"] = NOON + 7200
    decoded = decode_body(orjson.dumps(items), "json", MAX_CHARS)
    refuse_future(decoded, NOON)
    assert [m.id for m in decoded.mentions] == ["ok"]
    assert [(r.index, r.error.field) for r in decoded.rejected] == [
        (0, "id"),
        (1, "created_at"),
        (3, "created_at"),
    ]
    assert [r.error.reason for r in decoded.rejected[1:]] == [
        "3600 s beyond the accepted clock skew (input.max_future)",
        "7200 s beyond the accepted clock skew (input.max_future)",
    ]
    kept = orjson.loads(decoded.rejected[1].raw)
    assert (kept["id"], kept["created_at"], kept["text"]) == ("f1", NOON + 3600, "hi")


# Files: every bad line is dead-lettered by name and the replay goes on.


def test_replay_dead_letters_adversarial_lines_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [
        raw(text=DEEP),  # made repr raise RecursionError, which ended the replay
        raw(id=DEEP),
        orjson.dumps(rec(created_at=1_767_607_200_000)),  # epoch milliseconds
        orjson.dumps(rec(created_at="9999-12-31T23:59:59Z")),  # ticks to year 9999: no end
        raw(created_at=b"1e400"),
        raw(text=b'"\\ud800"'),
        raw(text=b'"\xff\xfe"'),
        orjson.dumps(rec(id="x" * 300)),
        orjson.dumps(rec(created_at="9" * 100_000)),
    ]
    source, dead = tmp_path / "in.jsonl", tmp_path / "dead.jsonl"
    source.write_bytes(b"\n".join(bad) + b"\n" + to_jsonl(chatter(3, 60)))
    assert main(["replay", str(source), "--dead-letter", str(dead)]) == 0
    entries = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [(e["where"], e["field"]) for e in entries] == [
        ("line 1", "text"),
        ("line 2", "id"),
        ("line 3", "created_at"),
        ("line 4", "created_at"),
        ("line 5", "(record)"),
        ("line 6", "(record)"),
        ("line 7", "(record)"),
        ("line 8", "id"),
        ("line 9", "created_at"),
    ]
    assert all(len(e["error"]) <= 200 for e in entries)
    assert (
        entries[6]["record"]
        == '{"id": "t:1", "created_at": "2026-01-05T10:00:00Z", "text": "\ufffd\ufffd"}'
    )
    out = capsys.readouterr().out
    assert "3 accepted, 9 rejected ((record): 3, created_at: 3, id: 2, text: 1)" in out


def test_dead_letter_keeps_any_bytes_and_a_bounded_copy(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    letter = DeadLetter(str(path))
    letter.reject("http", "record 0", InvalidMention("text", "why"), b"\xff\x00" + b"x" * 20_000)
    letter.close()
    (entry,) = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert entry["record"] == "\ufffd\x00" + "x" * 8190
    assert letter.counts == {"text": 1}
