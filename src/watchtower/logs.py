"""One-line key=value logs: ``ts=... level=info logger=... msg="..." key=value``.

Fields travel in ``extra=kv(...)``. A ``Secret`` value prints as ``***`` whatever the call site
did, and a traceback is folded into one quoted ``exc=`` field, so every record is one line that
journald, grep and log shippers all read the same way. Apprise logs the URLs it loads and sends
to in full (``Loaded JSON URL: json://host/TOKEN`` at debug): in its records every URL is cut
to its scheme, for a route URL's path, user or host may be its credential.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

from watchtower.config_parse import Secret

_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://\S*")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+,#[]")


def kv(**fields: object) -> dict[str, Any]:
    """``extra`` for a log call: ``log.info("reloaded", extra=kv(path=p))``."""
    return {"fields": fields}


def _value(value: object) -> str:
    if isinstance(value, Secret):
        return "***"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    if text and all(c in _PLAIN for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={moment}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_value(record.getMessage())}",
        ]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts += [f"{key}={_value(value)}" for key, value in fields.items()]
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _without_urls(record: logging.LogRecord) -> bool:
    """Apprise's records with each URL as ``scheme://***`` (see the module notes)."""
    if record.name == "apprise" or record.name.startswith("apprise."):
        record.msg = _URL.sub(r"\1://***", record.getMessage())
        record.args = None
    return True


def configure(level: str = "INFO") -> None:
    """Route watchtower's and the libraries' logs through the one-line formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(_without_urls)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
