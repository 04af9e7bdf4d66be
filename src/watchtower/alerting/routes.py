"""Which routes a transition goes to: filters by brand, platform and level (empty = any).

Brands and platforms come from producers and are typed by operators, so they match without
case ("United" routes as "united"); levels are the config's own names and match exactly.
"""

from __future__ import annotations

from watchtower.alerting.alert import AlertTransition
from watchtower.config import NotifyConfig, RouteConfig


def matches(route: RouteConfig, transition: AlertTransition) -> bool:
    """True when every non-empty filter of ``route`` admits the transition."""
    return (
        _admits_named(route.brands, transition.brand)
        and _admits_named(route.platforms, transition.platform)
        and _admits(route.levels, transition.level)
    )


def match_routes(notify: NotifyConfig, transition: AlertTransition) -> list[RouteConfig]:
    """Every route the transition is delivered to, once each, in config order.

    A resolve goes to the routes of the level the episode held when it ended (so the pager that
    was paged hears the all-clear), and nowhere when ``send_resolved`` is off.
    """
    if transition.state == "resolved" and not notify.send_resolved:
        return []
    return [route for route in notify.routes if matches(route, transition)]


def _admits(allowed: tuple[str, ...], value: str | None) -> bool:
    # An empty filter admits everything, including a transition without the field.
    return not allowed or (value is not None and value in allowed)


def _admits_named(allowed: tuple[str, ...], value: str | None) -> bool:
    if not allowed or value is None:
        return _admits(allowed, value)
    name = value.casefold()
    return any(name == a.casefold() for a in allowed)
