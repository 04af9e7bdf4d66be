"""``watchtower silence add|list|lift``: a brand's maintenance window on a running daemon.

A thin client of the daemon's ``/v1/silences`` API (stdlib ``urllib``: three small requests do
not need an event loop). The daemon's address comes from ``--url``, else from the ``http`` section
of ``--config`` (the address it listens on), else ``http://127.0.0.1:8080``; the bearer token from
that config's ``http.token`` (``env:NAME`` and ``file:PATH`` resolved as the daemon resolves
them; the config's other secrets are left alone), else ``$WATCHTOWER_TOKEN`` (also when
``http.token`` names a variable only the daemon's environment sets). The token is sent, never
printed.

Exit 0 when done; 1 when the daemon refused (401 token, 400 naming the field, 404 no such
silence); 2 for a bad config or usage; 3 when the daemon could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from watchtower.config import HttpConfig, load_config
from watchtower.config_parse import Secret, resolve_secret
from watchtower.errors import ConfigError, WatchtowerError
from watchtower.mention import format_time

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "WATCHTOWER_TOKEN"  # noqa: S105 - the name of a variable, as `feed` reads it
TIMEOUT_SECONDS = 10.0
REFUSED, UNREACHABLE = 1, 3  # exit codes (2, a bad config or usage, is main()'s and argparse's)
_PATH = "/v1/silences"
_Show = Callable[[dict[str, Any]], None]  # prints a 2xx answer
# a daemon listening on any address is reached on loopback
_ANY_HOST = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


class ApiError(WatchtowerError):
    """The daemon could not be reached, or answered with an error; the message says which."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """Where the daemon's API is and the token it wants (a ``Secret``: masked in any repr)."""

    url: str
    token: Secret | None


def add_silence_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("silence", help="silence a brand's notifications on a daemon")
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--url", help=f"the daemon's base URL (default: --config's or {DEFAULT_URL})"
    )
    where.add_argument("--config", type=Path, help="the daemon's config file: address and token")

    add = actions.add_parser("add", parents=[where], help="silence BRAND ('*': all) for a while")
    add.add_argument("brand", help="the brand, or '*' (quoted) for all brands")
    window = add.add_mutually_exclusive_group(required=True)
    window.add_argument("--for", dest="length", metavar="DURATION", help="e.g. 90m, 2h, 1d")
    window.add_argument("--until", metavar="TIME", help="RFC 3339 with a zone, e.g. ...T08:00:00Z")
    add.set_defaults(func=_add)

    ls = actions.add_parser("list", parents=[where], help="the silences in force")
    ls.set_defaults(func=_list)

    lift = actions.add_parser("lift", parents=[where], help="end BRAND's silence now")
    lift.add_argument("brand")
    lift.set_defaults(func=_lift)


def _add(args: argparse.Namespace) -> int:
    body = {"brand": args.brand, **({"for": args.length} if args.length else {"until": args.until})}
    return _run(args, "POST", _PATH, body, _print_silenced)


def _list(args: argparse.Namespace) -> int:
    return _run(args, "GET", _PATH, None, _print_silences)


def _lift(args: argparse.Namespace) -> int:
    path = f"{_PATH}/{urllib.parse.quote(args.brand, safe='')}"
    return _run(args, "DELETE", path, None, lambda data: print(f"lifted {_brand(data['lifted'])}"))


def _run(args: argparse.Namespace, method: str, path: str, body: object, show: _Show) -> int:
    target = target_of(args.url, args.config)  # a ConfigError is reported by main() (exit 2)
    try:
        show(request(target, method, path, body))
    except ApiError as exc:
        print(f"watchtower silence: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _print_silenced(data: dict[str, Any]) -> None:
    until = _epoch(data["until"])
    print(f"silenced {_brand(data['brand'])} until {format_time(until)} ({left(until)})")


def _print_silences(data: dict[str, Any]) -> None:
    silences = data["silences"]
    if not silences:
        print("no silences in force", file=sys.stderr)  # stdout stays one line per silence
        return
    width = max(len(_brand(s["brand"])) for s in silences)
    for s in silences:
        until = _epoch(s["until"])
        print(f"{_brand(s['brand']):<{width}}  until {format_time(until)}  ({left(until)})")


def _brand(brand: str) -> str:
    return "* (all brands)" if brand == "*" else brand


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def left(until: float, now: float | None = None) -> str:
    """What is left of a window ending at ``until``, whole units: ``3d04h``, ``2h00m``, ``5m``."""
    seconds = round(until - (time.time() if now is None else now))
    if seconds <= 0:
        return "ending now"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h left"
    if hours:
        return f"{hours}h{minutes:02d}m left"
    return f"{minutes}m left" if minutes else f"{secs}s left"


# --- where the daemon is -------------------------------------------------------------------


def target_of(url: str | None, config_path: Path | None) -> Target:
    """The daemon's base URL and token from ``--url``, ``--config`` and the environment.

    Of the config's secrets only ``http.token`` is resolved: the others (route URLs, the Redis
    URL) may name variables only the daemon's environment holds, and are not needed here.
    """
    http = None
    if config_path is not None:
        http = load_config(config_path, resolve_secrets=False).http
    if url is None:
        url = listen_url(http) if http is not None else DEFAULT_URL
    if "://" not in url:
        url = f"http://{url}"
    token = None
    if http is not None and http.token is not None:
        try:
            token = resolve_secret(http.token, "http.token") or None
        except ConfigError:
            # env:NAME set only where the daemon runs (systemd's EnvironmentFile): on-call's
            # shell may give the token as $WATCHTOWER_TOKEN instead
            if not os.environ.get(TOKEN_ENV):
                raise
    if token is None and os.environ.get(TOKEN_ENV):
        token = Secret(os.environ[TOKEN_ENV])
    return Target(url.rstrip("/"), token)


def listen_url(http: HttpConfig) -> str:
    """The URL that reaches a daemon listening as ``http`` says (any-address: loopback)."""
    if not http.enabled:
        raise ConfigError("http.enabled", "the daemon's HTTP API is off in this config")
    if http.port == 0:
        raise ConfigError("http.port", "0 (any free port) cannot be reached: give --url")
    host = _ANY_HOST.get(http.host, http.host)
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{http.port}"


# --- the request ---------------------------------------------------------------------------


def request(target: Target, method: str, path: str, body: object = None) -> dict[str, Any]:
    """One API call: the JSON answer of a 2xx, else an ``ApiError`` saying what went wrong."""
    headers = {"Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    data = None
    if body is not None:
        data = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    url = target.url + path
    call = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(call, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ApiError(
            f"cannot reach the daemon at {target.url}: {_reason(reason)} "
            "(is it running? is --url or --config right?)",
            UNREACHABLE,
        ) from None
    answer = _decode(raw)
    if 200 <= status < 300 and answer is not None:
        return answer
    raise ApiError(_refusal(target, url, status, answer, raw), REFUSED)


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def _refusal(
    target: Target, url: str, status: int, answer: dict[str, Any] | None, raw: bytes
) -> str:
    """What the operator reads: the daemon's own error, and what to do about a 401."""
    if answer is None or not isinstance(answer.get("error"), str):
        excerpt = raw[:200].decode("utf-8", "replace").strip() or "(empty body)"
        return f"{url} answered {status}, not as the watchtower API does: {excerpt}"
    error: str = answer["error"]
    field = answer.get("field")
    if isinstance(field, str) and not error.startswith(f"{field}:"):
        error = f"{field}: {error}"
    if status == 401:
        refused = "refused the token" if target.token else "wants a token and none was sent"
        return (
            f"the daemon {refused} (401): {error}; the token comes from http.token "
            f"in --config, else ${TOKEN_ENV}"
        )
    if status == 400:
        return f"the daemon refused the request (400): {error}"
    return f"the daemon answered {status}: {error}"
