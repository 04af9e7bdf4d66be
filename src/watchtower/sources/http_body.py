"""Reading a request body: bounded in size (413 before it is all read or inflated) and in
patience (408 when the client stops sending mid-body), decoded as its Content-Encoding says.

Each way a body can fail to arrive is an HTTPException of its own, so aiohttp answers it
quietly (no traceback) and the ingest handler can count it by reason.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import hdrs, web

from watchtower.logs import kv
from watchtower.sources.content_coding import (
    ENCODED,
    UnsupportedCoding,
    coding_of,
    decode_content,
)
from watchtower.sources.malformed import reason

log = logging.getLogger(__name__)


class ClientGone(web.HTTPBadRequest):
    """The client hung up before it had sent its whole body. An HTTPException, so aiohttp ends
    the request quietly (its answer reaches no one) instead of logging a traceback."""


class MalformedBody(web.HTTPBadRequest):
    """The body's framing broke while it was read (aiohttp's pure-Python parser: its C parser
    refuses the request before any handler, see malformed.py)."""


class BodyStalled(web.HTTPRequestTimeout):
    """Nothing more of the body came for ``http.body_timeout``: a producer stuck mid-request,
    or a chunk whose framing broke after the headers, which aiohttp's C parser drops without a
    word. Without it the handler (and the connection) would wait until the client hangs up."""


async def read_limited(request: web.Request, limit: int, idle: float, setting: str = "") -> bytes:
    """The body decoded as its Content-Encoding says, or 413 as soon as it is known to exceed
    ``limit`` (before reading or inflating it all); the error names ``setting`` where a config
    key sets the limit. 415 for a coding not read (the body unread), BodyError when it does
    not decode, ClientGone when the client hangs up before the end of it, MalformedBody when its
    framing breaks, BodyStalled when no part of it comes for ``idle`` seconds."""
    try:
        coding = coding_of(request.headers.get(hdrs.CONTENT_ENCODING, ""))
    except UnsupportedCoding as exc:
        raise web.HTTPUnsupportedMediaType(
            text=orjson.dumps({"error": str(exc), "field": hdrs.CONTENT_ENCODING}).decode(),
            content_type="application/json",
            headers={hdrs.ACCEPT_ENCODING: ", ".join(ENCODED)},  # RFC 9110 15.5.16
        ) from None
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit, setting)
    body = decode_content(await _read_raw(request, limit, idle, setting), coding, limit)
    if len(body) > limit:
        raise _too_large(limit, setting)
    return body


async def _read_raw(request: web.Request, limit: int, idle: float, setting: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    try:
        # Patience between two parts, not for the whole body (as nginx's client_body_timeout):
        # a large body on a slow link still arrives, a stalled one is let go.
        async with asyncio.timeout(idle) as patience:
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, setting)
                chunks.append(chunk)
                patience.reschedule(loop.time() + idle)
    except ConnectionError:  # aiohttp's ConnectionResetError("Connection lost")
        # Debug, not a warning: it is the client's failure, one line per request would flood
        # the log when a producer keeps crashing, and ingest counts it (reason client_gone).
        log.debug("client hung up mid-body", extra=_where(request, size))
        raise ClientGone(text="the client hung up before the end of its body") from None
    except TimeoutError:
        log.debug("client stalled mid-body", extra=_where(request, size))
        error = {"error": f"no more of the body came for {idle:g} s (http.body_timeout)"}
        raise BodyStalled(  # the rest of the body may still come: this connection is done
            text=orjson.dumps(error).decode(),
            content_type="application/json",
            headers={hdrs.CONNECTION: "close"},
        ) from None
    except web.RequestPayloadError as exc:  # the parser's error is its cause
        raise _malformed(exc.__cause__ or exc) from None
    return b"".join(chunks)


def _where(request: web.Request, size: int) -> dict[str, object]:
    declared = request.content_length or "-"
    return kv(path=request.path, peer=request.remote or "-", got=size, declared=declared)


def _malformed(exc: BaseException) -> MalformedBody:
    error = {"error": f"the body is not framed as its headers say: {reason(exc)}"}
    return MalformedBody(text=orjson.dumps(error).decode(), content_type="application/json")


def _too_large(limit: int, setting: str) -> web.HTTPRequestEntityTooLarge:
    error = {"error": f"body larger than {limit} bytes" + (f" ({setting})" if setting else "")}
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, text=orjson.dumps(error).decode(), content_type="application/json"
    )
