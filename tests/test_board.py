"""The board against the real daemon API: what its script reads exists in the answers it reads.

No browser here: the script's reads of a thread (``t.…``) and of an alert (``a.…``) are taken
from the page with a regex, checked against the lists in board.py, and those lists against real
/v1/threads and /v1/alerts answers of a daemon whose engine fired on mentions posted over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from watchtower.config import Config, HttpConfig, MomentumConfig, NotifyConfig, ScoringConfig
from watchtower.config_parse import Secret
from watchtower.daemon import Daemon
from watchtower.sources.board import ALERT_FIELDS, PAGE, THREAD_FIELDS

from servers import AUTH, NDJSON, TOKEN, daemon_api
from streams import burst, mention, stream

SCRIPT = PAGE.split("<script>", 1)[1].split("</script>", 1)[0]


@dataclass
class Api:
    daemon: Daemon
    base: str
    session: aiohttp.ClientSession

    async def get(self, path: str) -> Any:
        async with self.session.get(self.base + path, headers=AUTH) as r:
            assert r.status == 200, (path, r.status)
            return await r.json()

    async def threads(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.get("/v1/threads"))["threads"]
        return found

    async def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.get("/v1/alerts?limit=100"))["alerts"]
        return found

    async def feed(self, records: list[dict[str, Any]]) -> None:
        """Post ``records`` over HTTP, then run what was queued through the engine."""
        body = b"".join(orjson.dumps(r) + b"\n" for r in records)
        async with self.session.post(self.base + "/v1/mentions", data=body, headers=NDJSON) as r:
            assert r.status == 202
            assert (await r.json())["accepted"] == len(records)
        rt = self.daemon.runtime
        queued = list(rt.inbox.queue._queue)  # type: ignore[attr-defined]
        rt.inbox.queue._queue.clear()  # type: ignore[attr-defined]
        await rt.decide(queued)

    async def ack(self, episode_id: str) -> int:
        url = f"{self.base}/v1/alerts/{episode_id}/ack"
        async with self.session.post(url, headers=AUTH) as r:
            return r.status


@pytest.fixture(params=["off"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """The daemon's API, ``scoring.sentiment_gate`` from the param (indirect)."""
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN)),
        momentum=MomentumConfig(big_size=5, min_count=3),  # a burst of 30 fires
        scoring=ScoringConfig(sentiment_gate=request.param),
        notify=NotifyConfig(console=False),
    )
    daemon = Daemon(config)
    async with daemon_api(daemon) as (base, session):
        yield Api(daemon, base, session)


def reads(variable: str) -> set[str]:
    """The property paths the board's script reads of ``variable`` (``t.explanation.crossed``)."""
    return set(re.findall(rf"\b{variable}\.(\w+(?:\.\w+)*)", SCRIPT))


def has_path(entry: dict[str, Any], dotted: str) -> bool:
    value: Any = entry
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


def two_fires_and_a_quiet_one() -> list[dict[str, Any]]:
    """Two threads bursting (r1 the faster) and one lone mention that never alerts."""
    return stream(
        burst("r1", 0, 40, 2, "@acme you lost my bag"),
        burst("r2", 5, 30, 4, "@acme refund me now"),
        [mention("lone", 30, "@acme nice flight")],
    )


def thread_of(root: str, start: float, texts: list[str]) -> list[dict[str, Any]]:
    """A root and a repost of it every 2 s, one per text after the first."""
    out = [mention(root, start, texts[0])]
    out += [
        mention(f"{root}-{i}", start + 2 * i, text, parent=root)
        for i, text in enumerate(texts[1:], 1)
    ]
    return out


def test_the_script_reads_exactly_the_listed_fields() -> None:
    assert reads("t") == set(THREAD_FIELDS)
    assert reads("a") == set(ALERT_FIELDS)


def test_the_page_is_self_contained_and_inert() -> None:
    assert "innerHTML" not in PAGE
    assert "outerHTML" not in PAGE
    assert "insertAdjacentHTML" not in PAGE
    assert "document.write" not in PAGE
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", PAGE)
    assert r"/^https?:\/\//.test(url)" in SCRIPT  # links only for http(s) URLs
    for words in ("open now", "recent transitions", "no thread is alerting", "#token="):
        assert words in PAGE


async def test_threads_answer_one_entry_per_open_thread_with_what_the_board_reads(
    api: Api,
) -> None:
    async with api.session.get(api.base + "/") as r:
        assert r.status == 200
        page = await r.text()
    assert "v1/threads" in page
    assert "v1/alerts" in page
    await api.feed(two_fires_and_a_quiet_one())
    alerts = await api.alerts()
    threads = await api.threads()
    assert [t["thread_id"] for t in threads] == ["r1", "r2"]  # one each, the lone one not at all
    opened = {a["thread_id"]: a["episode_id"] for a in alerts if a["state"] != "resolved"}
    assert {t["thread_id"]: t["episode_id"] for t in threads} == opened
    for thread in threads:
        missing = [f for f in THREAD_FIELDS if not has_path(thread, f)]
        assert missing == [], thread["thread_id"]
        assert thread["level"] is not None
        assert thread["acked"] is False
    for alert in alerts:
        assert [f for f in ALERT_FIELDS if not has_path(alert, f)] == []


async def test_threads_say_acked_as_alerts_do(api: Api) -> None:
    await api.feed(two_fires_and_a_quiet_one())
    first, second = await api.threads()
    assert await api.ack(first["episode_id"]) == 200
    assert await api.ack("nope@1") == 404
    acked = {t["thread_id"]: t["acked"] for t in await api.threads()}
    assert acked == {first["thread_id"]: True, second["thread_id"]: False}
    for alert in await api.alerts():
        assert alert["acked"] is (alert["episode_id"] == first["episode_id"])


@pytest.mark.parametrize("api", ["boost"], indirect=True)
async def test_threads_come_highest_level_first_then_highest_score(api: Api) -> None:
    """A thread that went critical and calmed down (still critical: hysteresis) comes before a
    fresh watch one with a higher score now. "boost" lets anger move the score."""
    angry = "@acme you lost my bag, worst airline ever"
    thanks = "@acme thanks, all sorted now, great service"
    calming = thread_of("calming", 0, [angry] * 30 + [thanks] * 300)
    fresh = thread_of("fresh", 550, ["@acme what time does the lounge open"] * 40)
    await api.feed(stream(calming, fresh))
    threads = await api.threads()
    got = [(t["thread_id"], t["level"]) for t in threads]
    assert got == [("calming", "critical"), ("fresh", "watch")]
    assert threads[0]["score"] < threads[1]["score"]  # else this would not test the order


async def test_an_escalation_above_the_acked_level_is_not_acked() -> None:
    """An ack quiets its level: once the thread escalates past it, the board offers ack again."""
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN)),
        momentum=MomentumConfig(big_size=60, min_count=3),  # a slow thread: watch, then critical
        notify=NotifyConfig(console=False),
    )
    daemon = Daemon(config)
    async with daemon_api(daemon) as (base, session):
        api = Api(daemon, base, session)
        root = [mention("t", 0, "@acme you lost my bag", followers=50_000)]
        records = root + [
            mention(f"t-{i}", 20 * i, "RT: @acme you lost my bag", parent="t")
            for i in range(1, 300)
        ]
        seen: list[str | None] = []

        async def feed_until(level: str) -> None:
            while records and (not seen or seen[-1] != level):
                await api.feed([records.pop(0)])
                now = [t["level"] for t in await api.threads()]
                if now and (not seen or now[0] != seen[-1]):
                    seen.append(now[0])
            assert seen[-1] == level, seen

        await feed_until("watch")
        (thread,) = await api.threads()
        assert await api.ack(thread["episode_id"]) == 200
        assert (await api.threads())[0]["acked"] is True
        await feed_until("critical")
        assert (await api.threads())[0]["acked"] is False
        acked = {a["state"]: a["acked"] for a in await api.alerts()}
        assert acked == {"firing": True, "escalated": False}


async def test_an_ack_taken_by_another_worker_shows(api: Api) -> None:
    """Acks come from the outbox store, which workers on one Redis share, not from what this
    process acked: an ack written there by another worker shows on this one's board."""
    await api.feed(two_fires_and_a_quiet_one())
    first, second = await api.threads()
    store = api.daemon.runtime.delivery._store  # type: ignore[attr-defined]
    assert await store.ack(second["episode_id"], 0.0) is not None  # as another worker would
    acked = {t["thread_id"]: t["acked"] for t in await api.threads()}
    assert acked == {first["thread_id"]: False, second["thread_id"]: True}
