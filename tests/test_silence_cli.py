"""``watchtower silence add|list|lift`` against the daemon's real HTTP API on a loopback port.

The CLI's entry function runs in a worker thread (it blocks on urllib while the daemon answers on
the test's event loop); one test runs the installed ``watchtower`` script as a subprocess. The
daemon's ManualClock is set, per test, 30 s ahead of the wall clock the CLI reads, so "how long
is left" is mid-minute and exact (``2h00m left``) however long a test takes, up to 30 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from watchtower.cli import main
from watchtower.clock import ManualClock
from watchtower.config import Config, HttpConfig, NotifyConfig
from watchtower.config_parse import Secret
from watchtower.daemon import Daemon
from watchtower.errors import ConfigError
from watchtower.mention import format_time
from watchtower.silence_command import left, listen_url, target_of

from servers import daemon_api, free_port

T0 = 1_790_000_000.0  # for the pure tests of left()
TOKEN = "s3cret-cli-token"  # noqa: S105 - a test token
WRONG = "not-the-token"
TOKEN_VAR = "WT_SILENCE_TEST_TOKEN"  # noqa: S105 - a variable's name


@dataclass
class Cli:
    daemon: Daemon
    base: str  # the daemon's URL
    config: Path  # a config file naming its port and (as env:NAME) its token
    capsys: pytest.CaptureFixture[str]
    now: float  # the daemon's clock: the wall clock at the start of the test + 30 s

    async def run(self, *argv: str) -> tuple[int, str, str]:
        """``watchtower silence ARGV``: exit code, stdout, stderr."""
        code = await asyncio.to_thread(main, ["silence", *argv])
        out, err = self.capsys.readouterr()
        assert TOKEN not in out + err  # never printed, whatever happened
        return code, out, err

    async def silences(self) -> dict[str, float]:
        """What the daemon itself holds, not what the CLI says."""
        return await self.daemon.runtime.delivery.silences()


def write_config(path: Path, port: int, *lines: str) -> Path:
    path.write_text("\n".join(["http:", f"  port: {port}", *lines]) + "\n")
    return path


@pytest.fixture
async def cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cli]:
    monkeypatch.delenv("WATCHTOWER_TOKEN", raising=False)
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN)), notify=NotifyConfig(console=False)
    )
    now = float(int(time.time())) + 30
    daemon = Daemon(config, clock=ManualClock(now))
    async with daemon_api(daemon) as (base, _):
        port = urlsplit(base).port
        assert port is not None
        path = write_config(tmp_path / "watchtower.yaml", port, f"  token: env:{TOKEN_VAR}")
        yield Cli(daemon, base, path, capsys, now)


async def test_add_for_a_duration_with_address_and_token_from_the_config(cli: Cli) -> None:
    code, out, err = await cli.run("add", "united", "--for", "2h", "--config", str(cli.config))
    assert (code, err) == (0, "")
    assert out == f"silenced united until {format_time(cli.now + 7200)} (2h00m left)\n"
    assert await cli.silences() == {"united": cli.now + 7200}


async def test_add_until_a_time_with_url_and_token_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHTOWER_TOKEN", TOKEN)
    until = cli.now + 3 * 3600 + 0.5
    stamp = format_time(until).replace(".500Z", ".5+00:00")
    code, out, _ = await cli.run("add", "*", "--until", stamp, "--url", cli.base + "/")
    assert code == 0
    assert out == f"silenced * (all brands) until {format_time(until)} (3h00m left)\n"
    assert await cli.silences() == {"*": until}


async def test_a_new_silence_replaces_the_old_one(cli: Cli) -> None:
    for length in ("2h", "45m"):
        code, _, _ = await cli.run("add", "united", "--for", length, "--config", str(cli.config))
        assert code == 0
    assert await cli.silences() == {"united": cli.now + 2700}


async def test_list_prints_one_line_per_silence_with_its_end_and_what_is_left(cli: Cli) -> None:
    await cli.daemon.runtime.silence("united", cli.now + 7200)
    await cli.daemon.runtime.silence("*", cli.now + 3 * 86_400 + 4 * 3600)
    await cli.daemon.runtime.silence("delta", cli.now + 725)
    code, out, err = await cli.run("list", "--config", str(cli.config))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"* (all brands)  until {format_time(cli.now + 3 * 86_400 + 4 * 3600)}  (3d04h left)",
        f"delta           until {format_time(cli.now + 725)}  (12m left)",
        f"united          until {format_time(cli.now + 7200)}  (2h00m left)",
    ]


async def test_list_with_none_in_force_prints_no_line(cli: Cli) -> None:
    code, out, err = await cli.run("list", "--config", str(cli.config))
    assert (code, out) == (0, "")
    assert "no silences in force" in err


async def test_lift_ends_a_silence_and_a_second_lift_is_the_daemons_404(cli: Cli) -> None:
    await cli.daemon.runtime.silence("united", cli.now + 7200)
    await cli.daemon.runtime.silence("delta", cli.now + 7200)
    code, out, _ = await cli.run("lift", "united", "--config", str(cli.config))
    assert (code, out) == (0, "lifted united\n")
    assert await cli.silences() == {"delta": cli.now + 7200}
    code, out, err = await cli.run("lift", "united", "--config", str(cli.config))
    assert (code, out) == (1, "")
    assert err == "watchtower silence: the daemon answered 404: no active silence for 'united'\n"
    assert await cli.silences() == {"delta": cli.now + 7200}


@pytest.mark.parametrize(
    ("brand", "shown"), [("*", "* (all brands)"), ("united airlines", "united airlines")]
)
async def test_lift_a_brand_that_needs_quoting_in_the_path(
    cli: Cli, brand: str, shown: str
) -> None:
    await cli.daemon.runtime.silence(brand, cli.now + 600)
    code, out, _ = await cli.run("lift", brand, "--config", str(cli.config))
    assert (code, out) == (0, f"lifted {shown}\n")
    assert await cli.silences() == {}


@pytest.mark.parametrize(
    ("window", "error"),
    [
        (
            ["--for", "2 fortnights"],
            "for: expected a duration like 30s, 5m, 2h, got '2 fortnights'",
        ),
        (["--for", "31d"], "for: a silence lasts at most 30d"),
        (
            ["--until", "2026-01-01T08:00:00"],
            "until: time '2026-01-01T08:00:00' has no zone (add Z or +00:00)",
        ),
        (["--until", "2020-01-01T08:00:00Z"], "until: the silence must end in the future"),
    ],
)
async def test_a_bad_window_prints_the_daemons_error_naming_the_field(
    cli: Cli, window: list[str], error: str
) -> None:
    code, out, err = await cli.run("add", "united", *window, "--config", str(cli.config))
    assert (code, out) == (1, "")
    assert err == f"watchtower silence: the daemon refused the request (400): {error}\n"
    assert await cli.silences() == {}


async def test_a_wrong_token_is_exit_1_with_the_401_and_where_the_token_comes_from(
    cli: Cli, tmp_path: Path
) -> None:
    port = urlsplit(cli.base).port
    assert port is not None
    wrong = write_config(tmp_path / "wrong.yaml", port, f"  token: {WRONG}")
    for action in (["add", "united", "--for", "2h"], ["list"], ["lift", "united"]):
        code, out, err = await cli.run(*action, "--config", str(wrong))
        assert (code, out) == (1, ""), action
        assert "the daemon refused the token (401): missing or wrong bearer token" in err
        assert "http.token in --config, else $WATCHTOWER_TOKEN" in err
        assert WRONG not in err
    assert await cli.silences() == {}


async def test_no_token_at_all_says_none_was_sent(cli: Cli) -> None:
    code, _, err = await cli.run("list", "--url", cli.base)
    assert code == 1
    assert "wants a token and none was sent (401): missing or wrong bearer token" in err


async def test_an_unreachable_daemon_is_exit_3_naming_the_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = await asyncio.to_thread(main, ["silence", "add", "united", "--for", "2h", "--url", url])
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")
    assert err.startswith(f"watchtower silence: cannot reach the daemon at {url}: ")
    assert "Connection refused" in err


async def test_something_else_at_the_url_is_reported_as_such(cli: Cli) -> None:
    code, _, err = await cli.run(
        "list", "--url", cli.base + "/nowhere", "--config", str(cli.config)
    )
    assert code == 1
    assert f"{cli.base}/nowhere/v1/silences answered 404, not as the watchtower API does" in err


async def test_the_installed_script_sets_a_silence(cli: Cli) -> None:
    script = Path(sys.executable).parent / "watchtower"
    env = {**os.environ, "WATCHTOWER_TOKEN": TOKEN}
    process = await asyncio.create_subprocess_exec(
        str(script), "silence", "add", "united", "--for", "90m", "--url", cli.base,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err
    assert out.decode() == f"silenced united until {format_time(cli.now + 5400)} (1h30m left)\n"
    assert TOKEN.encode() not in out + err
    assert await cli.silences() == {"united": cli.now + 5400}


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["  enabled: false"], "http.enabled: the daemon's HTTP API is off in this config"),
        (["  token: env:WT_SURELY_UNSET_VAR"], "environment variable WT_SURELY_UNSET_VAR is not"),
    ],
)
def test_a_config_that_names_no_reachable_daemon_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], error: str
) -> None:
    config = write_config(tmp_path / "c.yaml", 8080, *lines)
    assert main(["silence", "list", "--config", str(config)]) == 2
    assert error in capsys.readouterr().err


async def test_secrets_only_the_daemon_holds_are_not_needed_to_silence(
    cli: Cli, tmp_path: Path
) -> None:
    # As under systemd: the route, Redis and MQTT secrets are in /etc/watchtower/env, which only
    # the service reads; on-call's shell has none of them, and silence needs none of them.
    port = urlsplit(cli.base).port
    config = tmp_path / "systemd.yaml"
    config.write_text(
        f"http:\n  port: {port}\n  token: env:{TOKEN_VAR}\n"
        "state:\n  redis_url: env:WT_SURELY_UNSET_REDIS\n"
        "mqtt:\n  password: file:/surely/not/a/file\n"
        "notify:\n  routes:\n    - {name: pager, urls: [env:WT_SURELY_UNSET_PAGER]}\n"
    )
    code, out, err = await cli.run("add", "united", "--for", "2h", "--config", str(config))
    assert (code, err) == (0, "")
    assert out.startswith("silenced united until ")
    code, out, _ = await cli.run("list", "--config", str(config))
    assert (code, out.split()[0]) == (0, "united")
    assert await cli.silences() == {"united": cli.now + 7200}


async def test_a_token_only_the_daemon_holds_is_taken_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # http.token is env:NAME set only in the service's environment; on-call exports
    # WATCHTOWER_TOKEN, as the README says, and that is what is sent
    monkeypatch.delenv(TOKEN_VAR)
    code, _, err = await cli.run("list", "--config", str(cli.config))
    assert code == 2
    assert f"http.token: environment variable {TOKEN_VAR} is not set" in err
    monkeypatch.setenv("WATCHTOWER_TOKEN", TOKEN)
    code, _, err = await cli.run("add", "united", "--for", "1h", "--config", str(cli.config))
    assert (code, err) == (0, "")
    assert await cli.silences() == {"united": cli.now + 3600}


def test_a_config_listening_on_any_free_port_needs_url(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", 0)
    with pytest.raises(ConfigError, match=r"http.port: 0 \(any free port\) cannot be reached"):
        target_of(None, config)
    assert target_of("http://10.0.0.5:9000", config).url == "http://10.0.0.5:9000"


def test_without_a_config_the_default_address_and_the_environment_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHTOWER_TOKEN", TOKEN)
    target = target_of(None, None)
    assert (target.url, target.token) == ("http://127.0.0.1:8080", TOKEN)
    assert TOKEN not in repr(target)
    assert target_of("10.0.0.5:8080", None).url == "http://10.0.0.5:8080"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("0.0.0.0", "http://127.0.0.1:9000"),  # noqa: S104 - a listen address under test
        ("::", "http://[::1]:9000"),
        ("fd00::5", "http://[fd00::5]:9000"),
        ("watch.internal", "http://watch.internal:9000"),
    ],
)
def test_the_url_from_the_listen_address(host: str, url: str) -> None:
    assert listen_url(HttpConfig(host=host, port=9000)) == url


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (7200, "2h00m left"),
        (7199.6, "2h00m left"),
        (7170, "1h59m left"),
        (3 * 86_400 + 4 * 3600 + 59, "3d04h left"),
        (750, "12m left"),
        (90, "1m left"),
        (45, "45s left"),
        (0.2, "ending now"),
        (-5, "ending now"),
    ],
)
def test_left(seconds: float, text: str) -> None:
    assert left(T0 + seconds, T0) == text
