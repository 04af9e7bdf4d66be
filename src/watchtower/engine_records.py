"""What the engine reports to whoever drives it: its counts (EngineStats), and what it left out
of its batches for the caller to dead-letter (SetAside, taken with ``Engine.take_set_aside``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from watchtower.mention import Mention


@dataclass
class EngineStats:
    mentions: int = 0
    threads_created: int = 0
    redone: int = 0  # thread updates redone: another worker had changed the thread meanwhile
    repeats: int = 0  # mentions dropped as repeats of one already decided (their id)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (level, state)


@dataclass
class SetAside:
    """Threads left out because their stored state is unreadable, and their mentions; and
    mentions too late for the stream (``Engine.process``)."""

    unreadable: dict[str, str] = field(default_factory=dict)  # thread -> why
    mentions: list[tuple[Mention, str]] = field(default_factory=list)  # with why
    too_late: list[tuple[Mention, str]] = field(default_factory=list)  # with why

    def add(self, other: SetAside) -> None:
        self.unreadable.update(other.unreadable)
        self.mentions += other.mentions
        self.too_late += other.too_late
