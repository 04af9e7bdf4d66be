"""The live daemon through a real Mosquitto and Redis: sustained mentions/s and latency.

Starts its own redis-server and mosquitto on free loopback ports (never the standard ones),
runs one daemon in this process (Redis state, MQTT source, no notification routes) and a
publisher in another process. A mention's ``created_at`` is set when it is published, so
"latency" is publish -> decided (engine done and the outbox written), per mention.

- backlog: ``--backlog`` mentions queued at the broker for the daemon's session first (as after
  an outage), then drained: the daemon's own rate, whatever the publisher's speed.
- sustained: the same backlog published as fast as possible while the daemon reads it; on a
  small machine the publisher shares the cores and may be what limits it.
- 1k/s and 5k/s offered: p50/p99 latency at a steady rate, for ``--seconds`` each: over all
  mentions, and over those published after the first ``--warmup`` seconds (the daemon's
  caches cold, the stream's first threads all new: a start-up transient, not its steady state).

Two references, measured on the same mentions right before each backlog and sustained run
(``--repeat`` times each; the medians are printed last), memory store, per CPU second:
- engine: ``engine.process`` on mentions decoded beforehand (the stricter one);
- replay command: what ``watchtower replay FILE`` runs (read the file, decode, engine) on
  those mentions written to a JSONL file; its wall rate is what the command prints.
Targets: sustained >= 0.5 x replay; p99 < 50 ms at 5k/s. Measures and prints, asserts nothing.

    .venv/bin/python benchmarks/live.py [--seconds 10] [--repeat 3] [--threads 3000]
        [--batch-wait 0] [--batch-size 1024] [--per-message 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import IO, Any

import aiomqtt
import orjson

from watchtower.config import (
    Config,
    DaemonConfig,
    HttpConfig,
    MqttConfig,
    NotifyConfig,
    StateConfig,
)
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import Daemon
from watchtower.deadletter import DeadLetter
from watchtower.mention import from_dict
from watchtower.replay import replay
from watchtower.sources.inbox import Arrival
from watchtower.state.redis_store import connect
from watchtower.synth import generate
from watchtower.wiring import build_engine

from bench_servers import HOST, binary, free_port, redis_server, server

Record = dict[str, Any]
BURST_MESSAGES = 50_000  # messages per mosquitto_pub client when publishing a backlog


# --- the servers ------------------------------------------------------------------------------


@contextmanager
def servers(directory: Path) -> Iterator[tuple[str, int]]:
    """redis-server (no persistence) and a mosquitto configured as config/mosquitto.conf says."""
    mqtt_port = free_port()
    conf = directory / "mosquitto.conf"
    lines = [f"listener {mqtt_port} {HOST}", "allow_anonymous true", "set_tcp_nodelay true"]
    lines += ["max_queued_messages 1000000", "max_inflight_messages 100", "persistence false"]
    conf.write_text("\n".join(lines) + "\n")
    with redis_server(directory) as url, server([binary("mosquitto"), "-c", str(conf)], mqtt_port):
        yield url, mqtt_port


async def flushall(url: str) -> None:
    client = connect(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


# --- the publisher (its own process) ----------------------------------------------------------


def publish(port: int, topic: str, path: str, rate: float, per_message: int) -> None:
    """Publish the records in ``path`` at ``rate``/s (0: at once), created_at = now, QoS 1.

    ``per_message`` > 1: that many mentions per message, as a JSON array (a batching bridge).
    The MQTT client is mosquitto_pub (C, from mosquitto-clients) reading one message per line:
    paho, a Python client, took ~170 us of CPU per QoS 1 message here (mosquitto_pub and this
    pacer: ~13 us), more than the daemon spends per mention, so on two cores the publisher,
    not the daemon, set the rates this benchmark reports.
    """
    records: list[Record] = orjson.loads(Path(path).read_bytes())
    if rate > 0:
        _publish_paced(port, topic, records, rate, per_message)
        return
    # mosquitto_pub 2.0.11 fed 100k lines at once delivered ~35k of them (60k: all), so a
    # backlog goes in parts, one client each
    step = BURST_MESSAGES * per_message
    for start in range(0, len(records), step):
        with _mosquitto_pub(port, topic) as out:
            for sent in range(start, min(start + step, len(records)), per_message):
                out.write(_line(records[sent : sent + per_message], per_message))


def _publish_paced(
    port: int, topic: str, records: list[Record], rate: float, per_message: int
) -> None:
    with _mosquitto_pub(port, topic) as out:
        started = time.perf_counter()
        for sent in range(0, len(records), per_message):
            due = started + sent / rate
            while (delay := due - time.perf_counter()) > 0:
                time.sleep(min(delay, 0.001))
            out.write(_line(records[sent : sent + per_message], per_message))
            out.flush()  # each line leaves now, so its created_at is its send time


def _line(chunk: list[Record], per_message: int) -> bytes:
    """One message: the mentions stamped now."""
    for record in chunk:
        record["created_at"] = time.time()
    return orjson.dumps(chunk if per_message > 1 else chunk[0]) + b"\n"


@contextmanager
def _mosquitto_pub(port: int, topic: str) -> Iterator[IO[bytes]]:
    """mosquitto_pub's input: one message per line; it ends once the last one is acknowledged."""
    command = [binary("mosquitto_pub"), "-h", HOST, "-p", str(port), "-t", topic]
    command += ["-q", "1", "-M", "1000", "--nodelay", "-l", "-i", f"bench-pub-{uuid.uuid4()}"]
    # our own binary and arguments
    with subprocess.Popen(command, stdin=subprocess.PIPE) as client:  # noqa: S603
        assert client.stdin is not None
        # It reads its input only once connected: lines written before would leave in one
        # burst with stale stamps. Connecting over loopback takes milliseconds.
        time.sleep(0.5)
        yield client.stdin
        client.stdin.close()
        client.wait(120)


# --- one live run -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    offered: float  # mentions/s, 0 for a backlog
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (published, latency)
    # (wall time, this process's CPU time, mentions processed) after each batch
    done_at: list[tuple[float, float, int]] = field(default_factory=list)

    def throughput(self) -> float:
        """Mentions per wall-clock second, first to last batch."""
        if len(self.done_at) < 2:
            return 0.0
        (t0, _, n0), (t1, _, n1) = self.done_at[0], self.done_at[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def per_cpu_second(self) -> float:
        """Mentions per CPU second of the daemon's process: its rate on a core of its own."""
        if len(self.done_at) < 2:
            return 0.0
        (_, c0, n0), (_, c1, n1) = self.done_at[0], self.done_at[-1]
        return (n1 - n0) / (c1 - c0) if c1 > c0 else 0.0

    def percentile(self, q: float, warmup: float = 0.0) -> float:
        """Latency in ms at quantile ``q`` of the mentions published ``warmup`` s or more after
        the first one."""
        if not self.latencies:
            return 0.0
        start = min(published for published, _ in self.latencies) + warmup
        values = sorted(latency for published, latency in self.latencies if published >= start)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0


def live_config(
    redis_url: str,
    port: int,
    topic: str,
    batch_wait: float | None = None,
    batch_size: int | None = None,
) -> Config:
    daemon = DaemonConfig()
    if batch_wait is not None:
        daemon = dataclasses.replace(daemon, batch_wait=Duration(batch_wait))
    if batch_size is not None:
        daemon = dataclasses.replace(daemon, batch_size=batch_size)
    return Config(
        state=StateConfig(backend="redis", redis_url=Secret(redis_url)),
        http=HttpConfig(enabled=False),
        mqtt=MqttConfig(
            enabled=True, host=HOST, port=port, topics=(topic,), client_id=f"bench-{uuid.uuid4()}"
        ),
        notify=NotifyConfig(console=False),
        daemon=daemon,
    )


async def open_session(config: Config) -> None:
    """Subscribe under the daemon's client id and leave: the broker queues what comes next."""
    mqtt_config = config.mqtt
    async with aiomqtt.Client(
        mqtt_config.host, mqtt_config.port, identifier=mqtt_config.client_id, clean_session=False
    ) as client:
        await client.subscribe(mqtt_config.topics[0], qos=1)


def start_publisher(
    config: Config, records: list[Record], rate: float, per_message: int, path: Path
) -> multiprocessing.process.BaseProcess:
    # the records go by file: a pipe would block the event loop until the child reads them
    path.write_bytes(orjson.dumps(records))
    publisher = multiprocessing.get_context("spawn").Process(
        target=publish,
        args=(config.mqtt.port, config.mqtt.topics[0], str(path), rate, per_message),
    )
    publisher.start()
    return publisher


async def run_live(
    run: Run,
    config: Config,
    records: list[Record],
    limit: float,
    per_message: int = 1,
    queued: bool = False,
) -> None:
    """``queued``: publish everything to the broker before the daemon starts (a backlog)."""
    path = Path(tempfile.mkdtemp()) / "records.json"
    publisher = None
    if queued:
        await open_session(config)
        publisher = start_publisher(config, records, 0, per_message, path)
        await asyncio.to_thread(publisher.join, 300)
    daemon = Daemon(config, handle_signals=False)
    finished = measure(run, daemon, len(records))
    async with asyncio.TaskGroup() as group:
        group.create_task(daemon.run(), name="daemon")
        await asyncio.wait_for(daemon.ready.wait(), 10)
        mqtt_source = daemon.runtime.mqtt
        while mqtt_source is None or not mqtt_source.connected:  # noqa: ASYNC110 - a flag
            await asyncio.sleep(0.05)
        if publisher is None:
            publisher = start_publisher(config, records, run.offered, per_message, path)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), limit)
        await asyncio.to_thread(publisher.join, 30)
        shutil.rmtree(path.parent)
        daemon.stop()
    processed = run.done_at[-1][2] if run.done_at else 0
    if processed < len(records):
        print(f"  {run.name}: only {processed} of {len(records)} processed in {limit:.0f} s")


def measure(run: Run, daemon: Daemon, total: int) -> asyncio.Event:
    """Record each batch's latencies and progress in ``run``; the event is set after ``total``."""
    runtime = daemon.runtime
    decide = runtime.decide
    finished = asyncio.Event()
    processed = 0

    async def measured(arrivals: Sequence[Arrival]) -> Any:
        nonlocal processed
        result = await decide(arrivals)
        now = time.time()
        run.latencies.extend((a.mention.created_at, now - a.mention.created_at) for a in arrivals)
        processed += len(arrivals)
        run.done_at.append((time.perf_counter(), time.process_time(), processed))
        if processed >= total:
            finished.set()
        return result

    runtime.decide = measured  # type: ignore[method-assign]
    return finished


# --- the reference and the report -------------------------------------------------------------


async def engine_rate(records: list[Record]) -> float:
    """Mentions per CPU second of ``engine.process`` alone, on mentions decoded beforehand."""
    config = Config()
    engine = build_engine(config)
    mentions = [from_dict(r, config.input.max_text_chars) for r in records]
    started = time.process_time()  # CPU time: the machine may be busy with other work
    for i in range(0, len(mentions), 512):
        await engine.process(mentions[i : i + 512])
    return len(mentions) / (time.process_time() - started)


async def replay_command_rate(records: list[Record]) -> tuple[float, float]:
    """``watchtower replay FILE --quiet`` on ``records`` as JSONL: (per wall s, per CPU s)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        engine = build_engine(Config())
        started = time.process_time()
        summary = await replay([str(path)], engine, lambda _: None, DeadLetter(None))
        cpu = time.process_time() - started
    return summary.mentions / summary.seconds, summary.mentions / cpu


@dataclass(frozen=True)
class References:
    engine: float  # mentions per CPU second
    replay: float  # mentions per CPU second of the replay command
    replay_wall: float  # what `watchtower replay` prints as its speed

    @classmethod
    def measure(cls, records: list[Record]) -> References:
        engine = asyncio.run(engine_rate([dict(r) for r in records]))
        replay_wall, replay_cpu = asyncio.run(replay_command_rate(records))
        return cls(engine, replay_cpu, replay_wall)

    def show(self) -> None:
        print(
            f"reference: engine alone {self.engine:7,.0f} per CPU s; `watchtower replay` on the"
            f" same mentions as a file {self.replay:7,.0f} per CPU s"
            f" ({self.replay_wall:,.0f}/s wall, as it prints)",
            flush=True,
        )


def stream(seed: int, threads: int, hours: float, size: int) -> list[Record]:
    """``size`` generated mentions without labels (live mentions carry none)."""
    out: list[Record] = []
    for m in generate(seed, max(threads, size // 8), hours):
        record = dict(m)
        record.pop("label", None)
        out.append(record)
    return out[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each paced run")
    parser.add_argument("--backlog", type=int, default=30_000, help="mentions for sustained")
    parser.add_argument("--threads", type=int, default=3000)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-wait", type=float, help="daemon.batch_wait (default: config)")
    parser.add_argument("--batch-size", type=int, help="daemon.batch_size (default: config)")
    parser.add_argument("--per-message", type=int, default=1, help="mentions per MQTT message")
    parser.add_argument("--repeat", type=int, default=3, help="backlog and sustained runs")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out of p50/p99")
    args = parser.parse_args()
    size = max(args.backlog, int(5000 * args.seconds))
    records = stream(args.seed, args.threads, args.hours, size)
    backlog = records[: args.backlog]
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as (redis_url, port):

        def run_daemon(run: Run, chunk: list[Record], queued: bool) -> None:
            asyncio.run(flushall(redis_url))
            topic = f"bench/{uuid.uuid4()}"
            config = live_config(redis_url, port, topic, args.batch_wait, args.batch_size)
            records_ = [dict(r) for r in chunk]
            asyncio.run(run_live(run, config, records_, 120, args.per_message, queued))

        # Each run right after its own references: this machine's speed drifts by a quarter
        # within minutes, so a ratio is only fair between measurements taken close together.
        ratios: dict[str, list[float]] = {"backlog": [], "sustained": []}
        for _ in range(max(1, args.repeat)):
            for name, queued in (("backlog", True), ("sustained", False)):
                refs = References.measure(backlog)
                refs.show()
                run = Run(name, 0)
                run_daemon(run, backlog, queued)
                report(run, refs, args.warmup)
                ratios[name].append(run.per_cpu_second() / refs.replay)
        for name, values in ratios.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name:>9}: median {median(values):.2f} x replay command ({shown})")
        for rate in (1000, 5000):
            run = Run(f"{rate // 1000}k/s", rate)
            run_daemon(run, records[: int(rate * args.seconds)], False)
            report(run, refs, args.warmup)


def report(run: Run, refs: References, warmup: float) -> None:
    rate, cpu = run.throughput(), run.per_cpu_second()
    line = f"{run.name:>9}: {rate:7,.0f} mentions/s wall, {cpu:7,.0f} per CPU s"
    line += f" = {cpu / refs.replay:.2f} x replay command, {cpu / refs.engine:.2f} x engine"
    if run.offered:
        line += f"; latency p50 {run.percentile(0.5):6.1f} ms, p99 {run.percentile(0.99):6.1f} ms"
        steady = run.percentile(0.5, warmup), run.percentile(0.99, warmup)
        line += f" (after {warmup:g} s: p50 {steady[0]:.1f} ms, p99 {steady[1]:.1f} ms)"
    print(line, flush=True)


if __name__ == "__main__":
    main()
