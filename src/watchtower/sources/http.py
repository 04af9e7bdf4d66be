"""HTTP: mention ingest, the JSON API, /metrics, health probes and the on-call board.

The handlers see the rest of the daemon only through ``Service`` (a source never imports a later
stage). The config is read on every request, so a reload changes the token and the body limit
without a restart. Probes, /metrics and the static board need no token; everything under /v1
does when ``http.token`` is set.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson
from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from watchtower.clock import Clock
from watchtower.config import Config
from watchtower.config_parse import parse_duration
from watchtower.errors import ConfigError
from watchtower.mention import LABELS, format_time
from watchtower.metrics import Metrics
from watchtower.sources.board import PAGE
from watchtower.sources.http_body import BodyStalled, ClientGone, MalformedBody, read_limited
from watchtower.sources.inbox import Inbox
from watchtower.sources.malformed import SERVER_LOGGER, MalformedRequests
from watchtower.sources.records import BodyError, BodyKind, decode_body

log = logging.getLogger(__name__)

SOURCE = "http"
INGEST_PATH = "/v1/mentions"
RETRY_AFTER_SECONDS = "1"
MAX_ERRORS_SHOWN = 1000  # per response; the counts are always complete
_SMALL_BODY = 64 * 1024  # API bodies other than ingest (feedback, silences) are tiny
MAX_SILENCE_SECONDS = 30 * 86_400  # a longer maintenance window is a mistake or a brand to drop
MAX_BRAND_CHARS = 200
_CONTENT_TYPES: dict[str, BodyKind] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
}

Feedback = Literal["learned", "unknown mention", "learning is off"]
Refusal = Literal["queue_full", "shutting_down"]  # the reason label of ingest_refused
# the reason label of ingest_requests_rejected
Rejected = Literal[
    "unauthorized",
    "too_large",
    "unsupported_type",
    "unsupported_encoding",
    "bad_body",
    "client_gone",
    "body_stalled",
    "malformed_request",
]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Service(Protocol):
    """What the HTTP interface needs from the running daemon."""

    @property
    def config(self) -> Config: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def clock(self) -> Clock: ...

    async def readiness(self) -> dict[str, bool]: ...

    async def recent_alerts(self, limit: int) -> list[dict[str, Any]]: ...

    async def ack(self, episode_id: str) -> bool: ...

    async def threads(self) -> list[dict[str, Any]]: ...

    async def feedback(self, label: str, text: str | None, mention_id: str | None) -> Feedback: ...

    async def silence(self, brand: str, until: float) -> str: ...

    async def silences(self) -> dict[str, float]: ...

    async def lift_silence(self, brand: str) -> str | None: ...


SERVICE = web.AppKey("service", Service)


def create_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[SERVICE] = service
    app.router.add_get("/", _board)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post(INGEST_PATH, _ingest)
    app.router.add_get("/v1/alerts", _alerts)
    app.router.add_post("/v1/alerts/{episode_id}/ack", _ack)
    app.router.add_post("/v1/feedback", _feedback)
    app.router.add_get("/v1/threads", _threads)
    app.router.add_post("/v1/silences", _silence)
    app.router.add_get("/v1/silences", _silences)
    app.router.add_delete("/v1/silences/{brand}", _lift_silence)
    return app


def _json(data: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    token = service.config.http.token
    if token is None or not request.path.startswith("/v1/"):
        return await handler(request)
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), str(token).encode()
    ):
        # Counted for ingest only: a producer with a wrong token loses mentions unseen, while the
        # other /v1 calls come from a person or the board, who gets the 401 in hand (and a label
        # from the request path would let anyone add series).
        if request.method == "POST" and request.path == INGEST_PATH:
            _count_rejected(service, "unauthorized")
        return _json(
            {"error": "missing or wrong bearer token"}, 401, **{"WWW-Authenticate": "Bearer"}
        )
    return await handler(request)


async def _ingest(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    config = service.config
    kind = _CONTENT_TYPES.get(request.content_type)
    if kind is None:
        _count_rejected(service, "unsupported_type")
        accepted = ", ".join(_CONTENT_TYPES)
        error = f"content type must be one of {accepted}"
        return _json({"error": error, "field": hdrs.CONTENT_TYPE}, 415)
    if not service.inbox.accepting:
        return _refuse(service, "shutting_down", 0)  # the body is not even read
    try:
        http = config.http
        body = await read_limited(
            request, http.max_body_bytes, http.body_timeout, "http.max_body_bytes"
        )
        decoded = decode_body(body, kind, config.input.max_text_chars)
    except ClientGone:  # nothing received: no record counts as received or dead-lettered
        _count_rejected(service, "client_gone")
        raise
    except BodyStalled:  # likewise; the client may resend it whole
        _count_rejected(service, "body_stalled")
        raise
    except MalformedBody:
        _count_rejected(service, "malformed_request")
        raise
    except web.HTTPRequestEntityTooLarge:
        _count_rejected(service, "too_large")
        raise
    except web.HTTPUnsupportedMediaType:
        _count_rejected(service, "unsupported_encoding")
        raise
    except BodyError as exc:  # not records, or not even readable as its encoding says
        _count_rejected(service, "bad_body")
        return _json({"error": str(exc)}, 400)
    inbox = service.inbox
    inbox.screen(decoded)
    if len(decoded.mentions) > inbox.queue.maxsize:
        # more than the queue ever holds: refused whole it would be refused forever, so it is
        # queued in order as the engine makes room, the reply waiting, as MQTT is read
        await inbox.put(SOURCE, decoded.mentions)
    elif not inbox.offer(SOURCE, decoded.mentions):
        # nothing of this request was taken: the client retries all of it later
        if not inbox.accepting:  # shutdown began while the body was read
            return _refuse(service, "shutting_down", decoded.total)
        return _refuse(service, "queue_full", decoded.total, room=inbox.room())
    inbox.count(SOURCE, f"{request.remote or '-'}", decoded)
    errors = [r.to_dict() for r in decoded.rejected[:MAX_ERRORS_SHOWN]]
    result = {"accepted": len(decoded.mentions), "rejected": len(decoded.rejected)}
    return _json({**result, "errors": errors}, 202)


def _refuse(service: Service, reason: Refusal, records: int, **detail: int) -> web.Response:
    """503 with Retry-After for a request refused whole, counted (never as received)."""
    metrics = service.metrics
    metrics.ingest_refused.labels(SOURCE, reason).inc()
    metrics.ingest_refused_records.labels(SOURCE, reason).inc(records)
    error = "queue full, retry later" if reason == "queue_full" else "shutting down"
    return _json({"error": error, **detail}, 503, **{"Retry-After": RETRY_AFTER_SECONDS})


def _count_rejected(service: Service, reason: Rejected) -> None:
    """An ingest request rejected whole (4xx, not to be resent as it is); its records unread."""
    service.metrics.ingest_requests_rejected.labels(SOURCE, reason).inc()


async def _board(_: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def _healthz(_: web.Request) -> web.Response:
    return _json({"status": "ok"})  # answering at all shows the event loop is alive


async def _readyz(request: web.Request) -> web.Response:
    checks = await request.app[SERVICE].readiness()
    ready = all(checks.values())
    return _json({"ready": ready, "checks": checks}, 200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _alerts(request: web.Request) -> web.Response:
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        return _json({"error": "limit must be a whole number"}, 400)
    return _json({"alerts": await request.app[SERVICE].recent_alerts(limit)})


async def _ack(request: web.Request) -> web.Response:
    episode_id = request.match_info["episode_id"]
    if not await request.app[SERVICE].ack(episode_id):
        return _json({"error": f"no open episode {episode_id!r}"}, 404)
    return _json({"acked": episode_id})


async def _threads(request: web.Request) -> web.Response:
    return _json({"threads": await request.app[SERVICE].threads()})


async def _feedback(request: web.Request) -> web.Response:
    try:
        data = orjson.loads(await _read_small(request))
    except (orjson.JSONDecodeError, BodyError):
        return _json({"error": "body must be a JSON object"}, 400)
    problem = _feedback_problem(data)
    if problem is not None:
        return _json({"error": problem}, 400)
    outcome = await request.app[SERVICE].feedback(
        data["label"], data.get("text"), data.get("mention_id")
    )
    if outcome == "unknown mention":
        return _json({"error": f"mention {data['mention_id']!r} is not known (send text)"}, 404)
    if outcome == "learning is off":
        return _json({"error": "sentiment.learn is off in the config"}, 409)
    return _json({"learned": data["label"]})


async def _read_small(request: web.Request) -> bytes:
    return await read_limited(request, _SMALL_BODY, request.app[SERVICE].config.http.body_timeout)


def _feedback_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return "body must be a JSON object"
    if data.get("label") not in LABELS:
        return f"label must be one of {', '.join(LABELS)}"
    text, mention_id = data.get("text"), data.get("mention_id")
    if (text is None) == (mention_id is None):
        return "give exactly one of text and mention_id"
    if not isinstance(text or mention_id, str) or not (text or mention_id):
        return "text and mention_id must be non-empty strings"
    return None


async def _silence(request: web.Request) -> web.Response:
    """Set (or replace) the maintenance window of a brand, or ``*`` for all: 201 with it."""
    service = request.app[SERVICE]
    try:
        data = orjson.loads(await _read_small(request))
    except (orjson.JSONDecodeError, BodyError):
        return _json({"error": "body must be a JSON object"}, 400)
    try:
        brand, until = _silence_request(data, service.clock.now())
    except ConfigError as exc:
        return _json({"error": str(exc), "field": exc.key}, 400)
    kept = await service.silence(brand, until)  # as matched: without case
    return _json(_silence_view(kept, until), 201)


def _silence_request(data: object, now: float) -> tuple[str, float]:
    """``brand`` and the end of the window from a POST body; ConfigError names the bad field."""
    if not isinstance(data, dict):
        raise ConfigError("body", "must be a JSON object")
    brand = data.get("brand")
    if not isinstance(brand, str) or not brand.strip() or len(brand) > MAX_BRAND_CHARS:
        raise ConfigError("brand", f"must be a brand name (1-{MAX_BRAND_CHARS} chars) or '*'")
    if ("for" in data) == ("until" in data):
        raise ConfigError("for", "give exactly one of for (a duration like 2h) and until")
    if "for" in data:
        key, length = "for", float(parse_duration(data["for"], "for"))
        until = now + length
    else:
        key, until = "until", _rfc3339(data["until"])
        length = until - now
    if length <= 0:
        raise ConfigError(key, "the silence must end in the future")
    if length > MAX_SILENCE_SECONDS:
        raise ConfigError(key, "a silence lasts at most 30d")
    return brand, until


def _rfc3339(value: object) -> float:
    problem = f"expected an RFC 3339 time like 2026-05-01T18:00:00Z, got {value!r}"
    if not isinstance(value, str):
        raise ConfigError("until", problem)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError("until", problem) from None
    if moment.tzinfo is None:
        raise ConfigError("until", f"time {value!r} has no zone (add Z or +00:00)")
    return moment.timestamp()


def _silence_view(brand: str, until: float) -> dict[str, str]:
    return {"brand": brand, "until": format_time(until)}


async def _silences(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].silences()
    return _json({"silences": [_silence_view(b, u) for b, u in sorted(found.items())]})


async def _lift_silence(request: web.Request) -> web.Response:
    brand = request.match_info["brand"]
    lifted = await request.app[SERVICE].lift_silence(brand)
    if lifted is None:
        return _json({"error": f"no active silence for {brand!r}"}, 404)
    return _json({"lifted": lifted})


class HttpServer:
    """The listening socket; ``stop`` is harmless to call twice."""

    def __init__(self, service: Service, host: str, port: int) -> None:
        # Bodies are decoded by read_limited (content_coding.py), not by aiohttp's parser.
        self._runner = web.AppRunner(
            create_app(service), access_log=None, shutdown_timeout=2.0, auto_decompress=False
        )
        self._host, self._port = host, port
        self._started = False
        # aiohttp refuses a malformed request before any handler: counted here (see malformed.py)
        self._malformed = MalformedRequests(lambda: _count_rejected(service, "malformed_request"))

    async def start(self) -> None:
        await self._runner.setup()
        self._started = True
        logging.getLogger(SERVER_LOGGER).addFilter(self._malformed)
        await web.TCPSite(self._runner, self._host, self._port).start()

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one picked for port 0)."""
        address = self._runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                await self._runner.cleanup()
            finally:  # after: closing the connections may log one more
                logging.getLogger(SERVER_LOGGER).removeFilter(self._malformed)
