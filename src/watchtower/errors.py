"""Watchtower's small exception hierarchy: each names what is wrong and where."""


class WatchtowerError(Exception):
    """Base of every error watchtower raises on purpose."""


class ConfigError(WatchtowerError):
    """A bad config value; ``key`` is its dotted path (``levels[1].enter``)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class InvalidMention(WatchtowerError):
    """A record that is not a valid mention; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotifyError(WatchtowerError):
    """A notification that cannot be delivered as configured (e.g. an unknown route)."""


class StoreError(WatchtowerError):
    """The state store could not complete an update (e.g. endless compare-and-set conflicts)."""


class UnreadableStates(StoreError):
    """Stored thread states this build cannot read (another build's layout, or corrupt):
    ``reasons`` maps each thread to why. The rest of a load is readable: ask again without them."""

    def __init__(self, reasons: dict[str, str]) -> None:
        shown = "; ".join(list(reasons.values())[:3])
        super().__init__(f"{len(reasons)} thread states unreadable: {shown}")
        self.reasons = reasons


class OutputError(WatchtowerError):
    """A file watchtower was told to write cannot be opened; names the setting and the path."""

    def __init__(self, setting: str, path: object, reason: str) -> None:
        super().__init__(f"{setting}: cannot write {path}: {reason}")
        self.setting = setting


class InputError(WatchtowerError):
    """An input that cannot be used: a file that cannot be read (to its end), or that is not
    what the command reads (another dataset's); the message names the file and where."""


_OUTAGE_NAMES = ("Connection", "Timeout", "Busy", "ReadOnly")  # store errors worth waiting out


def is_outage(exc: BaseException) -> bool:
    """A failure of something outside (the store is down): retry as long as it takes, and say
    so in one line, not a traceback.

    Named, not imported: the state backend's client library stays confined to its module.
    """
    if isinstance(exc, OSError | TimeoutError):
        return True
    return any(name in cls.__name__ for cls in type(exc).__mro__ for name in _OUTAGE_NAMES)
