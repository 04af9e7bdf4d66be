"""HTTP ingest and API on a real socket: auth, limits, per-record errors, backpressure.

The daemon's object graph is real (memory store, outbox, inbox); only the HTTP server runs, no
batcher, so what a request queued stays in the inbox where the test can count it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.http_parser import HttpRequestParserPy

from watchtower.config import (
    Config,
    DaemonConfig,
    HttpConfig,
    InputConfig,
    MomentumConfig,
    NotifyConfig,
    ScoringConfig,
)
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import Daemon

from servers import AUTH, JSON, NDJSON, TOKEN, daemon_api
from streams import T0, burst, mention, to_jsonl


@dataclass
class Api:
    daemon: Daemon
    base: str
    session: aiohttp.ClientSession
    dead_letter: Path

    async def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.base + path, data=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    @property
    def queued(self) -> int:
        return self.daemon.runtime.inbox.queue.qsize()

    def take(self) -> list[str]:
        """The ids of the mentions queued, taken off the queue."""
        queue = self.daemon.runtime.inbox.queue
        taken = [queue.get_nowait().mention.id for _ in range(queue.qsize())]
        for _ in taken:
            queue.task_done()
        return taken

    def metric(self, name: str, **labels: str) -> float:
        value = self.daemon.runtime.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def rejected(self, reason: str) -> float:
        """Ingest requests rejected whole (4xx) for ``reason``."""
        name = "watchtower_ingest_requests_rejected_total"
        return self.metric(name, source="http", reason=reason)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    dead = tmp_path / "dead.jsonl"
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN), max_body_bytes=4000),
        daemon=DaemonConfig(queue_size=3),
        input=InputConfig(dead_letter=str(dead), max_text_chars=200),
        momentum=MomentumConfig(big_size=5, min_count=3),  # a burst of 30 fires
        scoring=ScoringConfig(sentiment_gate="off"),
        notify=NotifyConfig(console=False),
    )
    daemon = Daemon(config)
    async with daemon_api(daemon) as (base, session):
        yield Api(daemon, base, session, dead)


def record(mid: str, text: str = "@acme where is my refund", **more: Any) -> dict[str, Any]:
    return mention(mid, 10.0, text, **more)


async def test_ingest_needs_the_bearer_token(api: Api) -> None:
    body = orjson.dumps(record("m1"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        status, data = await api.post(
            "/v1/mentions", body, {"Content-Type": "application/json", **headers}
        )
        assert status == 401, headers
        assert "token" in data["error"]
    assert api.queued == 0
    assert api.rejected("unauthorized") == 3
    status, data = await api.post("/v1/mentions", body, JSON)
    assert (status, data) == (202, {"accepted": 1, "rejected": 0, "errors": []})
    assert api.queued == 1
    async with api.session.get(api.base + "/v1/alerts") as r:
        assert r.status == 401  # the API too, not just ingest
    status, _ = await api.post("/v1/feedback", b"{}", {"Content-Type": "application/json"})
    assert status == 401
    assert api.rejected("unauthorized") == 3  # counted for ingest only
    assert api.metric("watchtower_mentions_received_total", source="http") == 1


async def test_probes_metrics_and_board_need_no_token(api: Api) -> None:
    for path in ("/healthz", "/metrics", "/"):
        async with api.session.get(api.base + path) as r:
            assert r.status == 200, path
    async with api.session.get(api.base + "/metrics") as r:
        assert "watchtower_queue_depth" in await r.text()
    async with api.session.get(api.base + "/") as r:
        page = await r.text()
        assert "v1/alerts" in page
        assert "textContent" in page
    async with api.session.get(api.base + "/readyz") as r:
        data = await r.json()
        assert r.status == 503  # tasks not started: not ready
        assert data["checks"]["started"] is False
        assert data["checks"]["store"] is True


async def test_a_body_its_content_encoding_does_not_decode_is_a_counted_400(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Content-Encoding: gzip on a body that is not gzip: a 400, counted, and not a line in the
    log. aiohttp's parser decoded it and kept the error, which its server raised again once
    the handler had answered: "Unhandled exception" and a traceback, for each such request."""
    body = orjson.dumps(record("m1"))
    lying = {**JSON, "Content-Encoding": "gzip"}
    status, data = await api.post("/v1/mentions", body, lying)
    assert (status, data) == (
        400, {"error": "the body does not decode as its Content-Encoding (gzip) says"}
    )  # fmt: skip
    truncated = gzip.compress(body)[:-9]
    assert (await api.post("/v1/mentions", truncated, lying))[0] == 400
    assert (await api.post("/v1/feedback", body, lying))[0] == 400
    assert api.rejected("bad_body") == 2  # ingest's only
    assert api.queued == 0
    status, data = await api.post("/v1/mentions", gzip.compress(body), lying)
    assert (status, data["accepted"]) == (202, 1)  # a real gzip body is read as ever
    assert api.take() == ["m1"]
    members = gzip.compress(to_jsonl([record("m2")])) + gzip.compress(to_jsonl([record("m3")]))
    status, _ = await api.post("/v1/mentions", members, {**NDJSON, "Content-Encoding": "gzip"})
    assert (status, api.take()) == (202, ["m2", "m3"])  # gzip members one after another
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for deflated in (zlib.compress(body), raw.compress(body) + raw.flush()):  # zlib, and raw
        status, _ = await api.post(
            "/v1/mentions", deflated, {**JSON, "Content-Encoding": "deflate"}
        )
        assert (status, api.take()) == (202, ["m1"])
    assert api.daemon.http is not None
    await api.daemon.http.stop()  # its connections closed: what it had to log is logged
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_content_encoding_not_read_is_a_counted_415_naming_the_header(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """br and zstd were answered 400 by aiohttp's parser before any handler (uncounted, a
    traceback in the log), and one it did not know (foo) was read as if not encoded."""
    body = orjson.dumps(record("m1"))
    for coding in ("br", "zstd", "foo", "gzip, br", "gzip, gzip"):
        async with api.session.post(
            api.base + "/v1/mentions", data=body, headers={**JSON, "Content-Encoding": coding}
        ) as r:
            assert r.status == 415, coding
            assert r.headers["Accept-Encoding"] == "gzip, deflate"  # RFC 9110 15.5.16
            assert await r.json() == {
                "error": f"content encoding must be one of identity, gzip, deflate, not {coding!r}",
                "field": "Content-Encoding",
            }
    assert api.rejected("unsupported_encoding") == 5
    assert api.metric("watchtower_mentions_received_total", source="http") == 0
    assert api.queued == 0
    status, data = await api.post("/v1/feedback", body, {**JSON, "Content-Encoding": "br"})
    assert (status, data["field"]) == (415, "Content-Encoding")  # the API's bodies too
    for coding in ("identity", "", " GZIP ", "x-gzip"):  # x-gzip: gzip (RFC 9110 8.4.1.3)
        sent = body if coding.strip() in ("identity", "") else gzip.compress(body)
        status, _ = await api.post("/v1/mentions", sent, {**JSON, "Content-Encoding": coding})
        assert (status, api.take()) == (202, ["m1"]), coding
    assert api.rejected("unsupported_encoding") == 5  # the API's not counted
    assert api.daemon.http is not None
    await api.daemon.http.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def _connect(api: Api) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*api.base.removeprefix("http://").split(":"))


def _head(path: str, framing: str) -> str:
    """A JSON POST's header lines, with the token and ``framing`` (its length, or chunked),
    without the blank line that ends them."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n"
    )


async def test_a_client_that_hangs_up_mid_body_is_counted_and_not_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A producer that crashes (or a proxy that cuts it off) after a part of its body: aiohttp
    raised the lost connection in read_limited, logged "Error handling request" at ERROR with a
    traceback, and the request was counted nowhere."""
    caplog.set_level(logging.DEBUG)
    part = orjson.dumps([record(f"m{i}") for i in range(3)])[:-10]  # well within the limit
    requests = {
        "/v1/mentions": ("Content-Length: 3000", part),  # declared, not all sent
        "/v1/feedback": ("Content-Length: 3000", b'{"label": '),  # the API reads the same way
        "/v1/silences": ("Transfer-Encoding: chunked", b"%x\r\n%s" % (len(part) + 9, part)),
    }
    for n, (path, (framing, body)) in enumerate(requests.items(), 1):
        _, writer = await _connect(api)
        writer.write(f"{_head(path, framing)}\r\n".encode())
        writer.write(body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # until the server is done with it (our line, or aiohttp's error): polled, for the
        # counter and the log have no event to wait on, and no fixed wait
        while len(_hung_up(caplog)) + len(_errors(caplog)) < n:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert api.rejected("client_gone") == 1  # ingest's only
    assert api.rejected("malformed_request") == 0  # a body cut short is not a broken one
    assert api.queued == 0
    assert api.metric("watchtower_mentions_received_total", source="http") == 0
    assert not api.dead_letter.exists() or api.dead_letter.read_bytes() == b""
    assert [(r.levelno, r.exc_info) for r in _hung_up(caplog)] == [(logging.DEBUG, None)] * 3
    assert api.daemon.http is not None
    await api.daemon.http.stop()  # its connections closed: what it had to log is logged
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert _errors(caplog) == []


def _hung_up(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "client hung up mid-body"]


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# Chunked bodies whose framing is broken, each as a producer's bug might send it.
BROKEN_CHUNKS = (
    b"zz\r\n[]\r\n0\r\n\r\n",  # a chunk size that is not hex
    b"20\r\n[]\r\n" + b"garbage " * 5 + b"\r\n0\r\n\r\n",  # shorter than its size, then garbage
    b"2\r\n[]XX0\r\n\r\n",  # no CRLF after the chunk
)
_CHUNKED_HEAD = _head("/v1/mentions", "Transfer-Encoding: chunked")


@pytest.fixture(params=["c", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each of aiohttp's request parsers: its C one, and the pure-Python one it runs without
    its C extension (no wheel for the platform, AIOHTTP_NO_EXTENSIONS); they fail apart."""
    if request.param == "python":
        monkeypatch.setattr(aiohttp.web_protocol, "HttpRequestParser", HttpRequestParserPy)
    return str(request.param)


async def test_a_malformed_chunked_body_is_a_counted_400_and_not_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture, parser: str
) -> None:
    """A broken chunk that arrives with its headers: aiohttp's parser refused the request before
    any handler ran, answered 400, logged "Error handling request" at ERROR with a traceback
    on aiohttp.server, and the rejection was counted nowhere."""
    caplog.set_level(logging.DEBUG)
    body = orjson.dumps(record("m1"))
    assert (await api.post("/v1/mentions", body, JSON))[0] == 202  # a keep-alive connection
    for broken in BROKEN_CHUNKS:
        reader, writer = await _connect(api)
        writer.write(f"{_CHUNKED_HEAD}\r\n".encode() + broken)  # one write: one segment
        assert (await reader.readline()).split()[1] == b"400", (parser, broken)
        writer.close()
        await writer.wait_closed()
    n = len(BROKEN_CHUNKS)
    assert api.rejected("malformed_request") == n
    refused = [r for r in caplog.records if r.getMessage() == "request refused as malformed"]
    assert [(r.levelno, r.exc_info) for r in refused] == [(logging.DEBUG, None)] * n
    assert [r for r in caplog.records if r.name.startswith("aiohttp") and r.exc_info] == []
    status, data = await api.post("/v1/mentions", body, JSON)  # the keep-alive one again
    assert (status, data["accepted"]) == (202, 1)
    reader, writer = await _connect(api)
    writer.write(f"{_CHUNKED_HEAD}\r\n%x\r\n".encode() % len(body) + body + b"\r\n0\r\n\r\n")
    assert (await reader.readline()).split()[1] == b"202"  # well-formed, on a new connection
    writer.close()
    await writer.wait_closed()
    assert api.take() == ["m1"] * 3
    assert api.rejected("malformed_request") == n
    assert api.daemon.http is not None
    await api.daemon.http.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("parser", ["python"], indirect=True)
async def test_a_chunk_broken_while_the_handler_reads_is_a_counted_json_400(
    api: Api, caplog: pytest.LogCaptureFixture, parser: str
) -> None:
    """A broken chunk after the handler began to read (here once 100 Continue said so): the
    pure-Python parser raised it in read_limited, answered 500 "Unhandled exception" with a
    traceback, and raised it again after the answer, a second traceback. (The C parser keeps
    the error from the handler, which waits for more of the body: a 408, tested below.)"""
    reader, writer = await _connect(api)
    writer.write(f"{_CHUNKED_HEAD}Expect: 100-continue\r\n\r\n".encode())
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"1\r\n[\r\n" + BROKEN_CHUNKS[0])
    head, _, answer = (await reader.read()).partition(b"\r\n\r\n")  # then the server closes
    writer.close()
    await writer.wait_closed()
    assert head.split()[1] == b"400"
    assert orjson.loads(answer) == {"error": "the body is not framed as its headers say: zz"}
    assert api.rejected("malformed_request") == 1  # once, by the handler
    assert api.queued == 0
    assert api.daemon.http is not None
    await api.daemon.http.stop()
    assert _errors(caplog) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def _patience(api: Api, seconds: float) -> None:
    """Set ``http.body_timeout`` as a reload would: the handlers read the config per request."""
    runtime = api.daemon.runtime
    http = dataclasses.replace(runtime.config.http, body_timeout=Duration(seconds))
    runtime.config = dataclasses.replace(runtime.config, http=http)


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, Any]]:
    """The status and JSON body of an answer that closes its connection (read by its length:
    aiohttp lingers, reading what more the client sends, before it closes)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
    assert "\r\nconnection: close\r\n" in head, head
    length = int(head.partition("content-length:")[2].split()[0])
    return head.split()[1].encode(), orjson.loads(await reader.readexactly(length))


async def test_a_body_that_stops_arriving_is_a_counted_408_after_http_body_timeout(
    api: Api, caplog: pytest.LogCaptureFixture, parser: str
) -> None:
    """A producer stuck mid-body (or a proxy holding it) used to hold its handler and its
    connection until the client hung up: forever, for a client that waits for its answer."""
    caplog.set_level(logging.DEBUG)
    _patience(api, 0.3)
    part = orjson.dumps([record(f"m{i}") for i in range(3)])[:-10]
    reader, writer = await _connect(api)
    writer.write(f"{_head('/v1/mentions', 'Content-Length: 3000')}\r\n".encode())
    writer.write(part)
    status, data = await _answer(reader)  # and closes it: the rest may still come
    writer.close()
    await writer.wait_closed()
    assert status == b"408"
    assert data == {"error": "no more of the body came for 0.3 s (http.body_timeout)"}
    assert api.rejected("body_stalled") == 1
    assert api.rejected("client_gone") == 0
    assert api.queued == 0
    stalled = [r for r in caplog.records if r.getMessage() == "client stalled mid-body"]
    assert [(r.levelno, r.exc_info) for r in stalled] == [(logging.DEBUG, None)]
    reader, writer = await _connect(api)  # the API's bodies too (counted for ingest only)
    writer.write(f"{_head('/v1/feedback', 'Content-Length: 50')}\r\n{{".encode())
    assert (await _answer(reader))[0] == b"408"
    writer.close()
    await writer.wait_closed()
    assert api.rejected("body_stalled") == 1
    assert api.daemon.http is not None
    await api.daemon.http.stop()
    assert _errors(caplog) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_slow_body_that_keeps_coming_is_not_cut_off(api: Api) -> None:
    """http.body_timeout is the wait for the next part, not for the whole body: a large body
    on a slow link arrives, however long it takes in all."""
    _patience(api, 1.0)
    body = orjson.dumps([record(f"m{i}") for i in range(3)])
    step = len(body) // 4 + 1
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    started = time.monotonic()

    async def slowly() -> AsyncIterator[bytes]:
        for n, part in enumerate(parts):
            if n:
                await asyncio.sleep(0.4)  # each gap well within the patience, all three not
            yield part

    async with api.session.post(api.base + "/v1/mentions", data=slowly(), headers=JSON) as r:
        assert (r.status, (await r.json())["accepted"]) == (202, 3)
    assert time.monotonic() - started > 1.0  # longer in all than http.body_timeout
    assert api.rejected("body_stalled") == 0


@pytest.mark.parametrize("parser", ["c"], indirect=True)
async def test_a_chunk_the_c_parser_drops_is_answered_408_not_waited_on_forever(
    api: Api, caplog: pytest.LogCaptureFixture, parser: str
) -> None:
    """A broken chunk after the handler began to read: aiohttp's C parser keeps the error from
    the handler (see malformed.py), which waited for more of the body until the client hung
    up. It is let go after http.body_timeout."""
    _patience(api, 0.3)
    reader, writer = await _connect(api)
    writer.write(f"{_CHUNKED_HEAD}Expect: 100-continue\r\n\r\n".encode())
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"1\r\n[\r\n" + BROKEN_CHUNKS[0])
    status, _ = await _answer(reader)
    writer.close()
    await writer.wait_closed()
    assert status == b"408"
    assert api.rejected("body_stalled") == 1
    assert api.queued == 0
    assert api.daemon.http is not None
    await api.daemon.http.stop()
    assert _errors(caplog) == []


async def test_body_over_the_limit_is_413(api: Api) -> None:
    big = orjson.dumps([record(f"m{i}") for i in range(40)])
    assert len(big) > 4000
    status, data = await api.post("/v1/mentions", big, JSON)
    assert status == 413
    assert data["error"] == "body larger than 4000 bytes (http.max_body_bytes)"
    assert api.rejected("too_large") == 1
    bomb = gzip.compress(b" " * 1_000_000)  # 1 kB that inflates to 1 MB: stopped at 4001
    assert len(bomb) < 4000
    assert (await api.post("/v1/mentions", bomb, {**JSON, "Content-Encoding": "gzip"}))[0] == 413
    status, data = await api.post("/v1/feedback", b" " * 70_000, JSON)  # its own, fixed limit
    assert (status, data["error"]) == (413, "body larger than 65536 bytes")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    async with api.session.post(api.base + "/v1/mentions", data=chunks(), headers=JSON) as r:
        assert r.status == 413
    assert api.queued == 0
    assert api.rejected("too_large") == 3
    assert api.metric("watchtower_mentions_received_total", source="http") == 0  # never read


async def test_wrong_content_type_is_415(api: Api) -> None:
    body = orjson.dumps(record("m1"))
    status, data = await api.post("/v1/mentions", body, {"Content-Type": "text/plain", **AUTH})
    assert (status, data["field"]) == (415, "Content-Type")
    assert "application/x-ndjson" in data["error"]
    assert api.queued == 0
    assert api.rejected("unsupported_type") == 1


async def test_bad_records_are_named_in_the_202_and_dead_lettered(api: Api) -> None:
    records = [record("ok1"), {"id": "bad1", "created_at": T0, "text": 5}, record("ok2"),
               record("bad2", created_at="yesterday")]  # fmt: skip
    status, data = await api.post("/v1/mentions", orjson.dumps(records), JSON)
    assert status == 202
    assert data["accepted"] == 2
    assert data["rejected"] == 2
    assert data["errors"] == [
        {"index": 1, "field": "text", "error": "expected a string, got 5"},
        {"index": 3, "field": "created_at", "error": "unparseable time 'yesterday'"},
    ]
    assert api.queued == 2
    api.daemon.runtime.inbox.dead_letter.close()  # flushes the file
    dead = [orjson.loads(line) for line in api.dead_letter.read_bytes().splitlines()]
    assert [(d["source"], d["field"]) for d in dead] == [("http", "text"), ("http", "created_at")]
    assert orjson.loads(dead[0]["record"])["id"] == "bad1"
    assert api.metric("watchtower_mentions_received_total", source="http") == 4
    assert api.metric("watchtower_mentions_accepted_total", source="http") == 2
    assert api.metric("watchtower_mentions_rejected_total", source="http", reason="text") == 1


async def test_ndjson_batch_with_a_broken_line(api: Api) -> None:
    lines = [orjson.dumps(record("n1")), b"", b"{not json", orjson.dumps(record("n2")), b""]
    status, data = await api.post("/v1/mentions", b"\n".join(lines), NDJSON)
    assert status == 202
    assert (data["accepted"], data["rejected"]) == (2, 1)
    assert data["errors"][0]["index"] == 1
    assert data["errors"][0]["field"] == "(record)"
    assert [a.mention.id for a in api.daemon.runtime.inbox.queue._queue] == ["n1", "n2"]  # type: ignore[attr-defined]


async def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    status, data = await api.post("/v1/mentions", b"{oops", JSON)
    assert status == 400
    assert "not JSON" in data["error"]
    status, _ = await api.post("/v1/mentions", b"42", JSON)
    assert status == 400
    status, _ = await api.post("/v1/mentions", b"\xff\xfe\x00garbage", JSON)
    assert status == 400
    assert api.rejected("bad_body") == 3
    assert api.metric("watchtower_mentions_received_total", source="http") == 0


async def test_rejected_requests_are_counted_apart_from_the_ones_to_retry(api: Api) -> None:
    """One of each 4xx on /metrics, by reason; none in the 503 counters, none as received."""
    body = orjson.dumps(record("m1"))
    assert (await api.post("/v1/mentions", body, {"Content-Type": "application/json"}))[0] == 401
    assert (await api.post("/v1/mentions", b"x" * 5000, JSON))[0] == 413
    assert (await api.post("/v1/mentions", body, {"Content-Type": "text/csv", **AUTH}))[0] == 415
    assert (await api.post("/v1/mentions", b"[1", JSON))[0] == 400
    assert (await api.post("/v1/mentions", body, {**JSON, "Content-Encoding": "br"}))[0] == 415
    async with api.session.get(api.base + "/metrics") as r:
        text = await r.text()
    line = 'watchtower_ingest_requests_rejected_total{reason="%s",source="http"} 1.0'
    reasons = ("unauthorized", "too_large", "unsupported_type", "bad_body", "unsupported_encoding")
    for reason in reasons:
        assert line % reason in text
    assert "watchtower_ingest_refused_total{" not in text  # no 503 counted
    assert api.metric("watchtower_mentions_received_total", source="http") == 0


async def test_full_queue_refuses_the_whole_request_with_503(api: Api) -> None:
    status, _ = await api.post("/v1/mentions", orjson.dumps([record("a"), record("b")]), JSON)
    assert status == 202
    body = orjson.dumps([record("c"), record("d"), {"id": "bad"}])
    async with api.session.post(api.base + "/v1/mentions", data=body, headers=JSON) as r:
        assert r.status == 503
        assert r.headers["Retry-After"] == "1"
    assert api.queued == 2  # not half-taken: "c" did fit, yet it was not queued
    assert api.metric("watchtower_mentions_received_total", source="http") == 2
    assert not api.dead_letter.exists() or api.dead_letter.read_bytes() == b""
    status, _ = await api.post("/v1/mentions", orjson.dumps(record("c")), JSON)
    assert status == 202  # what fits is still taken
    api.daemon.runtime.inbox.accepting = False  # shutting down: refused as well
    status, _ = await api.post("/v1/mentions", orjson.dumps(record("e")), JSON)
    assert status == 503


async def test_a_request_larger_than_the_whole_queue_waits_its_turn_in_order(api: Api) -> None:
    """Refused whole, a request the queue can never hold would be refused on every retry: it
    is queued as the engine makes room instead (here the test takes from the queue)."""
    records = [record(f"m{i}") for i in range(10)]  # the queue holds 3
    taken: list[str] = []

    async def engine() -> None:
        while len(taken) < 10:
            taken.append((await api.daemon.runtime.inbox.queue.get()).mention.id)
            await asyncio.sleep(0.01)

    draining = asyncio.create_task(engine())
    status, data = await api.post("/v1/mentions", to_jsonl(records), NDJSON)
    await asyncio.wait_for(draining, 5)
    assert (status, data) == (202, {"accepted": 10, "rejected": 0, "errors": []})
    assert taken == [f"m{i}" for i in range(10)]
    assert api.metric("watchtower_mentions_received_total", source="http") == 10
    assert api.metric("watchtower_mentions_accepted_total", source="http") == 10


async def test_refused_requests_are_counted_by_reason_not_as_received(api: Api) -> None:
    assert (await api.post("/v1/mentions", orjson.dumps(record("a")), JSON))[0] == 202
    full = orjson.dumps([record("b"), record("c"), record("d")])  # room for 2 of the 3
    assert (await api.post("/v1/mentions", full, JSON))[0] == 503
    assert (await api.post("/v1/mentions", full, JSON))[0] == 503
    api.daemon.runtime.inbox.accepting = False
    assert (await api.post("/v1/mentions", orjson.dumps(record("e")), JSON))[0] == 503
    async with api.session.get(api.base + "/metrics") as r:
        text = await r.text()
    refused = 'watchtower_ingest_refused_total{reason="%s",source="http"} %s'
    records = 'watchtower_ingest_refused_records_total{reason="%s",source="http"} %s'
    assert refused % ("queue_full", "2.0") in text
    assert records % ("queue_full", "6.0") in text  # a resent body counts again
    assert refused % ("shutting_down", "1.0") in text
    assert records % ("shutting_down", "0.0") in text  # refused before its body was read
    assert api.metric("watchtower_mentions_received_total", source="http") == 1


async def test_feedback_teaches_the_sentiment_model(api: Api) -> None:
    await api.post("/v1/mentions", orjson.dumps(record("f1", text="meh, the app is slow")), JSON)
    await api.daemon.runtime.decide(list(api.daemon.runtime.inbox.queue._queue))  # type: ignore[attr-defined]
    learned: list[tuple[str, str]] = []
    model = api.daemon.runtime.engine.sentiment
    model.learn = lambda text, label: learned.append((text, label))  # type: ignore[method-assign]
    status, _ = await api.post("/v1/feedback", b'{"mention_id": "f1", "label": "neutral"}', JSON)
    assert status == 200
    status, _ = await api.post(
        "/v1/feedback", b'{"text": "not a complaint", "label": "positive"}', JSON
    )
    assert status == 200
    assert learned == [("meh, the app is slow", "neutral"), ("not a complaint", "positive")]
    status, _ = await api.post("/v1/feedback", b'{"mention_id": "nope", "label": "neutral"}', JSON)
    assert status == 404
    for bad in (b'{"text": "x", "label": "angry"}', b'{"label": "neutral"}', b"[1]",
                b'{"text": "x", "mention_id": "f1", "label": "neutral"}'):  # fmt: skip
        status, _ = await api.post("/v1/feedback", bad, JSON)
        assert status == 400, bad
    assert len(learned) == 2


async def test_alerts_threads_and_ack_answer_json(api: Api) -> None:
    async with api.session.get(api.base + "/v1/alerts?limit=5", headers=AUTH) as r:
        assert r.status == 200
        assert (await r.json()) == {"alerts": []}
    async with api.session.get(api.base + "/v1/threads", headers=AUTH) as r:
        assert r.status == 200
        assert (await r.json()) == {"threads": []}
    status, _ = await api.post("/v1/alerts/nope@1/ack", b"", AUTH)
    assert status == 404


async def test_a_firing_episode_shows_in_alerts_and_threads_and_can_be_acked(api: Api) -> None:
    rt = api.daemon.runtime
    records = burst("r1", 0, 30, 4, "@acme you lost my bag")
    for i in range(0, len(records), 3):  # the queue holds 3: feed the engine as it drains
        status, _ = await api.post("/v1/mentions", orjson.dumps(records[i : i + 3]), JSON)
        assert status == 202
        await rt.decide(list(rt.inbox.queue._queue))  # type: ignore[attr-defined]
        rt.inbox.queue._queue.clear()  # type: ignore[attr-defined]
    async with api.session.get(api.base + "/v1/alerts", headers=AUTH) as r:
        (alert,) = (await r.json())["alerts"]
    assert (alert["thread_id"], alert["state"], alert["acked"]) == ("r1", "firing", False)
    async with api.session.get(api.base + "/v1/threads", headers=AUTH) as r:
        (thread,) = (await r.json())["threads"]
    assert thread["thread_id"] == "r1"
    assert thread["episode_id"] == alert["episode_id"]
    assert thread["explanation"]["count"] == 30
    status, data = await api.post(f"/v1/alerts/{alert['episode_id']}/ack", b"", AUTH)
    assert (status, data) == (200, {"acked": alert["episode_id"]})
    async with api.session.get(api.base + "/v1/alerts", headers=AUTH) as r:
        assert (await r.json())["alerts"][0]["acked"] is True


async def test_a_mention_from_the_future_is_refused_by_name(api: Api) -> None:
    tomorrow = time.time() + 86_400  # a source with a bad clock
    records = [record("now1"), record("future1", created_at=tomorrow)]
    status, data = await api.post("/v1/mentions", orjson.dumps(records), JSON)
    assert status == 202
    assert (data["accepted"], data["rejected"]) == (1, 1)
    assert data["errors"][0]["index"] == 1
    assert data["errors"][0]["field"] == "created_at"
    assert data["errors"][0]["error"].endswith(
        " s beyond the accepted clock skew (input.max_future)"
    )
    assert api.queued == 1
