"""Requests aiohttp's parser refuses as malformed HTTP: one counted debug line, not a traceback.

A chunked body whose framing is broken (a chunk size that is not hex, a chunk longer or shorter
than it says, a missing CRLF) arrives with its headers (a small body comes in one segment), and
aiohttp's parser refuses the lot before any handler runs: a 400 of its own, and "Error handling
request" at ERROR with a traceback on aiohttp.server, counted nowhere. ``MalformedRequests``, a
filter on that logger, turns exactly those records into one debug line and a count.

Arriving after the handler began to read, the broken chunk is raised in the handler by aiohttp's
pure-Python parser (RequestPayloadError, answered and counted there: http_body.MalformedBody), and
raised again when aiohttp reads what is left of the body after the answer: "Unhandled
exception", the same error, which the filter drops too (counted once). Its C parser (the one
installed wheels use) never hands that error to the request: the handler waits for more of the
body until ``http.body_timeout`` (408, body_stalled) or until the client hangs up (client_gone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp.http_exceptions import BadHttpMessage, PayloadEncodingError
from aiohttp.web import RequestPayloadError

from watchtower.logs import kv

log = logging.getLogger(__name__)

SERVER_LOGGER = "aiohttp.server"  # where aiohttp's server logs a request it could not handle
_SHOWN = 80  # characters of the parser's reason quoted in the line


def is_malformed(exc: BaseException | None) -> bool:
    """Whether ``exc`` is aiohttp's parser refusing a request's framing. Its C parser (llhttp)
    says so with BadHttpMessage itself, for a broken chunk as for a few header faults (a bad
    token, Content-Length beside Transfer-Encoding); its pure-Python one a broken chunk with
    TransferEncodingError. The subclasses with a meaning of their own (BadStatusLine,
    LineTooLong, InvalidHeader, InvalidURLError) keep aiohttp's logging."""
    return type(exc) is BadHttpMessage or isinstance(exc, PayloadEncodingError)


def reason(exc: BaseException) -> str:
    """The parser's reason in one short line: its message quotes the bytes it refused."""
    message = getattr(exc, "message", "") or str(exc)
    first = message.strip().splitlines()[0].rstrip(":") if message.strip() else "-"
    return first if len(first) <= _SHOWN else first[:_SHOWN] + "..."


class MalformedRequests(logging.Filter):
    """On SERVER_LOGGER: drops the record of a request ``is_malformed`` refused, calling
    ``count`` and logging one debug line in its place; lets every other record through. That
    logger is the process's: another aiohttp server in it would count here too (a daemon runs
    one)."""

    def __init__(self, count: Callable[[], None]) -> None:
        super().__init__()
        self._count = count

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if is_malformed(exc):  # no handler saw the request
            self._count()
        elif not (isinstance(exc, RequestPayloadError) and is_malformed(exc.__cause__)):
            return True
        else:  # aiohttp reading the rest of a body whose error the handler answered (counted)
            exc = exc.__cause__ or exc
        # Debug, as client_gone: the client's fault, and the counter is what an operator watches
        args = record.args if isinstance(record.args, tuple) else ()
        peer = args[0] if args else "-"  # "Error handling request from %s"; "-" after the answer
        log.debug("request refused as malformed", extra=kv(peer=peer, error=reason(exc)))
        return False
