"""What the repeat check costs the engine on Redis: one synthetic stream decided with it on and off.

Starts its own redis-server on a free loopback port (never 6379). The engine runs on a
RedisStore (the default config: threads and roots held in process, as one worker reading its
own stream holds them), fed in batches of 64 and of 512 (replay's cut), with
``input.remembered_ids`` at its default and at 0 (off: neither this process's memory of ids nor
the store's answer for the batch's ids, which costs a lookup round trip per batch). The runs
alternate ``--repeat`` times on a flushed database; the best of each is compared. Prints
mentions/s, the ratio on / off, and the time in the store's lookup before each batch (the
check's own cost, steadier than the whole on a shared machine). Measures, asserts nothing.

    .venv/bin/python benchmarks/repeats.py [--threads 3000] [--hours 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from watchtower.config import Config, InputConfig, StateConfig
from watchtower.config_parse import Secret
from watchtower.mention import Mention, from_dict
from watchtower.state.redis_store import RedisStore
from watchtower.synth import generate
from watchtower.wiring import build_engine

from bench_servers import redis_server


async def decide(config: Config, mentions: list[Mention], batch: int) -> tuple[float, float]:
    """Seconds to decide ``mentions`` in batches of ``batch`` on a flushed Redis, and of them
    the seconds in the store's lookup before the batch (parents, and the ids when checked):
    the check's own cost, which the whole varies by more than on a busy machine."""
    store = RedisStore.from_config(config)
    lookup, in_lookup = store.lookup_batch, [0.0]

    async def timed(
        parents: Iterable[str], mention_ids: Iterable[str]
    ) -> tuple[dict[str, str], set[str]]:
        started = time.perf_counter()
        try:
            return await lookup(parents, mention_ids)
        finally:
            in_lookup[0] += time.perf_counter() - started

    store.lookup_batch = timed  # type: ignore[method-assign]
    try:
        await store.client.flushdb()
        engine = build_engine(config, store)
        started = time.perf_counter()
        for start in range(0, len(mentions), batch):
            await engine.process(mentions[start : start + batch])
        return time.perf_counter() - started, in_lookup[0]
    finally:
        await store.close()


async def measure(url: str, threads: int, hours: float, repeat: int) -> None:
    on = Config(state=StateConfig(backend="redis", redis_url=Secret(url)))
    off = dataclasses.replace(on, input=InputConfig(remembered_ids=0))
    mentions = [from_dict(r, 4000) for r in generate(7, threads, hours)]
    print(f"{len(mentions)} mentions, {threads} threads, best of {repeat} alternated runs")
    print("mentions/s of the whole, and µs per mention in the lookup before each batch")
    for batch in (64, 512):
        best = {"on": (math.inf, math.inf), "off": (math.inf, math.inf)}
        for _ in range(repeat):
            for name, config in (("on", on), ("off", off)):
                best[name] = min(best[name], await decide(config, mentions, batch))
        rate = {name: len(mentions) / whole for name, (whole, _) in best.items()}
        looked = {name: part / len(mentions) * 1e6 for name, (_, part) in best.items()}
        print(
            f"batch {batch:>3}: check on {rate['on']:>7,.0f}/s (lookup {looked['on']:.1f} µs),"
            f" off {rate['off']:>7,.0f}/s (lookup {looked['off']:.1f} µs),"
            f" ratio on/off {rate['on'] / rate['off']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=3000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as url:
        asyncio.run(measure(url, args.threads, args.hours, args.repeat))


if __name__ == "__main__":
    main()
