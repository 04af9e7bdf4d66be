"""The config file: the shipped one is the defaults, and bad ones name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.cli import main
from watchtower.config import Config, load_config
from watchtower.config_parse import Secret
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
        # values of the right type that cannot work: each crashed or misbehaved at run time
        ("alerts:\n  tick: 0s\n", "alerts.tick", "must be longer than 0"),
        ("alerts:\n  repeat_interval: 0\n", "alerts.repeat_interval", "longer than 0"),
        ("alerts:\n  resolve_after_quiet: 0s\n", "alerts.resolve_after_quiet", "longer than 0"),
        ("features:\n  half_lives: [0s]\n", "features.half_lives[0]", "longer than 0"),
        ("features:\n  sparkline_bucket: 0s\n", "features.sparkline_bucket", "longer than 0"),
        ("features:\n  sparkline_buckets: 0\n", "features.sparkline_buckets", "1 or more"),
        ("features:\n  top_mentions: -1\n", "features.top_mentions", "0 or more"),
        ("mqtt:\n  enabled: true\n  topics: []\n", "mqtt.topics", "at least one topic"),
        ("mqtt:\n  topics: [a, '']\n", "mqtt.topics[1]", "cannot be empty"),
        ("mqtt:\n  keepalive: -1\n", "mqtt.keepalive", "0 to 65535"),
        ("mqtt:\n  keepalive: 70000\n", "mqtt.keepalive", "0 to 65535"),
        ("daemon:\n  batch_size: 0\n", "daemon.batch_size", "must be 1 or more, got 0"),
        ("daemon:\n  batch_size: -1\n", "daemon.batch_size", "must be 1 or more, got -1"),
        ("daemon:\n  queue_size: 0\n", "daemon.queue_size", "must be 1 or more, got 0"),
        ("daemon:\n  queue_size: -1\n", "daemon.queue_size", "must be 1 or more, got -1"),
        ("input:\n  max_text_chars: 0\n", "input.max_text_chars", "1 or more"),
        ("input:\n  max_remembered_roots: 0\n", "input.max_remembered_roots", "1 or more"),
        ("input:\n  root_memory: 0s\n", "input.root_memory", "longer than 0"),
        ("state:\n  thread_ttl: 0s\n", "state.thread_ttl", "longer than 0"),
        ("scoring:\n  min_negativity: 1.5\n", "scoring.min_negativity", "0 to 1"),
        ("storms:\n  min_rate: 0\n", "storms.min_rate", "above 0"),
        ("http:\n  max_body_bytes: 0\n", "http.max_body_bytes", "1 or more"),
        ("http:\n  body_timeout: 0s\n", "http.body_timeout", "longer than 0"),
        ("notify:\n  retry_initial: 0s\n", "notify.retry_initial", "longer than 0"),
        ("notify:\n  max_attempts: 0\n", "notify.max_attempts", "1 or more"),
        # NaN passes every `<` check and inf every `>`: refused wherever a number goes
        ("alerts:\n  tick: .nan\n", "alerts.tick", "finite"),
        ("alerts:\n  tick: .inf\n", "alerts.tick", "finite"),
        ("input:\n  max_future: .inf\n", "input.max_future", "finite"),
        ("momentum:\n  horizon: .nan\n", "momentum.horizon", "finite"),
        ("storms:\n  min_ratio: .nan\n", "storms.min_ratio", "finite"),
        ("scoring:\n  min_negativity: .nan\n", "scoring.min_negativity", "finite"),
        ("sentiment:\n  prior_weight: .inf\n", "sentiment.prior_weight", "finite"),
        ("levels:\n  - {name: w, enter: .nan, exit: 0.1}\n", "levels[0].enter", "finite"),
        # a file truncated mid-edit, then reloaded, would drop every route and level
        ("", "(file)", "holds no settings: write {} for the defaults"),
        ("# all commented out\n", "(file)", "holds no settings"),
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


@pytest.mark.parametrize("command", ["check-config", "replay", "run"])
def test_commands_that_use_every_secret_fail_fast_on_an_unset_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    monkeypatch.delenv("WT_PAGER_URL", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text("notify:\n  routes:\n    - {name: pager, urls: [env:WT_PAGER_URL]}\n")
    argv = {
        "check-config": ["check-config", str(config)],
        "replay": ["replay", "-", "--config", str(config)],
        "run": ["run", "--config", str(config)],
    }[command]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "watchtower: config error: notify.routes[0].urls[0]: "
        "environment variable WT_PAGER_URL is not set\n"
    )


@pytest.mark.parametrize(
    ("urls", "error"),
    [
        (
            "[json://localhost, notaurl]",
            "notify.routes[0].urls[1]: not a valid apprise URL (no scheme://)",
        ),
        ("['slack://bad']", "notify.routes[0].urls[0]: not a valid apprise URL (slack://***)"),
        (
            "[env:WT_TEST_ROUTE_URL]",
            "notify.routes[0].urls[0]: not a valid apprise URL (slack://***)",
        ),
    ],
)
def test_check_config_names_a_route_url_apprise_cannot_parse(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    urls: str,
    error: str,
) -> None:
    monkeypatch.setenv("WT_TEST_ROUTE_URL", "slack://T0-secret-part")  # checked as resolved
    config = tmp_path / "c.yaml"
    config.write_text(f"notify:\n  routes:\n    - {{name: chat, urls: {urls}}}\n")
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert err == f"watchtower: config error: {error}\n"
    assert "secret-part" not in out + err
    assert main(["run", "--config", str(config)]) == 2  # the daemon refuses it as it starts
    assert capsys.readouterr().err == f"watchtower: config error: {error}\n"


def test_check_config_passes_route_urls_apprise_parses(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    urls = "[json://localhost, 'slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts']"
    config.write_text(f"notify:\n  routes:\n    - {{name: chat, urls: {urls}}}\n")
    assert main(["check-config", str(config)]) == 0


def test_check_config_and_run_refuse_a_dead_letter_in_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such"
    config = tmp_path / "c.yaml"
    config.write_text(f"input:\n  dead_letter: {missing / 'dead.jsonl'}\n")
    for argv in (["check-config", str(config)], ["run", "--config", str(config)]):
        assert main(argv) == 2
        assert capsys.readouterr().err == (
            f"watchtower: config error: input.dead_letter: no such directory: {missing}\n"
        )
    config.write_text(f"input:\n  dead_letter: {tmp_path}\n")
    assert main(["check-config", str(config)]) == 2
    assert f"input.dead_letter: {tmp_path} is a directory" in capsys.readouterr().err
    config.write_text(f"input:\n  dead_letter: {tmp_path / 'dead.jsonl'}\n")
    assert main(["check-config", str(config)]) == 0
    assert not (tmp_path / "dead.jsonl").exists()  # a check creates nothing


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "state:\n  backend: redis\n  redis_url: 'notaurl:hunter2'\n",
            "state.redis_url: not a Redis URL: redis://host:port/db, rediss://host:port/db or "
            "unix://path",
        ),
        (
            "mqtt:\n  enabled: true\n  tls: true\n  ca_file: /surely/no/ca.pem\n",
            "mqtt.ca_file: no such file: /surely/no/ca.pem",
        ),
    ],
)
def test_check_config_and_run_refuse_what_the_daemon_would_fail_on_at_connect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, error: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text + "http:\n  port: 0\n")
    for argv in (["check-config", str(config)], ["run", "--config", str(config)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"watchtower: config error: {error}\n"
        assert "hunter2" not in err


def test_durations_accept_units() -> None:
    from watchtower.config_parse import parse_duration

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
