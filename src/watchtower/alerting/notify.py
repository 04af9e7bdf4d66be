"""Send one rendered message to one route's apprise URLs; the only module that imports apprise.

Each URL gets its own apprise object, so a result maps to exactly one URL: the outbox records
which URLs of a route already took a message and a retry only goes to the others (a chat that
accepted the alert never sees it twice because the pager next to it was down). Apprise URLs
carry tokens, so a URL only ever leaves this module through ``redact``.

The message goes as Markdown, which apprise turns into what the service takes (HTML, Slack
mrkdwn) or sends as is, except to a service that shows plain text: there Markdown would show as
backslashes and asterisks, so it gets ``Message.as_text()``. Which one apprise says: the format it
resolves for a Markdown message to that URL (the service's own, or ``?format=`` in the URL).
Apprise calls a few chats text that render Markdown all the same; they keep the Markdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import apprise
from apprise.plugins import N_MGR

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import Message
from watchtower.config import RouteConfig
from watchtower.errors import ConfigError

log = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0  # seconds for one route's call; the outbox lease must be longer
# The service refused this message or these credentials: sending it again will not help.
# 408 (timeout), 425 (too early) and 429 (rate limited) are worth another try.
_RETRYABLE_4XX = frozenset({408, 425, 429})
_HTTP_ERROR = re.compile(r"error=(\d{3})\b")
# Apprise schemes it declares plain text for but whose service renders Markdown (and would show
# a plain text's post markup live): they get the Markdown, unless the URL asks ``?format=text``.
_MARKDOWN_ANYWAY = frozenset({"mmost", "mmosts", "zulip"})


@dataclass(frozen=True)
class UrlResult:
    index: int  # the URL's position in its route: the one name that tells same-host URLs apart
    url: str  # redacted
    digest: str  # stable short id of the URL, safe to store
    ok: bool
    retryable: bool
    detail: str

    @property
    def target(self) -> str:
        """``urls[1]``: safe for a metric label, and what the config file reads."""
        return f"urls[{self.index}]"

    @property
    def shown(self) -> str:
        """``urls[1] json://hooks.example.com/***``: for logs and notify-test."""
        return f"{self.target} {self.url}"


@dataclass(frozen=True)
class SendResult:
    urls: tuple[UrlResult, ...]

    @property
    def ok(self) -> bool:
        return all(u.ok for u in self.urls)

    @property
    def retryable(self) -> bool:
        """A retry can help: some URL failed for a reason that may pass."""
        return any(u.retryable for u in self.urls if not u.ok)

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(u.digest for u in self.urls if u.ok)

    @property
    def refused(self) -> tuple[str, ...]:
        """Digests of the URLs that failed for a reason another try cannot fix."""
        return tuple(u.digest for u in self.urls if not u.ok and not u.retryable)

    @property
    def failed(self) -> tuple[UrlResult, ...]:
        return tuple(u for u in self.urls if not u.ok)

    def describe(self) -> str:
        """One log-safe line: each URL by position and redacted, with its outcome."""
        return ", ".join(f"{u.shown} {'ok' if u.ok else u.detail}" for u in self.urls)


def redact(url: str) -> str:
    """Scheme and host (when it is a host name, not a token), the rest masked.

    ``json://user:pw@hooks.example.com:8080/x?k=v`` -> ``json://hooks.example.com:8080/***``;
    ``pagerduty://KEY@TOKEN`` -> ``pagerduty://***`` (there the host part is a credential).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "***"
    scheme = parts.scheme or "?"
    if not _looks_like_host(host):
        return f"{scheme}://***"
    where = f"{host}:{port}" if port else host
    rest = parts.username or parts.path.strip("/") or parts.query or parts.fragment
    return f"{scheme}://{where}/***" if rest else f"{scheme}://{where}"


def check_urls(routes: Sequence[RouteConfig]) -> None:
    """Refuse a route URL apprise's own parser does not take, naming its key, URL redacted.

    Run on the URLs as resolved (``env:NAME``, ``file:PATH``) before anything is sent, so a bad
    one fails check-config, the daemon's start and a reload instead of every alert it matches.
    """
    _load_plugins()
    for i, route in enumerate(routes):
        for j, url in enumerate(route.urls):
            with _apprise_unlogged():
                parsed = apprise.Apprise().add(str(url))
            if not parsed:
                shown = redact(url) if "://" in url else "no scheme://"
                raise ConfigError(
                    f"notify.routes[{i}].urls[{j}]", f"not a valid apprise URL ({shown})"
                )


@contextlib.contextmanager
def _apprise_unlogged() -> Iterator[None]:
    """Apprise logs a URL it cannot load in full, tokens and all: not this thread's, meanwhile.

    A filter for this thread only: sends in apprise's worker threads go on logging.
    """
    logger = logging.getLogger("apprise")
    here = threading.get_ident()

    def elsewhere(record: logging.LogRecord) -> bool:
        return record.thread != here

    logger.addFilter(elsewhere)
    try:
        yield
    finally:
        logger.removeFilter(elsewhere)


def digest(url: str) -> str:
    """A short, stable, non-reversible id of a URL (the outbox stores it, never the URL)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


async def send(
    route: RouteConfig,
    message: Message,
    skip: Collection[str] = (),
    within: float = SEND_TIMEOUT,
) -> SendResult:
    """Deliver to every URL of ``route`` whose digest is not in ``skip``, concurrently.

    ``within`` bounds the call (seconds): apprise reports an unfinished URL as a timeout.
    """
    urls = [(i, str(url)) for i, url in enumerate(route.urls) if digest(url) not in skip]
    results = await asyncio.gather(*(_send_one(i, url, message, within) for i, url in urls))
    return SendResult(tuple(results))


def print_console(transition: AlertTransition) -> None:
    """The console "route": one summary line per transition on stdout."""
    print(transition.summary_line(), flush=True)


@functools.cache
def _load_plugins() -> None:
    """Load apprise's plugins once, up front, quietly.

    Its e-mail plugin imports the stdlib ``imghdr``, which warns (deprecated in 3.11) on import;
    that is apprise's business, and must not turn into an error under ``-W error``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        N_MGR.load_modules()  # type: ignore[no-untyped-call]  # apprise leaves it untyped


async def _send_one(index: int, url: str, message: Message, within: float) -> UrlResult:
    url_result = functools.partial(UrlResult, index, redact(url), digest(url))
    _load_plugins()
    apobj = apprise.Apprise()
    if not apobj.add(url):
        return url_result(ok=False, retryable=False, detail="not a valid apprise URL")
    body_format = body_format_for(url, apobj[0])
    if body_format == apprise.NotifyFormat.TEXT:
        message = message.as_text()
    with await apobj.async_notify(
        body=message.body,
        title=message.title,
        notify_type=apprise.NotifyType(message.notify_type),
        body_format=body_format,
        timeout=within,
    ) as outcome:
        if outcome.status == apprise.AppriseResultStatus.SUCCESS:
            return url_result(ok=True, retryable=False, detail="ok")
        if outcome.status == apprise.AppriseResultStatus.TIMEOUT:
            return url_result(ok=False, retryable=True, detail="timeout")
        lines = [entry.message for entry in outcome.logs()]
    code = _http_status(lines)
    if code is None:  # no answer at all: refused, reset, DNS; worth another try
        broken = any("connection" in line.lower() for line in lines)
        detail = "connection error" if broken else "failed"
        return url_result(ok=False, retryable=True, detail=detail)
    retryable = code >= 500 or code in _RETRYABLE_4XX or code < 400
    return url_result(ok=False, retryable=retryable, detail=f"HTTP {code}")


def body_format_for(url: str, service: Any) -> apprise.NotifyFormat:
    """TEXT if ``service`` (apprise's plugin for ``url``) shows plain text, else MARKDOWN."""
    resolve = getattr(service, "resolve_format", None)  # older apprise: one notify_format
    shown = resolve(apprise.NotifyFormat.MARKDOWN) if resolve else service.notify_format
    if shown != apprise.NotifyFormat.TEXT:
        return apprise.NotifyFormat.MARKDOWN
    scheme, _, rest = url.partition("://")
    asked = "format" in parse_qs(rest.partition("?")[2])
    if scheme.lower() in _MARKDOWN_ANYWAY and not asked:
        return apprise.NotifyFormat.MARKDOWN
    return apprise.NotifyFormat.TEXT


def _http_status(lines: Iterable[str]) -> int | None:
    """The last HTTP status apprise plugins log on failure (``... error=503.``), if any."""
    code = None
    for line in lines:
        match = _HTTP_ERROR.search(line)
        if match:
            code = int(match.group(1))
    return code


def _looks_like_host(host: str) -> bool:
    # Many apprise schemes put a token where a host goes (pagerduty://KEY@TOKEN); real hosts
    # have a dot, are an IP (v6 has colons) or are localhost.
    return bool(host) and ("." in host or ":" in host or host == "localhost")
