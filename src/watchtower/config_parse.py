"""The strict parser behind the config file: plain YAML data into frozen dataclasses.

Apart from ``config`` (what can be configured, and the checks) because it is generic: ``build``
fills any dataclass by its type hints, refusing unknown keys and wrong types with an error that
names the key path (``levels[1].enter``); a YAML syntax error names the line. ``Duration`` reads
``90s``, ``5m``, ``2h``, ``1d`` or seconds; ``Secret`` resolves ``env:NAME`` and ``file:PATH``
and masks its repr, so no secret reaches a log line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from watchtower.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Duration(float):
    """Seconds, written in the config as ``30s``, ``5m``, ``2h``, ``1d`` or a number."""


class Secret(str):
    """A string never shown in a repr or a log line: ``env:NAME`` and ``file:PATH`` are resolved."""

    def __repr__(self) -> str:
        return "Secret('***')"


def parse_duration(value: object, key: str) -> Duration:
    if isinstance(value, bool):
        raise ConfigError(key, "expected a duration like 30s, 5m, 2h, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):  # YAML's .nan and .inf
            raise ConfigError(key, f"a duration must be a finite number of seconds, got {value!r}")
        if value < 0:
            raise ConfigError(key, "a duration cannot be negative")
        return Duration(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(key, f"expected a duration like 30s, 5m, 2h, got {value!r}")
    return Duration(float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def resolve_secret(value: object, key: str) -> Secret:
    """What ``env:NAME`` or ``file:PATH`` names, or ``value`` itself; ``key`` for the error."""
    value = _as_written(value, key)
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(key, f"environment variable {name} is not set")
        return Secret(os.environ[name])
    if value.startswith("file:"):
        try:
            return Secret(Path(value[5:]).read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(key, f"cannot read secret file: {exc.strerror}") from None
    return Secret(value)


def _as_written(value: object, key: str) -> Secret:
    if not isinstance(value, str):
        raise ConfigError(key, "expected a string, env:NAME or file:PATH")
    return Secret(value)


# --- the strict parser ----------------------------------------------------------------------

T = TypeVar("T")


def build(cls: type[T], data: object, key: str = "", *, secrets: bool = True) -> T:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and wrong types.

    ``secrets=False`` leaves each ``Secret`` as written (``env:NAME``, ``file:PATH`` or the value
    itself), for ``resolve_secret`` to resolve later: see ``load_config``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(key or "(top level)", "expected a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in data:
        if name not in known:
            raise ConfigError(_join(key, str(name)), "unknown key")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], _join(key, name), secrets)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(key, name), "required key is missing")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(_join(key, exc.key), exc.reason) from None


def _join(key: str, name: str) -> str:
    if not key:
        return name
    return f"{key}{name}" if name.startswith("[") else f"{key}.{name}"


def _convert(hint: Any, value: object, key: str, secrets: bool) -> Any:  # noqa: PLR0911 - a case a type
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _convert(inner, value, key, secrets)
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(c) for c in get_args(hint))
            raise ConfigError(key, f"expected one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(key, "expected a list")
        item = get_args(hint)[0]
        return tuple(_convert(item, v, f"{key}[{i}]", secrets) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, "expected a mapping")
        item = get_args(hint)[1]
        return {str(k): _convert(item, v, _join(key, str(k)), secrets) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key, secrets=secrets)  # type: ignore[arg-type]
    if hint is Secret:
        return resolve_secret(value, key) if secrets else _as_written(value, key)
    return _convert_scalar(hint, value, key)


def _convert_scalar(hint: Any, value: object, key: str) -> object:
    if hint is Duration:
        return parse_duration(value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        if not math.isfinite(value):  # YAML's .nan and .inf: every comparison with NaN is False
            raise ConfigError(key, f"expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    raise ConfigError(key, f"unsupported config type {hint!r}")  # a bug in a section class


def load_yaml(path: Path) -> object:
    """Read a YAML file; a syntax error names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark is not None else "unknown line"
        raise ConfigError("(file)", f"YAML syntax error at {where}: {exc.problem}") from None
