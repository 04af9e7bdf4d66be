"""The benchmarks' own redis-server and mosquitto on free loopback ports (never the standard
ones), stopped when the benchmark ends. The tests have their own, richer fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # mosquitto lives here, often off PATH


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))
    if found is None:
        raise SystemExit(f"{name} is not installed: run scripts/ensure-servers.sh")
    return found


@contextmanager
def server(command: list[str], port: int) -> Iterator[None]:
    """Run ``command`` until the block ends, once its ``port`` accepts connections."""
    # our own binaries found on PATH, with arguments we built
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while not _accepts(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{command[0]} did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A redis-server keeping nothing on disk; yields its URL."""
    port = free_port()
    command = [binary("redis-server"), "--port", str(port), "--bind", HOST, "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    with server(command, port):
        yield f"redis://{HOST}:{port}/0"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False
