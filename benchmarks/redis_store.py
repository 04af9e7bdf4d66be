"""What the Redis store costs per mention: load + save of a batch, at batch sizes 1, 100 and 500.

Starts its own redis-server on a free loopback port (never 6379), fills it with realistic
threads (the default feature config: 3 half-lives, 12 buckets, 3 top mentions), then times the
engine's pattern: load the batch's threads, touch each, save them (one CAS script). Loading is
one MGET for a worker that holds no thread in process (``state.cached_threads: 0``, or threads
another worker saved last), and nothing for one that saved them itself (the default). Then the
same with thread resolution in front, as the engine runs it: every mention replies to one of
the previous batch, so its parent is looked up, and each mention's root is remembered; and
that with the repeat check (the batch's own ids asked for with its parents: did another worker
decide them?). Prints Redis round trips per batch too. Measures, asserts nothing.

    .venv/bin/python benchmarks/redis_store.py [--mentions 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from watchtower.state.memory import MemoryStore
from watchtower.state.redis_store import RedisStore
from watchtower.state.state_codec import encode_state
from watchtower.state.store import Store
from watchtower.state.thread_state import DecaySpec, Observation, ThreadState, new_state, observe

from bench_servers import redis_server

SPEC = DecaySpec.from_half_lives((300.0, 1800.0, 10800.0), 600.0, 12, 3)
THREADS = 5000
T0 = 1_767_600_000.0
_BATCHES = itertools.count()


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


async def run(
    store: Store, batch: int, mentions: int, *, roots: bool = False, check: bool = False
) -> tuple[float, float]:
    """Microseconds per mention of load + touch + save in batches of ``batch`` threads, of wall
    time and of this process's CPU (the client's: Redis runs in its own process); with
    ``roots``, resolving each mention's thread (parent lookup, root remembered) comes first,
    and with ``check`` the batch's own ids are looked up with the parents (the repeat check)."""
    ids = [f"twitter:{1_900_000_000_000 + i}" for i in range(THREADS)]
    rounds = max(1, mentions // batch)
    started, cpu = time.perf_counter(), time.process_time()
    for r in range(rounds):
        start = (r * batch) % (THREADS - batch + 1)
        tids = ids[start : start + batch]
        if roots:
            n = next(_BATCHES)  # one event-time second per batch, across runs: never back
            parents = [f"m{n - 1}-{k}" for k in range(batch)]
            own = [f"m{n}-{k}" for k in range(batch)]
            if check:
                known, decided = await store.lookup_batch(parents, own)
                if decided:
                    raise RuntimeError("new ids taken for decided: the store is broken")
            else:
                known = await store.lookup_roots(parents)
            replies = {
                mid: known.get(p, tid) for mid, p, tid in zip(own, parents, tids, strict=True)
            }
            await store.remember_roots(replies, T0 + n)
        states = await store.load(tids)
        for state in states.values():
            state.count += 1
        if await store.save(states.values()):
            raise RuntimeError("conflicts with a single writer: the store is broken")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall / (rounds * batch) * 1e6, cpu / (rounds * batch) * 1e6


def count_commands(store: RedisStore) -> list[int]:
    """A one-item list counting the commands (round trips) the store's client sends from now."""
    sent = [0]
    send: Callable[..., Awaitable[Any]] = store.client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent[0] += 1
        return await send(*args, **options)

    store.client.execute_command = counted  # type: ignore[method-assign]
    return sent


async def measure(url: str, mentions: int) -> None:
    options: dict[str, Any] = {"thread_ttl": 48 * 3600, "max_threads": 10**6, "root_memory": 60}
    cold = RedisStore(url, cached_threads=0, **options)
    # its own database: a worker writing the same threads would leave the held states stale
    held = RedisStore(url.rsplit("/", 1)[0] + "/1", cached_threads=THREADS, **options)
    memory = MemoryStore(48 * 3600, 10**6, 60, 10**6)
    try:
        for store in (cold, held, memory):
            await store.save([thread(i) for i in range(THREADS)])
        size = len(encode_state(thread(0), 1))
        print(f"state: {size} bytes serialised, {THREADS} threads stored")
        print("µs per mention, wall (client CPU): state load+save (1 mention = 1 thread), by a")
        print("worker holding no thread in process (cold) and by one holding them all (held);")
        print("and the latter with thread resolution in front (parents looked up, roots kept),")
        print("then with the repeat check too (the batch's ids looked up with the parents)")
        head = ("redis cold", "redis held", "memory", "held +roots", "+ids")
        print(f"{'batch':>6} {head[0]:>16} {head[1]:>16} {head[2]:>8} {head[3]:>16} {head[4]:>16}")
        for batch in (1, 100, 500):
            n = mentions // 10 if batch == 1 else mentions
            # best of 3: the figure a quiet machine gives, not a neighbour's burst
            costs = [min([await run(store, batch, n) for _ in range(3)]) for store in (cold, held)]
            base = min([await run(memory, batch, n) for _ in range(3)])
            full, checked = [
                min([await run(held, batch, n, roots=True, check=check) for _ in range(3)])
                for check in (False, True)
            ]
            line = "".join(f" {w:>8.1f} ({c:>5.1f})" for w, c in (*costs, full, checked))
            print(f"{batch:>6}{line[: 2 * 17]} {base[0]:>8.2f}{line[2 * 17 :]}")
        for name, store in (("cold", cold), ("held", held)):
            sent = count_commands(store)
            for check in (False, True):
                sent[0] = 0
                await run(store, 100, 10_000, roots=True, check=check)
                also = " and the repeat check" if check else ""
                print(f"Redis round trips per batch with roots{also}, {name}: {sent[0] / 100:.2f}")
    finally:
        await cold.close()
        await held.close()


def main(mentions: int) -> None:
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as url:
        asyncio.run(measure(url, mentions))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    main(parser.parse_args().mentions)
