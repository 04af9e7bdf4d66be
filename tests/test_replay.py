"""`watchtower replay` as a user runs it: files in, alert lines and JSONL out, bad lines kept."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from watchtower.cli import main
from watchtower.config import Config
from watchtower.mention import from_dict
from watchtower.synth import generate
from watchtower.wiring import build_engine

from streams import chatter, to_jsonl
from test_engine import angry_burst


def replay(tmp_path: Path, data: bytes, name: str = "in.jsonl", *extra: str) -> tuple[int, bytes]:
    source = tmp_path / name
    source.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out = tmp_path / "alerts.jsonl"
    code = main(["replay", str(source), "--alerts-out", str(out), *extra])
    return code, out.read_bytes()


def test_same_input_gives_byte_identical_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = to_jsonl(angry_burst())
    code1, first = replay(tmp_path, data)
    code2, second = replay(tmp_path, data, "in.jsonl.gz")
    assert code1 == code2 == 0
    assert first
    assert first == second
    record = orjson.loads(first.splitlines()[0])
    assert {
        "thread_id",
        "level",
        "state",
        "at",
        "score",
        "explanation",
        "sparkline",
        "top_mentions",
    } <= record.keys()
    assert record["state"] == "firing"
    out = capsys.readouterr().out
    assert "WATCH    firing" in out
    assert "mentions: 500 accepted, 0 rejected" in out


def test_bad_lines_are_dead_lettered_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = to_jsonl(chatter(3, 60))
    bad = b'not json\n{"id": "x", "text": "no time"}\n{"id": "y", "created_at": 1, "text": 5}\n'
    dead = tmp_path / "dead.jsonl"
    code, _ = replay(tmp_path, bad + good, "in.jsonl", "--dead-letter", str(dead))
    assert code == 0
    entries = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [(e["field"], e["where"]) for e in entries] == [
        ("(record)", "line 1"),
        ("created_at", "line 2"),
        ("text", "line 3"),
    ]
    out = capsys.readouterr().out
    assert "3 accepted, 3 rejected ((record): 1, created_at: 1, text: 1)" in out


def test_missing_input_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_directory_as_input_is_a_clear_error_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "in.jsonl"
    good.write_bytes(to_jsonl(chatter(3, 60)))
    assert main(["replay", str(good), str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"watchtower: {tmp_path} is a directory: give the files of mentions in it\n",
    )


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        # the last bytes gone, as when a copy or a download stopped
        (lambda packed: packed[: len(packed) * 2 // 3], "Compressed file ended before the end"),
        (lambda packed: b"not gzip at all\n", "Not a gzipped file"),
    ],
)
def test_a_truncated_or_non_gzip_input_is_reported_and_the_run_goes_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[bytes], bytes],
    error: str,
) -> None:
    lines = to_jsonl(chatter(2000, 10)).splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(damage(gzip.compress(b"".join(lines))))
    with gzip.open(bad, "rb") as readable:  # what a reader gets before it breaks off
        got: list[bytes] = []
        with contextlib.suppress(EOFError, OSError):
            got.extend(readable)
    after = tmp_path / "after.jsonl"
    after.write_bytes(to_jsonl([{**r, "id": f"after-{r['id']}"} for r in chatter(5, 60)]))
    assert main(["replay", str(bad), str(after), "--quiet"]) == 1
    out, err = capsys.readouterr()
    read = f"after line {len(got)}" if got else "before its first line"
    assert err.startswith(f"watchtower: {bad}: unreadable {read}: {error}")
    assert err.count("\n") == 1  # one line, no traceback
    assert f"\ninput {bad}: unreadable {read}: {error}" in out  # in the summary too
    assert f"mentions: {len(got) + 5} accepted, 0 rejected" in out  # before it, and the next file


@pytest.mark.parametrize("option", ["--dead-letter", "--alerts-out"])
def test_an_output_in_a_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(to_jsonl(chatter(3, 60)))
    target = tmp_path / "no" / "out.jsonl"
    assert main(["replay", str(source), option, str(target)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower: {option}: cannot write {target}: No such file or directory\n"
    )


def test_a_configured_dead_letter_in_a_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(to_jsonl(chatter(3, 60)))
    target = tmp_path / "no" / "dead.jsonl"
    config = tmp_path / "c.yaml"
    config.write_text(f"input:\n  dead_letter: {target}\n")
    assert main(["replay", str(source), "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower: input.dead_letter: cannot write {target}: No such file or directory\n"
    )


def test_a_mention_older_than_the_stream_by_more_than_thread_ttl_is_dead_lettered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last month's export appended to today's stream (or a producer's wrong clock): those
    threads are over, so they are set aside, not alerted on as if they were happening."""
    today = angry_burst()
    old = [{**r, "id": f"old-{r['id']}", "created_at": r["created_at"] - 30 * 86400,
            **({"reply_to": f"old-{r['reply_to']}"} if r.get("reply_to") else {})}
           for r in today]  # fmt: skip
    just_in_time = {
        **chatter(1, 0)[0],
        "id": "late-but-in",
        "created_at": today[-1]["created_at"] - 47 * 3600,
    }
    dead = tmp_path / "dead.jsonl"
    code, alerts = replay(
        tmp_path, to_jsonl([*today, *old, just_in_time]), "in.jsonl", "--dead-letter", str(dead)
    )
    assert code == 0
    assert {orjson.loads(a)["thread_id"] for a in alerts.splitlines()} == {"r1"}  # not old-r1
    entries = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert len(entries) == len(old)
    assert {(e["source"], e["field"]) for e in entries} == {("engine", "created_at")}
    assert "beyond state.thread_ttl (48 h)" in entries[0]["error"]
    kept = [orjson.loads(e["record"]) for e in entries]  # re-ingestable as they were
    assert [r["id"] for r in kept] == [r["id"] for r in old]
    out = capsys.readouterr().out
    assert (
        f"mentions: {len(today) + 1} accepted, {len(old)} rejected (created_at: {len(old)})" in out
    )


def test_a_sparse_stream_replays_as_the_live_daemon_decides_it(tmp_path: Path) -> None:
    """512 mentions of a sparse stream span up to 12 minutes of event time, more than the
    momentum model's 5 minutes of settling: cut there, a replay gave other alerts than the
    live daemon's millisecond batches. Replay cuts batches at a minute of event time too."""
    records = list(generate(5, threads=300, hours=2))
    code, alerts = replay(tmp_path, to_jsonl(records))
    assert code == 0

    async def one_by_one() -> list[bytes]:
        engine = build_engine(Config())
        out = []
        for record in records:
            out += await engine.process([from_dict(record, 4000)])
        return [t.to_json() for t in out]

    assert alerts.splitlines() == asyncio.run(one_by_one())
    assert len(alerts.splitlines()) > 10


def test_a_file_replayed_twice_in_one_run_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = to_jsonl(chatter(30, 60))
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "again.jsonl").write_bytes(data)
    assert main(["replay", str(tmp_path / "a.jsonl"), str(tmp_path / "again.jsonl")]) == 0
    assert (
        "mentions: 30 accepted, 0 rejected, 30 repeats of an id dropped" in capsys.readouterr().out
    )
