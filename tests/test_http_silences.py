"""Silences over the HTTP API on a real socket: set, list, lift, validation, auth.

The daemon's object graph is real (memory store, outbox) with one route to the local receiver;
the ManualClock fixes "now", so the windows and their RFC 3339 ends are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import orjson
import pytest

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.notify_test import sample_transition
from watchtower.clock import ManualClock
from watchtower.config import Config, HttpConfig, NotifyConfig, RouteConfig
from watchtower.config_parse import Secret
from watchtower.daemon import Daemon
from watchtower.mention import format_time

from servers import AUTH, TOKEN, Receiver, daemon_api

NOW = 1_790_000_000.0
SUPPRESSED = "watchtower_notifications_suppressed_total"


@dataclass
class Api:
    daemon: Daemon
    base: str
    session: aiohttp.ClientSession
    receiver: Receiver

    async def call(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else orjson.dumps(body)
        headers = AUTH if headers is None else headers
        async with self.session.request(method, self.base + path, data=data, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def notify(self, *brands: str) -> None:
        """One firing per brand through the real outbox, flushed to the receiver."""
        delivery = self.daemon.runtime.delivery
        await delivery.submit([firing(brand) for brand in brands])
        await delivery.drain(10)

    def brands_heard(self) -> list[str]:
        found = []
        for request in self.receiver.requests:
            assert isinstance(request.data, dict)
            episode: str = request.data["message"].rsplit("episode ", 1)[1].replace("`", "")
            found.append(episode.split("@", maxsplit=1)[0])
        return found

    def suppressed(self) -> float:
        registry = self.daemon.runtime.metrics.registry
        value = registry.get_sample_value(SUPPRESSED, {"route": "chat", "reason": "silenced"})
        return value or 0.0


def firing(brand: str) -> AlertTransition:
    t = sample_transition(NOW, "watch")
    return replace(t, episode_id=f"{brand}@1", sequence=1, state="firing", brand=brand)


@pytest.fixture
async def api(receiver: Receiver) -> AsyncIterator[Api]:
    route = RouteConfig("chat", (Secret(receiver.url("/chat")),))
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN)),
        notify=NotifyConfig(console=False, routes=(route,)),
    )
    daemon = Daemon(config, clock=ManualClock(NOW))
    async with daemon_api(daemon) as (base, session):
        yield Api(daemon, base, session, receiver)


async def test_a_silence_set_over_http_holds_back_that_brand_only(api: Api) -> None:
    status, data = await api.call("POST", "/v1/silences", {"brand": "united", "for": "2h"})
    assert (status, data) == (201, {"brand": "united", "until": format_time(NOW + 7200)})
    listed = {"silences": [{"brand": "united", "until": format_time(NOW + 7200)}]}
    assert await api.call("GET", "/v1/silences") == (200, listed)
    await api.notify("united", "delta")
    assert api.brands_heard() == ["delta"]
    assert api.suppressed() == 1


async def test_brands_are_silenced_and_lifted_without_case(api: Api) -> None:
    """An operator types "United"; producers write "united" or "UNITED": one brand."""
    status, data = await api.call("POST", "/v1/silences", {"brand": "United", "for": "2h"})
    assert (status, data["brand"]) == (201, "united")
    await api.notify("united", "UNITED", "delta")
    assert api.brands_heard() == ["delta"]
    assert api.suppressed() == 2
    status, data = await api.call("DELETE", "/v1/silences/UNITED")
    assert (status, data) == (200, {"lifted": "united"})
    await api.notify("United")
    assert api.brands_heard() == ["delta", "United"]


async def test_a_silence_for_all_brands_until_a_time(api: Api) -> None:
    until = "2026-09-22T12:00:00+02:00"  # NOW is 2026-09-21T14:13:20Z
    status, data = await api.call("POST", "/v1/silences", {"brand": "*", "until": until})
    assert (status, data) == (201, {"brand": "*", "until": "2026-09-22T10:00:00.000Z"})
    await api.notify("united", "delta")
    assert api.brands_heard() == []
    assert api.suppressed() == 2


async def test_a_silence_can_be_lifted_early(api: Api) -> None:
    status, _ = await api.call("POST", "/v1/silences", {"brand": "united", "for": "30m"})
    assert status == 201
    status, data = await api.call("DELETE", "/v1/silences/united")
    assert (status, data) == (200, {"lifted": "united"})
    assert await api.call("GET", "/v1/silences") == (200, {"silences": []})
    status, data = await api.call("DELETE", "/v1/silences/united")
    assert status == 404
    assert "united" in data["error"]
    await api.notify("united")
    assert api.brands_heard() == ["united"]
    assert api.suppressed() == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"brand": "united", "for": "2 fortnights"}, "for", "duration like"),
        ({"brand": "united", "for": "0s"}, "for", "future"),
        ({"brand": "united", "for": "31d"}, "for", "at most 30d"),
        ({"brand": "united", "for": True}, "for", "boolean"),
        ({"brand": "united"}, "for", "exactly one"),
        ({"brand": "united", "for": "1h", "until": "2026-09-22T00:00:00Z"}, "for", "exactly one"),
        ({"brand": "united", "until": "2020-01-01T00:00:00Z"}, "until", "future"),
        ({"brand": "united", "until": "2026-12-31T00:00:00Z"}, "until", "at most 30d"),
        ({"brand": "united", "until": "tomorrow"}, "until", "RFC 3339"),
        ({"brand": "united", "until": "2026-09-22T00:00:00"}, "until", "no zone"),
        ({"brand": "", "for": "2h"}, "brand", "brand name"),
        ({"brand": 7, "for": "2h"}, "brand", "brand name"),
        ({"for": "2h"}, "brand", "brand name"),
        (["united", "2h"], "body", "JSON object"),
    ],
)
async def test_a_bad_silence_is_400_naming_the_field(
    api: Api, body: object, field: str, words: str
) -> None:
    status, data = await api.call("POST", "/v1/silences", body)
    assert status == 400, data
    assert data["field"] == field
    assert data["error"].startswith(f"{field}: ")
    assert words in data["error"]
    assert await api.daemon.runtime.delivery.silences() == {}


async def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    async with api.session.post(api.base + "/v1/silences", data=b"{nope", headers=AUTH) as r:
        assert r.status == 400
        assert "JSON object" in (await r.json())["error"]


async def test_silences_need_the_bearer_token(api: Api) -> None:
    body = {"brand": "united", "for": "2h"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for method, path in (
            ("POST", "/v1/silences"),
            ("GET", "/v1/silences"),
            ("DELETE", "/v1/silences/united"),
        ):
            status, data = await api.call(method, path, body, headers)
            assert status == 401, (method, headers)
            assert "token" in data["error"]
    assert await api.daemon.runtime.delivery.silences() == {}
    status, _ = await api.call("POST", "/v1/silences", body)  # the route is there: it was auth
    assert status == 201
