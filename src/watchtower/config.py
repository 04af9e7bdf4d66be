"""The config file: its sections as frozen dataclasses with their checks, and ``load_config``.

The file is parsed strictly, once, at load, by ``config_parse``: unknown keys and wrong types
are errors that name the key path (``levels[1].enter``), so an operator learns what to fix from
the message alone. Durations are written ``90s``, ``5m``, ``2h`` or ``1d`` (or a number of
seconds). Secrets are ``Secret`` values whose repr is masked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from watchtower.config_parse import Duration, Secret, build, load_yaml
from watchtower.errors import ConfigError
from watchtower.scoring.sentiment import SentimentConfig

# Checks the sections share. A section names only its own field; build() prefixes the section.


def _longer_than_zero(section: object, *names: str) -> None:
    """Durations something is divided by, decays with or waits for in a loop: 0 cannot work."""
    for name in names:
        value = getattr(section, name)
        if not value > 0:  # also False for NaN, should a section be built in code
            raise ConfigError(name, f"must be longer than 0, got {value!r}")


def _at_least(section: object, least: int, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value < least:
            raise ConfigError(name, f"must be {least} or more, got {value!r}")


# --- the sections -------------------------------------------------------------------------


@dataclass(frozen=True)
class InputConfig:
    max_text_chars: int = 4000  # longer texts are refused, not truncated: they are not posts
    dead_letter: str | None = None  # JSONL file for rejected records, with the reason
    root_memory: Duration = Duration(48 * 3600)  # how long a mention's thread root is remembered
    max_remembered_roots: int = 2_000_000  # cap on that memory; oldest forgotten first
    # Live sources refuse mentions stamped later than now + this: a source with a bad clock
    # would otherwise move event time ahead and resolve every open alert as "quiet".
    max_future: Duration = Duration(300)
    # The latest mention ids each process remembers: a mention whose id is among them is a
    # repeat (MQTT redelivers, HTTP clients resend) and is dropped, not counted again; with a
    # shared store, so is one any worker decided (Store.lookup_batch); 0: off, both.
    remembered_ids: int = 200_000

    def __post_init__(self) -> None:
        # 0 would refuse every text, or forget every root at once (no reply joins its thread)
        _at_least(self, 1, "max_text_chars", "max_remembered_roots")
        _at_least(self, 0, "remembered_ids")
        _longer_than_zero(self, "root_memory")


@dataclass(frozen=True)
class StateConfig:
    backend: Literal["memory", "redis"] = "memory"
    redis_url: Secret | None = None  # redis://host:port/db; may hold a password, so a Secret
    thread_ttl: Duration = Duration(48 * 3600)  # a thread idle this long (event time) is dropped
    max_threads: int = 500_000  # store cap: the least recently active threads go first
    # Redis: the threads this worker saved last are also held in process, and a batch asks
    # Redis only for the rest (compare-and-set still catches another worker's change). 0: off.
    cached_threads: int = 20_000

    def __post_init__(self) -> None:
        _longer_than_zero(self, "thread_ttl")  # 0: every thread forgotten between its mentions
        _at_least(self, 1, "max_threads")
        _at_least(self, 0, "cached_threads")


@dataclass(frozen=True)
class FeatureConfig:
    # Half-lives of the decayed mention rates; the first is "short", the last "long".
    half_lives: tuple[Duration, ...] = (Duration(300), Duration(1800), Duration(3 * 3600))
    sparkline_bucket: Duration = Duration(600)  # width of one growth-curve bar
    sparkline_buckets: int = 12  # bars kept per thread (fixed size state)
    top_mentions: int = 3  # most-followed posts kept per thread for the alert

    def __post_init__(self) -> None:
        if not self.half_lives or list(self.half_lives) != sorted(self.half_lives):
            raise ConfigError("half_lives", "need one or more, shortest first")
        for i, half_life in enumerate(self.half_lives):
            if not half_life > 0:  # a rate decays with exp(-dt / half-life)
                raise ConfigError(f"half_lives[{i}]", f"must be longer than 0, got {half_life!r}")
        _longer_than_zero(self, "sparkline_bucket")
        _at_least(self, 1, "sparkline_buckets")  # the newest bar is where a mention is counted
        _at_least(self, 0, "top_mentions")


@dataclass(frozen=True)
class MomentumConfig:
    # A thread is big when it reaches, within horizon, at least big_size mentions AND more than
    # the busiest big_share of recent threads with traction (min_count mentions from min_authors
    # people): big_share makes "big" relative to the platform, big_size is only a floor (20:
    # low enough for a platform whose big threads have a few dozen mentions; docs/backtest.md).
    big_size: int = 20
    big_share: float = 0.2  # 0: big_size alone decides
    horizon: Duration = Duration(48 * 3600)  # a thread's outcome is known this long after it began
    learn: bool = True  # learn P(big) online from outcomes as they become known
    min_count: int = 3  # threads smaller than this are never scored above zero
    # A thread from fewer distinct people is a conversation (a customer and the brand's support
    # answering each other), never a cascade: never scored above zero. Mentions without an
    # author count as distinct people.
    min_authors: int = 5

    def __post_init__(self) -> None:
        if self.big_size < 1:
            raise ConfigError("big_size", f"must be 1 or more, got {self.big_size}")
        if not 0.0 <= self.big_share < 1.0:
            raise ConfigError("big_share", f"must be at least 0 and below 1, got {self.big_share}")
        if self.min_count < 1:
            raise ConfigError("min_count", f"must be 1 or more, got {self.min_count}")
        if self.min_authors < 1:
            raise ConfigError("min_authors", f"must be 1 or more, got {self.min_authors}")
        if self.horizon <= 0:
            raise ConfigError("horizon", "must be longer than 0")


@dataclass(frozen=True)
class ScoringConfig:
    # off: momentum alone; boost: anger raises the score; require: calm threads never alert.
    # Off by default: the backtest measures how early and how precisely threads that go big are
    # caught, and any weight on anger reorders them (boost cost 0.03 F1 there); anger is still
    # in every alert, and boost or require suit a team that only wants complaints.
    sentiment_gate: Literal["off", "boost", "require"] = "off"
    min_negativity: float = 0.5  # mean P(negative) at which a thread counts as angry

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_negativity <= 1.0:  # a mean of probabilities
            raise ConfigError("min_negativity", f"must be 0 to 1, got {self.min_negativity!r}")


@dataclass(frozen=True)
class LevelConfig:
    name: str
    enter: float  # score at or above which the level is entered
    exit: float  # score below which (for keep_firing_for) the episode resolves
    pending_for: Duration = Duration(0)  # the score must hold this long before firing
    keep_firing_for: Duration = Duration(1800)  # below exit this long before resolving


@dataclass(frozen=True)
class AlertConfig:
    repeat_interval: Duration = Duration(4 * 3600)  # re-notify a firing episode at most this often
    resolve_after_quiet: Duration = Duration(2 * 3600)  # no mention this long: resolved
    tick: Duration = Duration(300)  # how often (event time) open episodes are re-checked

    def __post_init__(self) -> None:
        # 0: a reminder at every mention, every episode resolved at every tick, ticks without end
        _longer_than_zero(self, "repeat_interval", "resolve_after_quiet", "tick")


@dataclass(frozen=True)
class StormConfig:
    """Complaint storms per brand (see config/watchtower.yaml ``storms``)."""

    enabled: bool = True  # count complaints per brand and alert on storms
    bucket: Duration = Duration(900)  # width of one count bucket (the storm's time resolution)
    half_life: Duration = Duration(3600)  # memory of the forecast level (river HoltWinters alpha)
    dispersion_half_life: Duration = Duration(43200)  # memory of the overdispersion estimate
    warmup: Duration = Duration(7200)  # history a brand needs before it can storm
    min_rate: float = 4.0  # complaints per hour: floor of the forecast (quiet brands)
    negative_at: float = 0.5  # P(negative) at which a thread counts as complaining
    z_enter: float = 4.0  # a storm bucket is this many sd above the forecast...
    min_ratio: float = 3.0  # ...and this many times the forecast...
    min_threads: int = 8  # ...from at least this many separate complaining threads
    pending_for: Duration = Duration(900)  # storm buckets must hold this long: 900 = two in a row
    z_exit: float = 2.0  # back under this z (near the forecast)...
    resolve_after: Duration = Duration(3600)  # ...for this long: the storm is resolved
    repeat_interval: Duration = Duration(14400)  # re-notify a storm still going at most this often
    sparkline_buckets: int = 16  # buckets of complaint counts drawn in the alert
    top_mentions: int = 3  # most negative (then most followed) complaints shown
    max_brands: int = 1000  # brands tracked; the least recently mentioned are dropped
    max_threads_per_bucket: int = 50_000  # distinct threads remembered per brand and bucket

    def __post_init__(self) -> None:
        for name in ("bucket", "half_life", "dispersion_half_life"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(name, f"must be a positive duration, got {getattr(self, name)!r}")
        # a quiet brand's forecast is this floor, and its z-score divides by the forecast
        if not (math.isfinite(self.min_rate) and self.min_rate > 0):
            raise ConfigError("min_rate", f"must be above 0, got {self.min_rate!r}")
        for name in ("warmup", "pending_for", "resolve_after", "repeat_interval"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ConfigError(name, f"must be 0 or more, got {getattr(self, name)!r}")
        if not 0.0 < self.negative_at <= 1.0:
            raise ConfigError("negative_at", "must be in (0, 1]")
        if not 0.0 <= self.z_exit <= self.z_enter:
            raise ConfigError("z_exit", "need 0 <= z_exit <= z_enter")
        if self.min_ratio < 1.0:
            raise ConfigError("min_ratio", "must be 1 or more")
        for name in ("min_threads", "sparkline_buckets", "max_brands", "max_threads_per_bucket"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be 1 or more, got {getattr(self, name)!r}")
        if self.top_mentions < 0:
            raise ConfigError("top_mentions", "must be 0 or more")

    @property
    def warmup_buckets(self) -> int:
        """Closed buckets before a brand is judged (2 at least: river's level needs them)."""
        return max(2, math.ceil(self.warmup / self.bucket))

    def decay(self, half_life: float) -> float:
        """The EW weight of one new bucket for a memory of ``half_life`` seconds."""
        return 1.0 - math.pow(0.5, self.bucket / half_life)


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    token: Secret | None = None  # bearer token for ingest and the API; null: no auth
    max_body_bytes: int = 16 * 1024 * 1024  # larger ingest bodies get 413
    body_timeout: Duration = Duration(60)  # no more of a body for this long: 408

    def __post_init__(self) -> None:
        _at_least(self, 1, "max_body_bytes")
        _longer_than_zero(self, "body_timeout")


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topics: tuple[str, ...] = ("watchtower/mentions",)
    client_id: str = "watchtower-1"  # stable: the broker keeps our session across restarts
    shared_group: str | None = None  # $share/<group>/<topic>: workers split the stream
    username: str | None = None
    password: Secret | None = None
    tls: bool = False
    ca_file: str | None = None
    alerts_topic: str | None = None  # also publish alert transitions here (JSON)
    keepalive: int = 60

    def __post_init__(self) -> None:
        if self.enabled and not self.topics:  # the broker refuses an empty subscription
            raise ConfigError("topics", "at least one topic is needed when mqtt is enabled")
        for i, topic in enumerate(self.topics):
            if not topic:
                raise ConfigError(f"topics[{i}]", "an MQTT topic cannot be empty")
        if not 0 <= self.keepalive <= 65535:  # two bytes in CONNECT; 0: no keepalive
            raise ConfigError("keepalive", f"must be 0 to 65535 seconds, got {self.keepalive}")


@dataclass(frozen=True)
class RouteConfig:
    name: str
    urls: tuple[Secret, ...]  # apprise URLs; they hold tokens, so never logged in full
    brands: tuple[str, ...] = ()  # empty: any brand
    platforms: tuple[str, ...] = ()  # empty: any platform
    levels: tuple[str, ...] = ()  # empty: any level


@dataclass(frozen=True)
class NotifyConfig:
    console: bool = True  # print each transition on stdout too
    send_resolved: bool = True
    retry_initial: Duration = Duration(1)  # first retry delay; doubles, with jitter
    retry_max: Duration = Duration(300)  # cap of the retry delay
    max_attempts: int = 12  # then the notification is dead-lettered and counted
    routes: tuple[RouteConfig, ...] = ()

    def __post_init__(self) -> None:
        _longer_than_zero(self, "retry_initial", "retry_max")  # 0: retries without a pause
        _at_least(self, 1, "max_attempts")


@dataclass(frozen=True)
class DaemonConfig:
    queue_size: int = 10_000  # mentions waiting for the engine; full: sources back off
    # At most, per engine batch (one store round trip). Batches reach it only when the engine
    # is behind; replay's size: a 60k backlog drained 0-37% faster per CPU s than with 256.
    batch_size: int = 512
    batch_wait: Duration = Duration(0.005)  # when keeping up, wait this long to fill a batch
    shutdown_timeout: Duration = Duration(10)  # drain this long on SIGTERM, then stop anyway

    def __post_init__(self) -> None:
        # asyncio takes a queue size of 0 or less as unbounded; a batch of 0 never ends
        _at_least(self, 1, "queue_size", "batch_size")


def _default_levels() -> tuple[LevelConfig, ...]:
    return (
        # P(big) thresholds; watch sits above even odds because a thread is scored at every
        # mention and fires at its first crossing (see docs/backtest.md).
        LevelConfig("watch", enter=0.65, exit=0.4),
        LevelConfig("critical", enter=0.85, exit=0.6),
    )


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    state: StateConfig = field(default_factory=StateConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    momentum: MomentumConfig = field(default_factory=MomentumConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    levels: tuple[LevelConfig, ...] = field(default_factory=_default_levels)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    storms: StormConfig = field(default_factory=StormConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)

    def __post_init__(self) -> None:
        _check_engine(self)
        _check_ports(self)
        _check_routes(self)


def level_rank(levels: Sequence[LevelConfig]) -> dict[str, int]:
    """Each configured level's name and its place in the order, lowest first."""
    return {level.name: i for i, level in enumerate(levels)}


def _check_ports(cfg: Config) -> None:
    for key, port in (("http.port", cfg.http.port), ("mqtt.port", cfg.mqtt.port)):
        if not 0 <= port <= 65535:  # 0: any free port (tests, ad-hoc runs)
            raise ConfigError(key, f"a TCP port is 0 to 65535, got {port}")


def _check_routes(cfg: Config) -> None:
    names = {level.name for level in cfg.levels} | {"storm"}
    seen: set[str] = set()
    for i, route in enumerate(cfg.notify.routes):
        if route.name in seen:
            raise ConfigError(f"notify.routes[{i}].name", f"duplicate route {route.name!r}")
        seen.add(route.name)
        for j, level in enumerate(route.levels):
            if level not in names:
                raise ConfigError(f"notify.routes[{i}].levels[{j}]", f"no level named {level!r}")


def _check_engine(cfg: Config) -> None:
    if not cfg.levels:
        raise ConfigError("levels", "at least one level is needed")
    previous = -1.0
    for i, level in enumerate(cfg.levels):
        if not 0.0 <= level.exit <= level.enter <= 1.0:
            raise ConfigError(f"levels[{i}]", "need 0 <= exit <= enter <= 1")
        if level.enter <= previous:
            raise ConfigError(f"levels[{i}].enter", "levels must be ordered by rising enter")
        previous = level.enter
    if len({level.name for level in cfg.levels}) != len(cfg.levels):
        raise ConfigError("levels", "level names must be unique")
    if any(level.name == "storm" for level in cfg.levels):
        raise ConfigError("levels", "'storm' is the level of brand storm alerts: pick another name")
    if cfg.state.backend == "redis" and cfg.state.redis_url is None:
        raise ConfigError("state.redis_url", "required when state.backend is redis")


def load_config(path: Path | None, *, resolve_secrets: bool = True) -> Config:
    """The whole config file, strictly: an unknown top-level key is an error too.

    Every ``env:NAME`` and ``file:PATH`` secret is resolved, so an unresolvable one fails the
    load, as ``run``, ``replay`` and ``check-config`` need. ``resolve_secrets=False`` is for an
    operator's command that uses only a few (``silence``: ``http.token``; ``notify-test``: one
    route's URLs; the secrets the daemon's environment holds may be unset in a shell): every
    secret is left as written, and the command resolves what it uses with ``resolve_secret``.
    """
    if path is None:
        return Config()
    data = load_yaml(path)
    if data is None:  # empty, or comments only: a file truncated mid-edit, reloaded, would
        # otherwise drop every route and level without a word
        raise ConfigError("(file)", f"{path} holds no settings: write {{}} for the defaults")
    return build(Config, data, secrets=resolve_secrets)
