"""The config file: the shipped one is the defaults, and bad ones name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.cli import main
from watchtower.config import Config, Secret, load_config
from watchtower.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_is_the_builtin_defaults() -> None:
    assert load_config(REPO / "config" / "watchtower.yaml") == Config()


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("bogus: 1\n", "bogus", "unknown key"),
        ("state:\n  backnd: memory\n", "state.backnd", "unknown key"),
        ("state:\n  backend: mysql\n", "state.backend", "expected one of 'memory', 'redis'"),
        ("input:\n  max_text_chars: lots\n", "input.max_text_chars", "expected a whole number"),
        ("alerts:\n  tick: soon\n", "alerts.tick", "expected a duration"),
        ("features:\n  half_lives: [1h, 5m]\n", "features.half_lives", "shortest first"),
        ("levels:\n  - name: w\n    enter: 0.5\n    exit: 0.7\n", "levels[0]", "exit <= enter"),
        ("levels:\n  - name: w\n    exit: 0.2\n", "levels[0].enter", "required key is missing"),
        (
            "levels:\n  - {name: a, enter: 0.8, exit: 0.1}\n  - {name: b, enter: 0.5, exit: 0.1}\n",
            "levels[1].enter",
            "rising enter",
        ),
        ("state:\n  backend: redis\n", "state.redis_url", "required when"),
        ("state: [1\n", "(file)", "YAML syntax error at line"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(REPO / "config" / "watchtower.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels:\n  - name: watch\n    enter: 2\n    exit: 0.1\n")
    assert main(["check-config", str(bad)]) == 2
    assert "levels[0]: need 0 <= exit <= enter <= 1" in capsys.readouterr().err


def test_secrets_come_from_the_environment_and_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WT_REDIS", "redis://:hunter2@127.0.0.1:1/0")
    path = tmp_path / "c.yaml"
    path.write_text("state:\n  backend: redis\n  redis_url: env:WT_REDIS\n")
    config = load_config(path)
    assert config.state.redis_url == "redis://:hunter2@127.0.0.1:1/0"
    assert isinstance(config.state.redis_url, Secret)
    assert "hunter2" not in repr(config)


def test_durations_accept_units() -> None:
    from watchtower.config import parse_duration

    assert [parse_duration(v, "k") for v in ("90s", "5m", "2h", "1d", 7, "250ms")] == [
        90,
        300,
        7200,
        86400,
        7,
        0.25,
    ]


def test_ports_must_be_tcp_ports(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  port: 99999\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "http.port"
