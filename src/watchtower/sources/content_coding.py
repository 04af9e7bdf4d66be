"""The content codings a request body may come in (``Content-Encoding``), decoded within a bound.

Ours, not aiohttp's (its server runs with ``auto_decompress`` off): decoded by its parser, a body
that did not decode kept its error in the request's stream, and the server raised it again after
the handler had answered, an "Unhandled exception" with a traceback in the log for every such
request; a coding it lacked (br, zstd) was answered 400 before any handler saw the request (not
counted, another traceback), and one it did not know (foo) was read as if not encoded. Pure.
"""

from __future__ import annotations

import zlib

from watchtower.sources.records import BodyError

IDENTITY = "identity"
ENCODED = ("gzip", "deflate")  # what Accept-Encoding names: identity goes without saying
ACCEPTED = (IDENTITY, *ENCODED)
# what a header may say for each: no header is identity, x-gzip is gzip (RFC 9110 8.4.1.3)
_NAMES = {"": IDENTITY, **{name: name for name in ACCEPTED}, "x-gzip": "gzip"}
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_SHOWN = 40  # characters of a refused header quoted back


class UnsupportedCoding(ValueError):
    """A Content-Encoding none of ACCEPTED (or several stacked: one is plenty for records)."""


def coding_of(header: str) -> str:
    """The coding a Content-Encoding header names, by its name in ACCEPTED; UnsupportedCoding
    (which says what is read) for any other."""
    coding = _NAMES.get(header.strip().lower())
    if coding is None:
        shown = header if len(header) <= _SHOWN else header[:_SHOWN] + "..."
        raise UnsupportedCoding(
            f"content encoding must be one of {', '.join(ACCEPTED)}, not {shown!r}"
        )
    return coding


def decode_content(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` decoded as ``coding`` (identity, gzip or deflate), at most ``limit + 1`` bytes:
    longer is known to be over the limit without inflating the rest (a small bomb stays small).
    Raises BodyError when the body is not what its coding says, or ends before its end.
    """
    if coding == IDENTITY or not body:
        return body
    if coding == "gzip":
        wbits = _GZIP_WBITS
    elif body[0] & 0x0F == 8:  # RFC 1950's method nibble: the zlib stream "deflate" means
        wbits = zlib.MAX_WBITS
    else:  # raw deflate, which some clients send as "deflate" (aiohttp read it too)
        wbits = -zlib.MAX_WBITS
    try:
        return _inflate(body, wbits, limit)
    except zlib.error:
        raise _undecodable(coding) from None


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    while True:
        stream = zlib.decompressobj(wbits)
        out += stream.decompress(data, limit + 1 - len(out))  # never 0 (unbounded): see below
        if len(out) > limit:
            return bytes(out)
        if not stream.eof:
            raise zlib.error("the stream ends before its end")
        data = stream.unused_data
        if not data:
            return bytes(out)
        if wbits != _GZIP_WBITS:
            raise zlib.error("bytes after the end of the stream")
        # gzip members may follow one another (RFC 1952 2.2): the body is all of them


def _undecodable(coding: str) -> BodyError:
    return BodyError(f"the body does not decode as its Content-Encoding ({coding}) says")
