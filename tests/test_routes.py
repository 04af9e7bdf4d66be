"""Routes: which transitions go where, by brand, platform and level, checked end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.notify_test import sample_transition
from watchtower.alerting.outbox import Delivery
from watchtower.alerting.outbox_store import MemoryOutboxStore
from watchtower.alerting.routes import match_routes, matches
from watchtower.clock import ManualClock
from watchtower.config import Config, NotifyConfig, RouteConfig, load_config
from watchtower.config_parse import Secret
from watchtower.metrics import Metrics

from servers import Receiver

NOW = 1_790_000_000.0


def alert(
    brand: str | None, level: str, platform: str = "twitter", state: str = "escalated"
) -> AlertTransition:
    t = sample_transition(NOW, level)
    return replace(t, brand=brand, platform=platform, state=state, episode_id=f"{brand}@1")


def route(name: str, **filters: tuple[str, ...]) -> RouteConfig:
    return RouteConfig(name, (Secret(f"json://127.0.0.1:9/{name}"),), **filters)


def test_empty_filters_match_everything() -> None:
    anything = route("all")
    assert matches(anything, alert("united", "watch"))
    assert matches(anything, alert(None, "critical", platform="reddit"))


def test_each_filter_must_admit_the_transition() -> None:
    r = route("r", brands=("united",), platforms=("twitter",), levels=("critical",))
    assert matches(r, alert("united", "critical"))
    assert not matches(r, alert("delta", "critical"))
    assert not matches(r, alert("united", "watch"))
    assert not matches(r, alert("united", "critical", platform="reddit"))
    assert not matches(r, alert(None, "critical"))  # a brand filter needs a brand
    typed = route("typed", brands=("United",), platforms=("Twitter",), levels=("critical",))
    assert matches(typed, alert("united", "critical"))  # brands and platforms: without case
    assert matches(r, alert("UNITED", "critical", platform="TWITTER"))
    assert not matches(r, alert("united", "Critical"))  # levels are the config's own names


def test_a_transition_can_match_several_routes_in_config_order() -> None:
    notify = NotifyConfig(
        routes=(
            route("pager", levels=("critical",)),
            route("chat"),
            route("delta-chat", brands=("delta",)),
        )
    )
    names = [r.name for r in match_routes(notify, alert("united", "critical"))]
    assert names == ["pager", "chat"]
    assert [r.name for r in match_routes(notify, alert("delta", "watch"))] == ["chat", "delta-chat"]


def test_resolves_follow_send_resolved() -> None:
    routes = (route("pager", levels=("critical",)), route("chat", levels=("watch",)))
    resolved = alert("united", "critical", state="resolved")
    assert [r.name for r in match_routes(NotifyConfig(routes=routes), resolved)] == ["pager"]
    quiet = NotifyConfig(routes=routes, send_resolved=False)
    assert match_routes(quiet, resolved) == []
    assert [r.name for r in match_routes(quiet, alert("united", "critical"))] == ["pager"]


@pytest.mark.parametrize(
    ("brand", "level", "paths"),
    [
        ("united", "critical", ["/chat", "/united-pager"]),
        ("united", "watch", ["/chat"]),
        ("delta", "critical", ["/chat"]),
    ],
)
async def test_delivery_routes_by_brand_and_level(
    receiver: Receiver, brand: str, level: str, paths: list[str]
) -> None:
    pager = RouteConfig(
        "united-pager",
        (Secret(receiver.url("/united-pager")),),
        brands=("united",),
        levels=("critical",),
    )
    chat = RouteConfig("chat", (Secret(receiver.url("/chat")),))
    config = Config(notify=NotifyConfig(console=False, routes=(pager, chat)))
    delivery = Delivery(config, MemoryOutboxStore(), Metrics(), ManualClock(NOW))
    await delivery.submit([alert(brand, level)])
    assert await delivery.flush(10) == 0
    assert sorted(r.path for r in receiver.requests) == paths
    assert delivery.recent(1)[0]["routes"] == [p.strip("/") for p in reversed(paths)]


def test_the_example_routes_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["SLACK", "PAGERDUTY", "OPSGENIE", "COMMUNITY_TEAMS"]
    for name in names:
        monkeypatch.setenv(f"WATCHTOWER_{name}_URL", f"json://127.0.0.1:9/{name.lower()}")
    path = Path(__file__).parent.parent / "config" / "routes.example.yaml"
    routes = load_config(path).notify.routes
    assert [r.name for r in routes] == ["support-chat", "oncall-pager", "community", "local-json"]
    assert routes[1].urls == ("json://127.0.0.1:9/pagerduty", "json://127.0.0.1:9/opsgenie")
    assert "pagerduty" not in repr(routes[1])  # secrets stay masked in a repr
