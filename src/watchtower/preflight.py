"""A config checked against what it names outside itself, before anything relies on it.

config.py checks the values; this checks that they can be used here: every route URL (its
``env:NAME`` or ``file:PATH`` resolved) is one apprise can parse, the Redis URL one redis-py
can, the dead-letter file's directory and the MQTT CA file exist. ``check-config``, the
daemon's start and its reload all load through here, so a config that check-config passes
(systemd's ExecStartPre) does not then fail the service.
"""

from __future__ import annotations

from pathlib import Path

from watchtower.alerting.notify import check_urls
from watchtower.config import Config, load_config
from watchtower.errors import ConfigError


def load_checked(path: Path | None) -> Config:
    """The config file with every secret resolved, checked against what it names."""
    config = load_config(path)
    check_targets(config)
    return config


def check_targets(config: Config) -> None:
    check_urls(config.notify.routes)
    if config.state.backend == "redis" and config.state.redis_url is not None:
        from watchtower.state.redis_store import check_url  # noqa: PLC0415 - redis only here

        check_url(config.state.redis_url)
    _check_dead_letter(config.input.dead_letter)
    mqtt = config.mqtt
    if mqtt.enabled and mqtt.tls and mqtt.ca_file is not None and not Path(mqtt.ca_file).is_file():
        # else every connection attempt fails with a bare "No such file or directory"
        raise ConfigError("mqtt.ca_file", f"no such file: {mqtt.ca_file}")


def _check_dead_letter(path: str | None) -> None:
    # Only what a check can tell without creating the file (check-config must not create it).
    if path is None:
        return
    file = Path(path)
    if file.is_dir():
        raise ConfigError("input.dead_letter", f"{path} is a directory, not a file")
    if not file.parent.is_dir():
        raise ConfigError("input.dead_letter", f"no such directory: {file.parent}")
