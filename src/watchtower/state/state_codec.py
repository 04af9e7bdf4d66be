"""A thread state as the bytes Redis stores: an orjson list led by what the save script reads.

``[version, layout, active 1/0, last_seen, field, ...]``: the save script (redis_scripts.SAVE)
reads the header to compare-and-set the version and keep the indexes in step without decoding
the rest. The layout is a fingerprint of ThreadState's fields, so a state written by a build
with other fields is refused (StateFormatError) rather than read into the wrong ones; the
layouts of earlier builds listed here are read by name, their missing fields taking defaults.
Pure: nothing here imports redis.
"""

from __future__ import annotations

import dataclasses
import operator
import zlib
from typing import Any

import orjson

from watchtower.errors import WatchtowerError
from watchtower.state.thread_state import Episode, ThreadState, TopMention

_EPISODE_FIELDS = tuple(f.name for f in dataclasses.fields(Episode))
_TOP_FIELDS = tuple(f.name for f in dataclasses.fields(TopMention))
# The header carries thread_id (in the key), version and last_seen: the rest follow in order.
_STATE_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(ThreadState)
    if f.name not in ("thread_id", "version", "last_seen")
)
_state_values = operator.attrgetter(*_STATE_FIELDS)
_episode_values = operator.attrgetter(*_EPISODE_FIELDS)
_top_values = operator.attrgetter(*_TOP_FIELDS)
_HEADER = 4  # version, layout, active, last_seen
_EPISODE_AT = _HEADER + _STATE_FIELDS.index("episode")
_TOP_AT = _HEADER + _STATE_FIELDS.index("top")


def _layout(state: tuple[str, ...], episode: tuple[str, ...], top: tuple[str, ...]) -> str:
    """A fingerprint of a layout: a state written with other fields is never read into the
    wrong ones."""
    return format(zlib.crc32("|".join((*state, *episode, *top)).encode()), "08x")


LAYOUT = _layout(_STATE_FIELDS, _EPISODE_FIELDS, _TOP_FIELDS)
_WITHOUT_HEADLINE = tuple(f for f in _STATE_FIELDS if f != "headline")
_WITHOUT_RESOLVED_FORECAST = tuple(f for f in _EPISODE_FIELDS if f != "resolved_forecast")
# Earlier builds' layouts this one reads, by name, the fields added since taking their
# defaults: an upgrade keeps the threads (and their open episodes) a rolling restart left in
# Redis. When a field with a default is added, list the layout before it here.
_OLDER_LAYOUTS = {
    _layout(state, episode, top): (state, episode, top)
    for state, episode, top in [
        # before ThreadState.headline (the alert's title says what the thread is about)
        (_WITHOUT_HEADLINE, _EPISODE_FIELDS, _TOP_FIELDS),
        # and before Episode.resolved_forecast (quiet after a resolve)
        (_WITHOUT_HEADLINE, _WITHOUT_RESOLVED_FORECAST, _TOP_FIELDS),
    ]
}


class StateFormatError(WatchtowerError):
    """A stored thread state written with another layout of ThreadState."""


def encode_state(state: ThreadState, version: int) -> bytes:
    """``[version, layout, active 1/0, last_seen, field, ...]``; nested values as lists."""
    episode = state.episode
    active = 1 if episode.id is not None or episode.pending_level is not None else 0
    values: list[Any] = [version, LAYOUT, active, state.last_seen, *_state_values(state)]
    # one C call per object instead of a getattr per field: this runs for every saved thread
    values[_EPISODE_AT] = _episode_values(episode)
    values[_TOP_AT] = [_top_values(m) for m in state.top]
    return orjson.dumps(values)


def decode_state(thread_id: str, raw: bytes | str) -> ThreadState:
    version, layout, _, last_seen, *values = orjson.loads(raw)
    if layout == LAYOUT and len(values) == len(_STATE_FIELDS):
        fields = dict(zip(_STATE_FIELDS, values, strict=True))
        fields["episode"] = Episode(*fields["episode"])
        fields["top"] = [TopMention(*m) for m in fields["top"]]
    elif layout in _OLDER_LAYOUTS:
        fields = _older(thread_id, layout, values)
    else:
        raise StateFormatError(
            f"thread {thread_id!r} was stored with layout {layout}, which this build does not"
            f" read (it writes {LAYOUT}): drain the workers of the other version, or flush the"
            " wt:* keys"
        )
    return ThreadState(thread_id=thread_id, version=version, last_seen=last_seen, **fields)


def _older(thread_id: str, layout: str, values: list[Any]) -> dict[str, Any]:
    """The fields of a state an earlier build wrote, by name; what it lacks takes its default
    (a field it had that this build dropped would be refused: none yet)."""
    state, episode, top = _OLDER_LAYOUTS[layout]
    if len(values) != len(state):
        raise StateFormatError(f"thread {thread_id!r}: {len(values)} fields for layout {layout}")
    fields = dict(zip(state, values, strict=True))
    fields["episode"] = Episode(**dict(zip(episode, fields["episode"], strict=True)))
    fields["top"] = [TopMention(**dict(zip(top, m, strict=True))) for m in fields["top"]]
    return fields
