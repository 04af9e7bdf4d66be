"""Replay throughput against its floor, in one run, and memory per 100k live threads.

The floor is decode plus the sentiment stage alone (the same model, configured the same way,
on the same texts): the work no engine can skip. The ratio replay / floor says what the rest of
the engine (threads, state, features, score, decide) costs on top. Target: ratio >= 0.8.
Floor and replay run alternately ``--repeat`` times and the best time of each is compared (as
timeit does): on a shared machine the slow spells are noise, not the code.

    .venv/bin/python benchmarks/throughput.py [--threads 20000] [--hours 6] [--seed 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

from watchtower.alerting.alert import AlertTransition
from watchtower.config import Config
from watchtower.deadletter import DeadLetter
from watchtower.heap import settle, streaming_heap
from watchtower.mention import decode, from_dict
from watchtower.replay import BATCH_SIZE, replay
from watchtower.scoring.sentiment import SentimentModel
from watchtower.synth import generate
from watchtower.wiring import build_engine


def floor(lines: list[bytes], config: Config) -> tuple[float, float]:
    """(wall, CPU) seconds for decode + sentiment (score, then learn where labelled, as the
    engine does)."""
    model = SentimentModel(config.sentiment)
    learn = config.sentiment.learn
    with streaming_heap():  # the collector set as `replay` sets it: the same footing
        started, cpu = time.perf_counter(), time.process_time()
        for number, line in enumerate(lines):
            m = decode(line, config.input.max_text_chars)
            model.negativity(m.text)
            if learn and m.label is not None:
                model.learn(m.text, m.label)
            if number % BATCH_SIZE == 0:
                settle()  # as replay does between batches
        return time.perf_counter() - started, time.process_time() - cpu


async def full_replay(path: Path, config: Config) -> tuple[float, float, int]:
    """(wall seconds as `replay` reports them, CPU seconds, transitions)."""
    engine = build_engine(config)
    alerts: list[AlertTransition] = []
    cpu = time.process_time()
    summary = await replay([str(path)], engine, alerts.append, DeadLetter(None))
    return summary.seconds, time.process_time() - cpu, len(alerts)


async def memory_per_100k_threads(config: Config) -> float:
    """MiB held by the store for 100k threads of 5 mentions each (tracemalloc, its own phase)."""
    engine = build_engine(config)
    records = [
        {
            "id": f"m{t}-{i}",
            "created_at": 1.7e9 + t * 0.01 + i,
            "text": "",
            "thread_id": f"t{t}",
            "author": {"id": f"u{t}-{i}", "followers": 10 * i},
        }
        for t in range(100_000)
        for i in range(5)
    ]
    mentions = [from_dict(r, 100) for r in records]
    del records
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(0, len(mentions), 512):
        await engine.process(mentions[i : i + 512])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="alternated runs of each")
    args = parser.parse_args()
    config = Config()
    lines = [orjson.dumps(r) + b"\n" for r in generate(args.seed, args.threads, args.hours)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        path.write_bytes(b"".join(lines))
        floors, replays, floors_cpu, replays_cpu = [], [], [], []
        for _ in range(args.repeat):  # alternated: a slow spell of the machine hits both
            wall, cpu = floor(lines, config)
            floors.append(wall)
            floors_cpu.append(cpu)
            wall, cpu, alerts = asyncio.run(full_replay(path, config))
            replays.append(wall)
            replays_cpu.append(cpu)
    n = len(lines)
    print(f"mentions: {n:,} ({args.threads:,} threads over {args.hours:g} h, seed {args.seed})")
    pairs = ", ".join(f"{f / r:.2f}" for f, r in zip(floors, replays, strict=True))
    print(f"ratio of each run, floor then replay: {pairs}; the best of each below")
    floor_s, replay_s = min(floors), min(replays)
    print(f"floor (decode + sentiment): {n / floor_s:10,.0f} mentions/s")
    print(f"replay (whole engine):      {n / replay_s:10,.0f} mentions/s  ({alerts} transitions)")
    print(f"ratio replay / floor:       {floor_s / replay_s:10.2f}  (target >= 0.8)")
    # CPU time leaves out the time other work on the machine took from this process
    cpu_ratio = min(floors_cpu) / min(replays_cpu)
    print(f"the same by CPU time:       {cpu_ratio:10.2f}  (best of each)")
    mib = asyncio.run(memory_per_100k_threads(config))
    print(f"memory per 100k live threads: {mib:,.0f} MiB")


if __name__ == "__main__":
    main()
