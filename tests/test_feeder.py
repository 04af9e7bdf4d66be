"""`watchtower feed`, the demo's publisher: Ctrl-C is a stop, not a crash; bad input, one line."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from watchtower.cli import main


async def test_ctrl_c_stops_the_feeder_quietly(tmp_path: Path) -> None:
    posted = asyncio.Event()

    async def ingest(request: web.Request) -> web.Response:
        await request.read()
        posted.set()
        return web.json_response({"accepted": 1, "rejected": 0}, status=202)

    app = web.Application()
    app.router.add_post("/v1/mentions", ingest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # two mentions an hour apart, sent in real time: the feeder sleeps after the first
    records = [{"id": f"m{i}", "created_at": 1_767_600_000 + 3600 * i, "text": ""} for i in (0, 1)]
    path = tmp_path / "two.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    code = "from watchtower.cli import main; raise SystemExit(main())"
    url = f"http://127.0.0.1:{port}/v1/mentions"
    args = ["feed", "--url", url, "--input", str(path), "--speed", "1"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, stderr=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.wait_for(posted.wait(), 20)
        await asyncio.sleep(0.3)  # into the sleep before the second mention
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
        await runner.cleanup()
    assert proc.returncode == 130
    assert b"Traceback" not in stderr
    assert b"stopped" in stderr


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (b"not json\n", "line 2: not JSON"),
        (b"[1, 2]\n", "line 2: not a JSON object"),
        (b'{"id": "b", "text": ""}\n', "line 2: created_at: required"),
        (b'{"id": "b", "created_at": "soon", "text": ""}\n', "line 2: created_at: unparseable"),
    ],
)
def test_a_bad_input_line_is_one_error_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: bytes, error: str
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "created_at": 1767600000, "text": ""}\n' + lines)
    # nothing listens at the URL: the feed must stop before it sends anything
    url = "http://127.0.0.1:9/v1/mentions"
    assert main(["feed", "--url", url, "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"watchtower: {path} {error}")
    assert err.count("\n") == 1


def test_a_missing_input_file_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["feed", "--url", "http://127.0.0.1:9/v1/mentions", "--input", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower: {missing}: cannot read it: No such file or directory\n"
    )
