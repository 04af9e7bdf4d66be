"""The daemon as systemd runs it: a process, signals, sd_notify, one-line logs, exit codes.

Run as ``python -m watchtower.sources.run_command`` (what ``watchtower run`` calls), with
NOTIFY_SOCKET pointing at a datagram socket the test reads.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest

from servers import Receiver, free_port
from streams import T0, burst, chatter, stream

TOKEN_A, TOKEN_B = "secret-A-7f3e", "secret-B-91c2"
ANGRY = "@acme you lost my bag again, worst airline ever"


@dataclass
class Proc:
    process: asyncio.subprocess.Process
    notify: socket.socket
    port: int
    out: Path
    err: Path
    states: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def expect(self, state: str, within: float = 10.0) -> None:
        """Wait until the daemon sent ``state`` (e.g. READY=1) over the notify socket."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            while state not in self.states:
                data = await loop.sock_recv(self.notify, 4096)
                self.states += data.decode().splitlines()

    async def metric(self, session: aiohttp.ClientSession, name: str) -> float:
        async with session.get(self.base + "/metrics") as r:
            for line in (await r.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def logs(self) -> str:
        return self.err.read_text() + self.out.read_text()


def write_config(path: Path, port: int, token: str, *extra: str) -> None:
    lines = [
        "http:",
        f"  port: {port}",
        f"  token: {token}",
        "momentum: {big_size: 10, min_count: 3}",
        "scoring: {sentiment_gate: 'off'}",
        "daemon: {queue_size: 50000, shutdown_timeout: 20s}",
        *extra,
    ]
    path.write_text("\n".join(lines) + "\n")


@asynccontextmanager
async def started(tmp_path: Path, *extra: str) -> AsyncIterator[Proc]:
    """The daemon as a process on a config of ``write_config`` plus ``extra`` lines, ready."""
    port = free_port()
    config = tmp_path / "watchtower.yaml"
    write_config(config, port, "env:WT_TEST_TOKEN", *extra)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    env = {**os.environ, "WT_TEST_TOKEN": TOKEN_A, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    env["WATCHDOG_USEC"] = "400000"
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watchtower.sources.run_command", "--config", str(config),
            env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    proc = Proc(process, notify, port, out, err)
    try:
        await proc.expect("READY=1")
        yield proc
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        notify.close()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Callable[[], Proc]]:
    async with started(tmp_path) as proc:
        yield lambda: proc


def config_path(proc: Proc) -> Path:
    return proc.out.parent / "watchtower.yaml"


async def test_sighup_applies_a_good_config_and_keeps_the_old_on_a_bad_one(
    daemon: Callable[[], Proc],
) -> None:
    proc = daemon()
    post = orjson.dumps({"id": "m1", "created_at": T0, "text": "hello @acme"})
    json = {"Content-Type": "application/json"}

    async def ingest(session: aiohttp.ClientSession, token: str) -> int:
        headers = {**json, "Authorization": f"Bearer {token}"}
        async with session.post(proc.base + "/v1/mentions", data=post, headers=headers) as r:
            return r.status

    async with aiohttp.ClientSession() as session:
        async with session.get(proc.base + "/readyz") as r:
            assert r.status == 200
        assert await ingest(session, TOKEN_A) == 202
        await proc.expect("WATCHDOG=1")

        write_config(config_path(proc), proc.port, TOKEN_B)  # a good change: a new token
        proc.states.clear()
        proc.process.send_signal(signal.SIGHUP)
        await proc.expect("RELOADING=1")
        await proc.expect("READY=1")
        assert await proc.metric(session, "watchtower_config_last_reload_successful") == 1
        assert await ingest(session, TOKEN_B) == 202
        assert await ingest(session, TOKEN_A) == 401

        config_path(proc).write_text("bogus: 1\n")  # a bad file: the old config stays
        proc.states.clear()
        proc.process.send_signal(signal.SIGHUP)
        await proc.expect("READY=1")
        assert await proc.metric(session, "watchtower_config_last_reload_successful") == 0
        assert await proc.metric(session, "watchtower_config_reload_failures_total") == 1
        assert await ingest(session, TOKEN_B) == 202

        # a port change needs a restart: it waits for one, and the token edited with it applies
        write_config(config_path(proc), free_port(), TOKEN_A)
        proc.process.send_signal(signal.SIGHUP)
        await _until(lambda: "keys=http.port" in proc.err.read_text())
        assert await proc.metric(session, "watchtower_config_restart_pending") == 1
        assert await proc.metric(session, "watchtower_config_reload_failures_total") == 1
        assert await ingest(session, TOKEN_A) == 202  # on the port it listened on all along

    proc.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.process.wait(), 15) == 0
    await proc.expect("STOPPING=1")
    logs = proc.logs()
    assert TOKEN_A not in logs
    assert TOKEN_B not in logs
    assert 'msg="config reload failed, keeping the old config"' in logs
    assert 'error="bogus: unknown key"' in logs
    for line in proc.err.read_text().splitlines():
        assert line.startswith("ts="), line  # every record is one key=value line


async def test_sigterm_drains_the_queue_then_exits_0(daemon: Callable[[], Proc]) -> None:
    proc = daemon()
    # a long stream whose two bursts come last: their alerts show only if the queue drained
    background = chatter(20_000, 0.5)
    bursts = [
        {**r, "created_at": r["created_at"] + 10_000}
        for r in stream(burst("r1", 60, 30, 4, ANGRY), burst("r2", 90, 30, 4, ANGRY))
    ]
    body = b"".join(orjson.dumps(r) + b"\n" for r in [*background, *bursts])
    headers = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN_A}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(proc.base + "/v1/mentions", data=io.BytesIO(body), headers=headers) as r,
    ):
        assert r.status == 202
        assert (await r.json())["accepted"] == len(background) + len(bursts)
    proc.process.send_signal(signal.SIGTERM)
    proc.process.send_signal(signal.SIGTERM)  # twice: harmless
    started = time.monotonic()
    assert await asyncio.wait_for(proc.process.wait(), 25) == 0
    assert time.monotonic() - started < 20  # within daemon.shutdown_timeout
    logs = proc.logs()
    stopping = next(line for line in logs.splitlines() if "msg=stopping" in line)
    assert int(stopping.split("queued=")[1].split()[0]) > 0  # there was something to drain
    alerts = [line for line in proc.out.read_text().splitlines() if "firing" in line]
    assert {line.split()[3] for line in alerts} == {"r1", "r2"}
    assert "drain timed out" not in logs


async def test_sigterm_delivers_the_retries_due_before_the_shutdown_timeout(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The default in-memory outbox loses what it has not sent when the process ends, so
    shutdown waits for the retries due in time: every alert's first two attempts fail, its
    retries come 0.25-0.5 s and 0.5-1 s later, well within shutdown_timeout (20 s)."""
    receiver.fail_first(2)
    route = f"  routes: [{{name: chat, urls: ['{receiver.url('/chat')}']}}]"
    async with started(tmp_path, "notify:", "  retry_initial: 500ms", route) as proc:
        bursts = stream(burst("r1", 60, 30, 4, ANGRY), burst("r2", 90, 30, 4, ANGRY))
        body = b"".join(orjson.dumps(r) + b"\n" for r in bursts)
        headers = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN_A}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(proc.base + "/v1/mentions", data=body, headers=headers) as r,
        ):
            assert r.status == 202
        await receiver.wait_for(1)  # an alert's first attempt failed: its retries wait
        proc.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.process.wait(), 25) == 0
    transitions = proc.out.read_text().splitlines()  # the console: one line per transition
    assert {line.split()[3] for line in transitions} == {"r1", "r2"}
    delivered = receiver.answered_ok()
    assert len(delivered) == len({r.body for r in delivered}) == len(transitions)
    assert len(receiver.requests) == 3 * len(transitions)  # 2 failures each, then delivered
    logs = proc.logs()
    assert "notifications_left=0" in logs
    assert "left unsent" not in logs


async def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
