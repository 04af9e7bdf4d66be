"""What an acknowledgement or a silence holds back, decided when an entry is about to be sent.

Deciding at send time (not when recording) means an ack also stops the repeats already queued
or waiting for a retry.

- A silence (maintenance window) for a brand, or ``*`` for all, suppresses everything for that
  brand until it ends, resolves included: during maintenance nobody wants to hear about it.
  Brands compare without case (``brand_key``): an operator typing "United" at 3 a.m. means the
  producers' "united".
- An ack quiets an episode at the level it had when acknowledged: its repeats, and any re-fire
  at that level or below, are suppressed. An escalation above the acked level still goes out
  (it is new information; its repeats too, until someone acks again), and so does the resolve
  (whoever acked learns it is over). A firing or escalation recorded before the ack still goes
  out: the person acking may not have seen it yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from watchtower.alerting.outbox_store import Ack, Entry
from watchtower.mention import format_time

ALL_BRANDS = "*"


def brand_key(brand: str) -> str:
    """How silences are keyed and matched: without case."""
    return brand.casefold()


class Suppression(NamedTuple):
    reason: Literal["silenced", "acked"]  # a metric label: a fixed set, never free text
    detail: str  # for the log line

    def __str__(self) -> str:
        return self.detail


def suppressed(
    entry: Entry, ack: Ack | None, silences: Mapping[str, float], rank: Mapping[str, int]
) -> Suppression | None:
    """Why ``entry`` must not be sent, or None; ``rank`` orders the configured levels."""
    for brand in (entry.brand, ALL_BRANDS):
        key = None if brand is None else brand_key(brand)
        if key is not None and key in silences:
            until = format_time(silences[key])
            return Suppression("silenced", f"silenced ({key}) until {until}")
    if ack is None or entry.state == "resolved":
        return None
    if not entry.repeat and entry.created < ack.at:
        return None
    if not covers(ack.level, entry.level, rank):
        return None
    return Suppression("acked", f"acknowledged at {ack.level}")


def covers(acked_level: str, level: str | None, rank: Mapping[str, int]) -> bool:
    """Whether an ack at ``acked_level`` quiets ``level``: that level or a lower one."""
    return rank.get(level or "", -1) <= rank.get(acked_level, -1)
