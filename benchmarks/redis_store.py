"""What the Redis store costs per mention: load + save of a batch, at batch sizes 1, 100 and 500.

Starts its own redis-server on a free loopback port (never 6379), fills it with realistic
threads (the default feature config: 3 half-lives, 12 buckets, 3 top mentions), then times the
engine's pattern: load the batch's threads (one MGET), touch each, save them (one CAS script).
Measures, asserts nothing.

    .venv/bin/python benchmarks/redis_store.py [--mentions 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from watchtower.state.memory import MemoryStore
from watchtower.state.redis_store import RedisStore, encode_state
from watchtower.state.store import Store
from watchtower.state.thread_state import DecaySpec, Observation, ThreadState, new_state, observe

from bench_servers import redis_server

SPEC = DecaySpec.from_half_lives((300.0, 1800.0, 10800.0), 600.0, 12, 3)
THREADS = 5000
T0 = 1_767_600_000.0


def thread(i: int) -> ThreadState:
    """A thread that has seen a few dozen mentions: full sketch-ish, buckets, top posts."""
    state = new_state(f"twitter:{1_900_000_000_000 + i}", T0, SPEC)
    state.brand, state.platform = "acme", "twitter"
    for k in range(40):
        at = T0 + k * 37.0
        text = f"@acme my order {i} still has not arrived, day {k} of waiting #fail"
        obs = Observation(at, f"m{i}-{k}", f"a{k}", 10 * k * k, 0.6, f"h{k}", "https://x/y", text)
        observe(state, obs, SPEC)
    return state


async def run(store: Store, batch: int, mentions: int) -> float:
    """Microseconds per mention of load + touch + save in batches of ``batch`` threads."""
    ids = [f"twitter:{1_900_000_000_000 + i}" for i in range(THREADS)]
    rounds = max(1, mentions // batch)
    started = time.perf_counter()
    for r in range(rounds):
        start = (r * batch) % (THREADS - batch + 1)
        states = await store.load(ids[start : start + batch])
        for state in states.values():
            state.count += 1
        if await store.save(states.values()):
            raise RuntimeError("conflicts with a single writer: the store is broken")
    return (time.perf_counter() - started) / (rounds * batch) * 1e6


async def run_roots(store: Store, batch: int, mentions: int) -> float:
    """Microseconds per mention of what thread resolution adds: look up parents, remember."""
    rounds = max(1, mentions // batch)
    started = time.perf_counter()
    for r in range(rounds):
        ids = [f"m{r}-{k}" for k in range(batch)]
        await store.lookup_roots([f"m{r - 1}-{k}" for k in range(batch)])
        await store.remember_roots(dict.fromkeys(ids, f"root{r}"), T0 + r)
    return (time.perf_counter() - started) / (rounds * batch) * 1e6


async def measure(url: str, mentions: int) -> None:
    redis_store = RedisStore(url, thread_ttl=48 * 3600, max_threads=10**6, root_memory=60)
    memory = MemoryStore(48 * 3600, 10**6, 60, 10**6)
    try:
        for store in (redis_store, memory):
            await store.save([thread(i) for i in range(THREADS)])
        size = len(encode_state(thread(0), 1))
        print(f"state: {size} bytes serialised, {THREADS} threads stored")
        print("µs per mention: state load+save (1 mention = 1 thread), and roots lookup+remember")
        print(f"{'batch':>6} {'redis state':>12} {'memory state':>13} {'redis roots':>12}")
        for batch in (1, 100, 500):
            n = mentions // 10 if batch == 1 else mentions
            # best of 3: the figure a quiet machine gives, not a neighbour's burst
            cost = min([await run(redis_store, batch, n) for _ in range(3)])
            base = min([await run(memory, batch, n) for _ in range(3)])
            roots = min([await run_roots(redis_store, batch, n) for _ in range(3)])
            print(f"{batch:>6} {cost:>12.1f} {base:>13.2f} {roots:>12.1f}")
    finally:
        await redis_store.close()


def main(mentions: int) -> None:
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as url:
        asyncio.run(measure(url, mentions))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    main(parser.parse_args().mentions)
