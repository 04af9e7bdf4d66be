"""Real servers for the tests, on loopback at free ports: redis-server, mosquitto, a receiver.

Never the standard ports (6379, 1883): something else may run there, and tests must not depend
on it. The binaries are installed with apt when missing and we are root; otherwise the fixtures
skip with the reason ``missing_binaries`` gives.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from watchtower.daemon import Daemon
from watchtower.sources.http import HttpServer

HOST = "127.0.0.1"
# The bearer token the HTTP API tests configure, and the headers that carry it.
TOKEN = "s3cret-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json", **AUTH}
NDJSON = {"Content-Type": "application/x-ndjson", **AUTH}
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # mosquitto lives here, often off PATH
_START_TIMEOUT = 10.0


def free_port() -> int:
    """A port the kernel just handed out on loopback (never a standard one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which(name, path=path)


def missing_binaries() -> str | None:
    """Install redis-server and mosquitto if needed and possible; else why we cannot."""
    wanted = {"redis-server": "redis-server", "mosquitto": "mosquitto"}
    missing = [pkg for binary, pkg in wanted.items() if find_binary(binary) is None]
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"{', '.join(missing)} not installed (apt-get install -y {' '.join(missing)})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
        done = subprocess.run(command, capture_output=True, env=env, check=False, timeout=600)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-500:]}"
    still = [b for b in wanted if find_binary(b) is None]
    return f"{', '.join(still)} still missing after apt-get install" if still else None


def _wait(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``check()`` until true; fail with the server's log if it exits or never answers."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if check():
            return
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{what} did not answer within {_START_TIMEOUT} s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _tied_to_us(command: list[str]) -> list[str]:
    """Prefix setpriv (Linux) so the server gets SIGTERM when the test run dies, even killed:
    fixture teardown covers every other exit, but a killed pytest would leave it running."""
    setpriv = find_binary("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (servers save their state on it), then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def redis_command(port: int, *words: str) -> bytes:
    """One command over a raw socket: the helpers need no Redis client."""
    body = b"".join(f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words)
    with socket.create_connection((HOST, port), timeout=2) as sock:
        sock.sendall(f"*{len(words)}\r\n".encode() + body)
        return sock.recv(65536)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server: no snapshots, no AOF, its files in ``directory``."""

    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.port = free_port() if port is None else port  # a port: a restart, emptied
        self.directory = directory
        self._log = directory / "redis.log"
        command = [binary, "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", str(directory), "--logfile", str(self._log)]
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(_tied_to_us(command))
        _wait(self._pong, "redis-server", self._proc, self._log)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def flush(self) -> None:
        """FLUSHALL: every test starts from an empty server."""
        reply = redis_command(self.port, "FLUSHALL")
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def pause(self) -> None:
        """SIGSTOP: it keeps its connections and answers nothing, as a Redis whose host is gone
        from the network does (a stopped server refuses connections: clients know at once)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # paused, it would act on SIGTERM only then
        _stop(self._proc)
        self._proc = None

    def _pong(self) -> bool:
        try:
            return redis_command(self.port, "PING").startswith(b"+PONG")
        except OSError:
            return False


class MosquittoServer:
    """A mosquitto broker with persistence; ``restart()`` keeps its sessions and queues."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.host = HOST
        self.port = free_port()
        self.binary = binary
        self.directory = directory
        self.config = directory / "mosquitto.conf"
        self._log = directory / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config(inflight=True)
        try:
            self.start()
        except RuntimeError:  # an older broker without max_inflight_messages 0: go without it
            self._write_config(inflight=False)
            self.start()

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                _tied_to_us([self.binary, "-c", str(self.config)]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(lambda: _accepts(self.port), "mosquitto", self._proc, self._log)

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file on the way out."""
        _stop(self._proc)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _write_config(self, *, inflight: bool) -> None:
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {data}/",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            # As root mosquitto switches to the 'mosquitto' user, who cannot write our tmp dir.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if inflight:
            lines.append("max_inflight_messages 0")
        self.config.write_text("\n".join(lines) + "\n")


@dataclass
class Received:
    path: str
    content_type: str
    body: bytes
    data: object  # the parsed JSON, or the form as a dict, or None
    status: int = 0  # what the receiver answered


@dataclass
class Receiver:
    """A local notification target recording every POST; ``fail_next`` makes it answer 500,
    ``fail_path`` makes one path always fail, ``fail_first`` fails the first attempts of each
    body at each path (a retry posts the same body), ``delay`` holds every answer back."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    failures_left: int = 0
    failure_status: int = 500
    failing_paths: dict[str, int] = field(default_factory=dict)  # path -> status
    first_failures: int = 0
    delay: float = 0.0  # seconds before answering
    _attempts: dict[tuple[str, bytes], int] = field(default_factory=dict)  # requests seen
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        """An apprise target (json://, form://) or plain http:// URL for ``path``."""
        return f"{scheme}://{HOST}:{self.port}{path}"

    def fail_next(self, count: int, status: int = 500) -> None:
        self.failures_left = count
        self.failure_status = status

    def fail_path(self, path: str, status: int = 500) -> None:
        self.failing_paths[path] = status

    def fail_first(self, attempts: int) -> None:
        """Answer 500 to the first ``attempts`` requests of every body at every path."""
        self.first_failures = attempts

    def answered_ok(self) -> list[Received]:
        """The requests it answered 200."""
        return [r for r in self.requests if r.status == 200]

    async def wait_for(self, count: int) -> list[Received]:
        """Wait (up to 5 s) until ``count`` requests were recorded, failed ones included."""
        async with asyncio.timeout(5.0):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received(request.path, request.content_type, body, await _parse(request, body))
        self.requests.append(received)
        self._arrived.set()
        received.status = self._status(received)
        await asyncio.sleep(self.delay)
        if received.status != 200:
            return web.Response(status=received.status, text="failing on purpose")
        return web.Response(text="ok")

    def _status(self, received: Received) -> int:
        key = (received.path, received.body)
        seen = self._attempts[key] = self._attempts.get(key, 0) + 1
        if received.path in self.failing_paths:
            return self.failing_paths[received.path]
        if seen <= self.first_failures:
            return 500
        if self.failures_left > 0:
            self.failures_left -= 1
            return self.failure_status
        return 200


async def _parse(request: web.Request, body: bytes) -> object:
    if request.content_type == "application/json":
        return orjson.loads(body) if body else None
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return dict((await request.post()).items())
    return None


async def start_receiver() -> tuple[Receiver, web.AppRunner]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    return receiver, runner


@asynccontextmanager
async def daemon_api(daemon: Daemon) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The daemon's HTTP API on a free loopback port, its base URL and a client session; the
    daemon (server included) is torn down when the block ends."""
    server = HttpServer(daemon.runtime, HOST, 0)
    await server.start()
    daemon.http = server  # torn down with the daemon
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://{HOST}:{server.port}", session
    finally:
        await daemon.teardown()
