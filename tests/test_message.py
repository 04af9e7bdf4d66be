"""Messages: what on-call reads, URL redaction, and notify-test through a real HTTP receiver."""

from __future__ import annotations

import argparse
import asyncio
import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from test_storms import bucketed, run, steady
from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.message import FAILURE, SUCCESS, WARNING, Message, followers, render
from watchtower.alerting.notify import redact, send
from watchtower.alerting.notify_test import (
    add_notify_test_command,
    sample_message,
    sample_transition,
)
from watchtower.config import Config, LevelConfig, RouteConfig
from watchtower.config_parse import Secret
from watchtower.errors import ConfigError

from servers import Received, Receiver

NOW = 1_790_000_000.0


ABOUT = ': "Cancelled again, four hours at the gate and nobody to talk to"'


def test_title_says_level_brand_thread_score_and_what_it_is_about() -> None:
    m = render(sample_transition(NOW, "critical"))
    assert m.title == (
        "[CRITICAL] sample-brand: thread tw:1790000000000000001 escalating (score 0.91)" + ABOUT
    )
    assert m.notify_type == FAILURE
    watch = render(sample_transition(NOW, "watch"))
    assert watch.title.startswith("[WATCH] sample-brand: ")
    assert watch.notify_type == WARNING
    repeat = render(replace(sample_transition(NOW), repeat=True))
    assert " still firing (score 0.91)" in repeat.title  # not "escalating": it may be calming


def test_the_notify_test_sample_is_scored_against_the_configs_own_top_level() -> None:
    config = Config(levels=(LevelConfig("chat", 0.5, 0.3), LevelConfig("page", 0.95, 0.7)))
    m = sample_message(config)
    assert m.title.startswith("[TEST] [PAGE] sample-brand: thread tw:")
    assert "(score 0.95)" in m.title
    assert "**Why:** score 0.95 >= page 0.95" in m.body
    assert m.notify_type == FAILURE  # the top level pages


def test_body_says_why_how_fast_how_angry_who_and_where() -> None:
    body = render(sample_transition(NOW)).body
    assert "score 0.91 >= critical 0.85" in body  # the why
    assert "- accelerating x2.4 (short vs long rate)" in body  # explanation.crossed
    assert "4.2/min" in body
    assert "acceleration x2.4" in body
    assert "78% negative" in body
    assert "**Authors:** 41" in body
    assert "`▁▁▂▃▅▇█`" in body  # the sparkline, as code so chats keep it monospaced
    assert '@\u200bloud_traveller (1.2M followers): "Third cancelled flight' in body
    assert "(https://x.com/loud_traveller/status/1790000000000000007)" in body
    assert "[open thread](https://x.com/someone/status/1790000000000000001)" in body
    assert f"`tw:1790000000000000001@{int(NOW) - 35 * 60}` #2" in body


def test_resolve_says_how_long_it_lasted() -> None:
    t = replace(sample_transition(NOW), state="resolved", why="quiet for 120 min", top_mentions=[])
    m = render(t)
    assert m.notify_type == SUCCESS
    assert m.title == (
        "[RESOLVED] sample-brand: thread tw:1790000000000000001 resolved after 35 min" + ABOUT
    )
    assert "**Resolved** after 35 min (critical at the end): quiet for 120 min" in m.body


def test_the_headline_is_cut_for_a_lock_screen_and_left_out_when_it_shows_nothing() -> None:
    t = sample_transition(NOW)
    long = render(replace(t, headline="word " * 100)).title
    assert long.endswith(': "' + ("word " * 16).strip() + '…"')  # 80 characters of it at most
    plain = "[CRITICAL] sample-brand: thread tw:1790000000000000001 escalating (score 0.91)"
    for nothing in ("", "  \n\t", "\u200b\u202e"):
        assert render(replace(t, headline=nothing)).title == plain


def test_stays_short_for_chat_even_with_long_posts() -> None:
    post = {"handle": "a", "followers": 12_345, "url": None, "text": "word " * 500}
    t = replace(sample_transition(NOW), top_mentions=[post] * 10, url=None)
    m = render(t)
    assert len(m.body) < 1500
    assert m.body.count("@\u200ba (12.3k followers)") == 3  # the top three, snippets cut
    assert "…" in m.body
    assert "(no link)" in m.body


def test_followers_read_like_people_say_them() -> None:
    assert [followers(n) for n in (950, 12_345, 2_500_000)] == ["950", "12.3k", "2.5M"]


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        (
            "json://user:pw@hooks.example.com:8080/x/y?t=1",
            "json://hooks.example.com:8080/***",
            "pw",
        ),
        ("slack://T1SECRET/B2SECRET/C3SECRET", "slack://***", "SECRET"),
        ("pagerduty://INTEGRATIONKEY@APIKEY", "pagerduty://***", "KEY"),
        ("msteams://team/abc/def/ghi", "msteams://***", "abc"),
        ("json://127.0.0.1:8000", "json://127.0.0.1:8000", "?"),
        ("http://[::1", "***", "::1"),
    ],
)
def test_redact_keeps_scheme_and_host_only(url: str, shown: str, hidden: str) -> None:
    assert redact(url) == shown
    assert hidden not in redact(url)


async def test_delivered_over_http_as_apprise_json(receiver: Receiver) -> None:
    route = RouteConfig("chat", (Secret(receiver.url("/hook")),))
    message = render(sample_transition(NOW))
    result = await send(route, message)
    assert result.ok
    assert result.urls[0].url == receiver.url("/***")
    (request,) = receiver.requests
    assert request.data == {
        "version": "1.0",
        "title": message.title,
        "message": message.body,
        "attachments": [],
        "type": "failure",
    }


async def test_send_says_which_failures_are_worth_retrying(receiver: Receiver) -> None:
    route = RouteConfig("chat", (Secret(receiver.url("/hook")), Secret("nosuchscheme://x")))
    receiver.fail_next(1, 503)
    first = await send(route, render(sample_transition(NOW)))
    assert [(u.ok, u.retryable, u.detail) for u in first.urls] == [
        (False, True, "HTTP 503"),
        (False, False, "not a valid apprise URL"),
    ]
    assert first.retryable
    receiver.fail_next(1, 401)
    second = await send(route, render(sample_transition(NOW)), skip=[first.urls[1].digest])
    assert [(u.ok, u.retryable, u.detail) for u in second.urls] == [(False, False, "HTTP 401")]
    assert not second.retryable


def _notify_test_args(tmp_path: Path, url: str, route: str, *more: str) -> argparse.Namespace:
    config = tmp_path / "watchtower.yaml"
    urls = ", ".join(f"'{u}'" for u in (url, *more))
    config.write_text(f"notify:\n  routes:\n    - name: chat\n      urls: [{urls}]\n")
    parser = argparse.ArgumentParser()
    add_notify_test_command(parser.add_subparsers())
    return parser.parse_args(["notify-test", "--config", str(config), "--route", route])


async def test_notify_test_command(
    receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _notify_test_args(tmp_path, receiver.url("/secret-token"), "chat")
    assert await asyncio.to_thread(args.func, args) == 0
    out = capsys.readouterr().out
    assert out == f"ok     urls[0] {receiver.url('/***')}\n"
    (request,) = receiver.requests
    assert isinstance(request.data, dict)
    assert request.data["title"].startswith("[TEST] [CRITICAL] ")
    assert "nothing is wrong" in request.data["message"]

    receiver.fail_next(1)
    assert await asyncio.to_thread(args.func, args) == 1
    assert "FAILED" in capsys.readouterr().out

    unknown = _notify_test_args(tmp_path, receiver.url("/x"), "pager")
    assert await asyncio.to_thread(unknown.func, unknown) == 2
    assert "no route named 'pager' (routes: chat)" in capsys.readouterr().err


async def test_notify_test_tells_apart_two_urls_on_one_host(
    receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redacted, both URLs read json://127.0.0.1:PORT/***: their position says which failed."""
    receiver.fail_path("/broken")
    args = _notify_test_args(tmp_path, receiver.url("/working"), "chat", receiver.url("/broken"))
    assert await asyncio.to_thread(args.func, args) == 1
    shown = receiver.url("/***")
    assert capsys.readouterr().out.splitlines() == [
        f"ok     urls[0] {shown}",
        f"FAILED urls[1] {shown}: HTTP 500",
    ]
    assert sorted(r.path for r in receiver.requests) == ["/broken", "/working"]


async def test_notify_test_resolves_only_its_routes_secrets(
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WT_TEST_CHAT_URL", receiver.url("/chat-token"))
    monkeypatch.delenv("WT_PAGER_URL", raising=False)  # only the daemon's environment has it
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        "state:\n  redis_url: env:WT_SURELY_UNSET_REDIS\n"
        "notify:\n  routes:\n"
        "    - {name: pager, urls: [env:WT_PAGER_URL]}\n"
        "    - {name: chat, urls: [env:WT_TEST_CHAT_URL]}\n"
    )
    parser = argparse.ArgumentParser()
    add_notify_test_command(parser.add_subparsers())
    chat = parser.parse_args(["notify-test", "--config", str(config), "--route", "chat"])
    assert await asyncio.to_thread(chat.func, chat) == 0
    assert capsys.readouterr().out == f"ok     urls[0] {receiver.url('/***')}\n"
    assert len(receiver.requests) == 1
    pager = parser.parse_args(["notify-test", "--config", str(config), "--route", "pager"])
    with pytest.raises(ConfigError) as caught:  # main() prints it, exit 2
        await asyncio.to_thread(pager.func, pager)
    assert str(caught.value) == (
        "notify.routes[0].urls[0]: environment variable WT_PAGER_URL is not set"
    )


# Mention-controlled values (from producers, and through them from the public) come out inert.

NASTY = (
    "x\r\n\n**Thread:** [open thread](http://evil.example) <!here> <@U1|you> @everyone @Channel"
    " \u202egnp.exe\u2028\x85\x1b[2J`code`"
)
HOSTILE_FIELDS = ["brand", "thread_id", "headline", "episode_id", "handle", "text"]
HOSTILE_URLS = [
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://a.example/x y",
    "https://a.example/x)](http://evil.example",
    "https://a.example/<!here>",
    "https://x.com@evil.example/status/1",
    "https:///no-host",
    "ftp://a.example/file",
]


def _with(field: str, value: str) -> AlertTransition:
    t = sample_transition(NOW)
    changes: dict[str, Any] = {field: value}
    if field in ("handle", "text"):
        changes = {"top_mentions": [{**t.top_mentions[0], field: value}]}
    return replace(t, **changes)


def _unescaped_links(text: str) -> int:
    return len(re.findall(r"(?<!\\)\]\(", text))


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_hostile_values_cannot_fake_lines_links_or_mentions(field: str) -> None:
    plain = render(sample_transition(NOW))
    m = render(_with(field, NASTY))
    shown = m.title + "\n" + m.body
    assert m.title.splitlines() == [m.title]  # \r, \n, U+2028, U+0085 all split lines
    assert len(m.body.splitlines()) == len(plain.body.splitlines())
    assert m.body.count("**Thread:**") == 1
    assert _unescaped_links(shown) == _unescaped_links(plain.title + "\n" + plain.body)
    assert re.search(r"(?<!\\)<", shown) is None  # no <!here>, <@U1|you>, <url|text> or HTML
    assert "@everyone" not in shown
    assert "@channel" not in shown.lower()
    assert "\u202e" not in shown
    assert "\x1b" not in shown
    assert re.search(r"(?<!\\)\*\*Thread", m.title) is None


def test_hostile_values_are_escaped_not_lost() -> None:
    m = render(_with("brand", "acme\n[RESOLVED] all clear"))
    assert m.title.startswith("[CRITICAL] acme \\[RESOLVED\\] all clear: thread ")
    m = render(_with("thread_id", "t1](http://evil.example)"))
    assert " thread t1\\](http://evil.example) escalating " in m.title
    body = render(_with("handle", "<!here>")).body
    assert '1. @\\<!here\\> (1.2M followers): "Third' in body
    body = render(_with("handle", "everyone")).body
    assert "1. @\u200beveryone (1.2M followers)" in body  # a zero-width space breaks the ping
    body = render(_with("text", "see [click](http://evil.example)\n\n*now* _or_ \\")).body
    assert '"see \\[click\\](http://evil.example) \\*now\\* \\_or\\_ \\\\" [link](' in body
    body = render(_with("text", "bad \u202egnp.exe\u200b ok")).body
    assert '"bad gnp.exe ok"' in body  # bidi override and zero-width space dropped
    body = render(_with("episode_id", "e`1`\n@here@1")).body
    assert "episode e\\`1\\` @\u200bhere@1 #2" in body  # no code span it could close


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_plain_http_urls_become_links(url: str) -> None:
    t = sample_transition(NOW)
    t = replace(t, url=url, top_mentions=[{**t.top_mentions[0], "url": url}])
    body = render(t).body
    assert url not in body
    assert _unescaped_links(body) == 0
    assert "(link withheld)" in body
    assert "**Thread:** (link withheld: not a plain http(s) URL)" in body


def test_a_url_with_parentheses_stays_a_working_link() -> None:
    url = "https://en.wikipedia.org/wiki/Acme_(company)"
    body = render(replace(sample_transition(NOW), url=url)).body
    assert "[open thread](https://en.wikipedia.org/wiki/Acme_%28company%29)" in body


def test_ordinary_values_come_out_unchanged() -> None:
    text = "Flight UA_123 delayed 3h at gate B12 (again!) - anyone else? #fail :( 😡 ‍👩‍👧 é"
    url = "https://x.com/acme_telecom/status/17?s=20&t=a-b_c#frag"
    post = {"handle": "united", "followers": 950, "url": url, "text": text}
    t = replace(
        sample_transition(NOW),
        brand="acme_telecom",
        thread_id="tw:123",
        episode_id="tw:123@1789997900",
        url="https://x.com/acme_telecom/status/123",
        top_mentions=[post],
        headline="Flight UA_123 delayed 3h at gate B12 (again!) #fail 😡 ‍👩‍👧 é",
    )
    m = render(t)
    assert m.title == (
        "[CRITICAL] acme_telecom: thread tw:123 escalating (score 0.91):"
        ' "Flight UA_123 delayed 3h at gate B12 (again!) #fail 😡 ‍👩‍👧 é"'
    )
    assert f'1. @\u200bunited (950 followers): "{text}" [link]({url})' in m.body
    assert m.body.endswith(
        "**Thread:** [open thread](https://x.com/acme_telecom/status/123)"
        " · episode `tw:123@1789997900` #2"
    )


def test_console_line_is_one_line() -> None:
    t = replace(sample_transition(NOW), thread_id="t1\n2099-01-01T00:00:00.000Z CRITICAL\x1b[2J")
    line = t.summary_line()
    assert line.splitlines() == [line]
    assert "\x1b" not in line  # no terminal escape either
    assert " t1 2099-01-01T00:00:00.000Z CRITICAL [2J score=0.91 " in line


# Mentions: nothing from a post, handle, brand or id can ping anyone, in Markdown or plain text.

Z = "\u200b"  # the zero-width space that breaks a mention
MENTIONS = "@alice <@U1> <@!2> <@&3> <!here> @**bob** @*ops* x@y.example"
LIVE_MENTION = re.compile(r"@(?=[\w*!&])")  # an @ some chat could take for a mention


def _live_mentions(m: Message, t: AlertTransition) -> list[str]:
    """The live-looking @s of a message, but the ``@<start epoch>`` of its episode id (ours)."""
    shown = (m.title + "\n" + m.body).replace("@" + t.episode_id.rpartition("@")[2], "")
    return LIVE_MENTION.findall(shown)


@pytest.mark.parametrize(
    ("text", "markdown", "plain_text"),
    [
        ("@alice", f"@{Z}alice", f"@{Z}alice"),
        (
            "hi @alice.b, @_Bob_S and @Ünal",
            f"hi @{Z}alice.b, @{Z}\\_Bob_S and @{Z}Ünal",
            f"hi @{Z}alice.b, @{Z}_Bob_S and @{Z}Ünal",
        ),
        ("@Here @channel @everyone", f"@{Z}Here @{Z}channel @{Z}everyone", None),
        (
            "<@U123> <@!123> <@&456> <#C1>",
            f"\\<@{Z}U123\\> \\<@{Z}!123\\> \\<@{Z}&456\\> \\<#C1\\>",
            f"<{Z}@{Z}U123> <{Z}@{Z}!123> <{Z}@{Z}&456> <{Z}#C1>",
        ),
        (
            "<!here> <!subteam^S1|ops>",
            "\\<!here\\> \\<!subteam^S1\\|ops\\>",
            f"<{Z}!here> <{Z}!subteam^S1|ops>",
        ),
        (
            "@**alice** @*ops* @_**bob**",
            f"@{Z}\\*\\*alice\\*\\* @{Z}\\*ops\\* @{Z}\\_\\*\\*bob\\*\\*",
            f"@{Z}**alice** @{Z}*ops* @{Z}_**bob**",
        ),
        ("ann@example.com @115712", f"ann@{Z}example.com @{Z}115712", None),
        ("at 5 @ gate, a@?b", "at 5 @ gate, a@?b", None),  # no name after the @: as it is
        (
            "[click](http://evil.example) ![i](http://evil.example/p.png)",
            "\\[click\\](http://evil.example) !\\[i\\](http://evil.example/p.png)",
            f"[click]{Z}(http://evil.example) ![i]{Z}(http://evil.example/p.png)",
        ),
        (
            "*now* _or_ ~~x~~ `code` a_b \\ &amp; |t| <3",
            "\\*now\\* \\_or\\_ \\~\\~x\\~\\~ \\`code\\` a_b \\\\ \\&amp; \\|t\\| \\<3",
            f"*now* _or_ ~~x~~ `code` a_b \\ &amp; |t| <{Z}3",
        ),
    ],
)
def test_a_post_is_inert_in_markdown_and_in_plain_text(
    text: str, markdown: str, plain_text: str | None
) -> None:
    m = render(_with("text", text))
    assert f'1. @{Z}loud_traveller (1.2M followers): "{markdown}" [link](' in m.body
    shown = plain_text or markdown
    assert f'1. @{Z}loud_traveller (1.2M followers): "{shown}" https://' in m.as_text().body


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_no_value_can_mention_anyone(field: str) -> None:
    t = _with(field, MENTIONS)
    m = render(t)
    text = m.as_text()
    for shown in (m, text):
        assert _live_mentions(shown, t) == []
        assert "@alice" not in shown.title + shown.body
    outside_code = re.sub(r"(?<!\\)`[^`]*`", "", m.title + m.body)  # in code, < is no markup
    assert re.search(r"(?<!\\)<", outside_code) is None
    assert re.search(f"<(?!{Z})", text.title + text.body) is None  # no <!here>, <@U1>, <@&3>
    assert len(_live_mentions(Message(MENTIONS, "", ""), sample_transition(NOW))) == 7


def test_the_episode_id_stays_whole_to_copy() -> None:
    t = sample_transition(NOW)
    episode = t.episode_id
    assert f"· episode `{episode}` #2" in render(t).body
    assert f"· episode {episode} #2" in render(t).as_text().body
    body = render(replace(t, episode_id="@alice@1789997900")).body
    assert f"· episode `@{Z}alice@1789997900` #2" in body
    body = render(replace(t, episode_id="tw:1@alice")).body
    assert f"· episode `tw:1@{Z}alice` #2" in body  # no epoch at its end: a name, broken


# Plain text: for services that show no Markdown, the same message without its markup.


def test_text_variant_of_an_alert_reads_plainly() -> None:
    t = sample_transition(NOW)
    m = render(t)
    text = m.as_text()
    assert text.title == m.title  # nothing to unescape
    assert text.notify_type == m.notify_type
    assert text.body == "\n".join(
        [
            "Why: score 0.91 >= critical 0.85",
            "- expected size 240 vs big 96 -> P(big) 0.91",
            "- accelerating x2.4 (short vs long rate)",
            "",
            "Growth: ▁▁▂▃▅▇█ 4.2/min, acceleration x2.4, 57 mentions in 35 min",
            "Anger: 78% negative · Authors: 41 · Reach: max 1.2M followers",
            "",
            "Top posts:",
            f'1. @{Z}loud_traveller (1.2M followers): "Third cancelled flight this week and'
            ' nobody at the desk. Never again."'
            " https://x.com/loud_traveller/status/1790000000000000007",
            "",
            f"Thread: https://x.com/someone/status/1790000000000000001 · episode {t.episode_id} #2",
        ]
    )


def test_a_storm_title_says_how_many_complaints_against_how_many_expected() -> None:
    fired, resolved = run(bucketed([*steady(24), 120, 120, *[12] * 12]))
    m = render(fired)
    forecast = fired.explanation["forecast"]
    assert m.title == (
        f"[STORM] acme: complaint storm firing: 120 separate complaints in 15 min vs"
        f" {forecast:.1f} expected"
    )
    assert "- 120 complaints by P(negative) in 15 min vs" in m.body  # weighed, as the why says
    assert "- 120 separate complaining threads >= 8" in m.body  # counted, as the title says
    assert "still going: 120 separate" in render(replace(fired, repeat=True)).title
    assert render(resolved).title == "[RESOLVED] acme: complaint storm resolved after 90 min"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("brand", "acme\n[RESOLVED] all clear", "[CRITICAL] acme [RESOLVED] all clear: thread "),
        ("brand", "acme_telecom", "[CRITICAL] acme_telecom: thread "),
        ("brand", "_acme_ *co*", "[CRITICAL] _acme_ *co*: thread "),
        ("thread_id", "t1](http://evil.example)", f" thread t1]{Z}(http://evil.example) escal"),
        ("thread_id", "a\\b `c` <d>", f" thread a\\b `c` <{Z}d> escalating "),
        ("episode_id", "e`1`\n@here@1", f" · episode e`1` @{Z}here@1 #2"),
        ("episode_id", "<!here>](x)@5", f" · episode <{Z}!here>]{Z}(x)@5 #2"),
        ("handle", "a_b_", f'1. @{Z}a_b_ (1.2M followers): "Third'),
        ("text", "x\r\n\x1b[2J\u202e\x85y", '"x [2J y" https://'),
    ],
)
def test_text_variant_undoes_exactly_the_escaping(field: str, value: str, expected: str) -> None:
    m = render(_with(field, value)).as_text()
    assert expected in m.title + "\n" + m.body


@pytest.mark.parametrize("field", HOSTILE_FIELDS)
def test_text_variant_of_hostile_values_is_one_line_and_controls_free(field: str) -> None:
    plain_body = render(sample_transition(NOW)).as_text().body
    m = render(_with(field, NASTY)).as_text()
    assert m.title.splitlines() == [m.title]
    assert len(m.body.splitlines()) == len(plain_body.splitlines())
    assert [line[:40] for line in m.body.splitlines() if line.startswith("Thread:")] == [
        "Thread: https://x.com/someone/status/179"
    ]
    controls = [c for c in m.title + m.body if unicodedata.category(c) == "Cc" and c != "\n"]
    assert controls == []
    assert "\u202e" not in m.title + m.body
    assert "http://evil.example" not in m.body or f"]{Z}(http://evil.example)" in m.body


def test_text_variant_of_the_notify_test_note() -> None:
    m = Message(
        "[TEST] t", "_Test alert from `watchtower notify-test`: all fine._\n\n**Why:** x", ""
    )
    assert m.as_text().body == "Test alert from watchtower notify-test: all fine.\n\nWhy: x"


# Delivery: apprise picks the body format per URL; what a real HTTP receiver gets.

DELIVERED_TEXT = "cc @alice <@123> <!here> [x](http://evil.example) *now*"


def _delivered(request: Received) -> tuple[str, str]:
    """(title, body) of a request from apprise's json, form, ntfy, gotify or mattermost plugin."""
    data = request.data
    assert isinstance(data, dict)
    if "text" in data:  # mattermost: the title is the body's first line
        title, _, body = str(data["text"]).partition("\r\n")
        return title, body
    return str(data["title"]), str(data["message"])


@pytest.mark.parametrize(
    ("url", "markdown"),
    [
        ("json://{host}/md", True),
        ("json://{host}/text?format=text", False),
        ("form://{host}/form?format=text", False),
        ("ntfy://{host}/alerts", False),  # a push service apprise sends plain text
        ("gotify://{host}/token", False),
        ("gotify://{host}/token?format=markdown", True),  # Gotify can show Markdown if asked
        ("mmost://{host}/token", True),  # apprise calls it text; Mattermost renders Markdown
        ("mmost://{host}/token?format=text", False),
    ],
)
async def test_each_target_gets_its_format_and_no_live_mention(
    receiver: Receiver, url: str, markdown: bool
) -> None:
    t = _with("text", DELIVERED_TEXT)
    t = replace(t, brand="acme [ops]", top_mentions=[{**t.top_mentions[0], "handle": "alice"}])
    message = render(t)
    target = url.format(host=f"127.0.0.1:{receiver.port}")
    result = await send(RouteConfig("chat", (Secret(target),)), message)
    assert result.ok, result.describe()
    (request,) = receiver.requests
    title, body = _delivered(request)
    expected = message if markdown else message.as_text()
    assert (title, body) == (expected.title, expected.body)
    assert "@alice" not in title + body
    assert _live_mentions(Message(title, body, ""), t) == []
    if markdown:
        assert "acme \\[ops\\]" in title
        assert "\\[x\\](http://evil.example)" in body
    else:
        assert "\\" not in title + body
        assert title.startswith("[CRITICAL] acme [ops]: thread ")
        assert f'"cc @{Z}alice <{Z}@{Z}123> <{Z}!here> [x]{Z}(http://evil.example) *now*"' in body
        assert "Why: score" in body
        assert "**" not in body


async def test_notify_test_in_plain_text(receiver: Receiver, tmp_path: Path) -> None:
    args = _notify_test_args(tmp_path, receiver.url("/sms") + "?format=text", "chat")
    assert await asyncio.to_thread(args.func, args) == 0
    (request,) = receiver.requests
    title, body = _delivered(request)
    assert body.startswith("Test alert from watchtower notify-test: nothing is wrong, no action")
    assert "\\" not in title + body
    assert "**" not in body
    assert "`" not in body
