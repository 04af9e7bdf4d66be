"""``watchtower notify-test``: send one clearly marked test alert through one configured route.

Run it after setting up a route to see each URL's outcome before a real thread needs it. A URL
is named by its position in the route and redacted (``urls[1] json://hooks.example.com/***``):
the redaction alone hides the path and tokens that tell two URLs on one host apart. Exit 0 when
every URL took it, 1 when one failed, 2 for an unknown route or a bad config.
Of the config's secrets only the route's own URLs are resolved.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import Message, render
from watchtower.alerting.notify import send
from watchtower.config import Config, load_config
from watchtower.config_parse import resolve_secret

_TEST_NOTE = "_Test alert from `watchtower notify-test`: nothing is wrong, no action needed._"


def add_notify_test_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    p = subparsers.add_parser("notify-test", help="send a test alert through one route")
    p.add_argument("--config", type=Path, required=True, help="the config file with the route")
    p.add_argument("--route", required=True, help="the route's name (notify.routes[].name)")
    p.set_defaults(func=notify_test)


def notify_test(args: argparse.Namespace) -> int:
    # Only this route's secrets are resolved: the others may name variables that only the
    # daemon's environment holds (systemd's EnvironmentFile), unset in an operator's shell.
    config = load_config(args.config, resolve_secrets=False)
    routes = {route.name: (i, route) for i, route in enumerate(config.notify.routes)}
    if args.route not in routes:
        known = ", ".join(sorted(routes)) or "none configured"
        print(f"watchtower: no route named {args.route!r} (routes: {known})", file=sys.stderr)
        return 2
    i, route = routes[args.route]
    urls = (
        resolve_secret(url, f"notify.routes[{i}].urls[{j}]") for j, url in enumerate(route.urls)
    )
    route = replace(route, urls=tuple(urls))  # a ConfigError is reported by main() (exit 2)
    if not route.urls:
        print(f"watchtower: route {route.name!r} has no URLs", file=sys.stderr)
        return 1
    result = asyncio.run(send(route, sample_message(config)))
    for url in result.urls:
        outcome = "ok    " if url.ok else "FAILED"
        print(f"{outcome} {url.shown}{'' if url.ok else ': ' + url.detail}")
    return 0 if result.ok else 1


def sample_message(config: Config) -> Message:
    """A rendered sample transition at the top level, marked as a test in title and body."""
    top = config.levels[-1]
    message = render(sample_transition(time.time(), top.name, top.enter), top.name)
    return Message(
        f"[TEST] {message.title}", f"{_TEST_NOTE}\n\n{message.body}", message.notify_type
    )


def sample_transition(now: float, level: str = "critical", enter: float = 0.85) -> AlertTransition:
    """A plausible escalating complaint thread, past ``enter`` of ``level`` as the built-in
    defaults would score it (also used by the tests)."""
    started = int(now) - 35 * 60
    score = round(max(0.91, enter), 2)
    return AlertTransition(
        thread_id="tw:1790000000000000001",
        episode_id=f"tw:1790000000000000001@{started}",
        sequence=2,
        level=level,
        state="escalated",
        repeat=False,
        at=now,
        score=score,
        why=f"score {score:.2f} >= {level} {enter:g}",
        explanation={
            "crossed": [
                f"expected size 240 vs big 96 -> P(big) {score:.2f}",
                "accelerating x2.4 (short vs long rate)",
            ],
            "count": 57,
            "age_min": 35.0,
            "rate_per_min": 4.2,
            "rates_per_min": [4.2, 1.8, 0.9],
            "acceleration": 2.4,
            "authors": 41.0,
            "reach": 11.2,
            "max_followers": 1_250_000,
            "negativity": 0.78,
            "expected_final": 240.0,
            "momentum": score,
            "anger": 0.78,
        },
        sparkline="▁▁▂▃▅▇█",
        top_mentions=[
            {
                "id": "1790000000000000007",
                "handle": "loud_traveller",
                "followers": 1_250_000,
                "url": "https://x.com/loud_traveller/status/1790000000000000007",
                "text": "Third cancelled flight this week and nobody at the desk. Never again.",
            }
        ],
        brand="sample-brand",
        platform="twitter",
        url="https://x.com/someone/status/1790000000000000001",
        headline="Cancelled again, four hours at the gate and nobody to talk to",
    )
