"""A config checked against what it names outside itself, before anything relies on it.

config.py checks the values; this checks that they can be used here: every route URL (its
``env:NAME`` or ``file:PATH`` resolved) is one apprise can parse. ``check-config``, the daemon's
start and its reload all load through here, so a config that check-config passes (systemd's
ExecStartPre) does not then fail the service.
"""

from __future__ import annotations

from pathlib import Path

from watchtower.alerting.notify import check_urls
from watchtower.config import Config, load_config


def load_checked(path: Path | None) -> Config:
    """The config file with every secret resolved, checked against what it names."""
    config = load_config(path)
    check_targets(config)
    return config


def check_targets(config: Config) -> None:
    check_urls(config.notify.routes)
