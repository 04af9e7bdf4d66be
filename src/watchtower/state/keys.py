"""Every Redis key name, prefix and TTL of watchtower, in one place.

Per-thread keys carry the thread id as their Redis Cluster hash tag (``wt:{<thread_id>}:state``),
so all of one thread's keys share a slot. Global keys (indexes, the outbox) get a tag of their
own. Ids are arbitrary strings: a ``}`` inside an id only shortens the tag, which changes the
slot, never the key, so keys stay unique. Nothing here imports redis: this module is the names.
"""

from __future__ import annotations

import math

PREFIX = "wt"

# --- thread state ----------------------------------------------------------------------------

# Threads with an open or pending alert episode (a set of thread ids).
ACTIVE_THREADS = f"{PREFIX}:{{active}}:threads"
# Every stored thread scored by its last_seen (event time, seconds): expiry and the size cap.
THREAD_INDEX = f"{PREFIX}:{{threads}}:last_seen"


# A thread's state key is THREAD_KEY_HEAD + thread_id + THREAD_KEY_TAIL (the save script cuts
# the thread id back out of the key, so it needs the two parts).
THREAD_KEY_HEAD = f"{PREFIX}:{{"
THREAD_KEY_TAIL = "}:state"


def thread_key(thread_id: str) -> str:
    """A thread's serialised state (a string value)."""
    return f"{THREAD_KEY_HEAD}{thread_id}{THREAD_KEY_TAIL}"


# --- thread roots (mention -> root) ----------------------------------------------------------


def root_key(mention_id: str) -> str:
    """The root of a mention's thread: "<event-time deadline>|<root id>" (a string value)."""
    return f"{PREFIX}:{{{mention_id}}}:root"


# --- blobs: model state and other opaque persistence ------------------------------------------


def blob_key(name: str) -> str:
    """An opaque value such as a pickled sentiment model; all blobs share one slot."""
    return f"{PREFIX}:{{blob}}:{name}"


# --- brand storms shared by workers (decide/shared_storms.py) --------------------------------

# One tag for all: a judgement watches and writes them together.
_STORMS = f"{PREFIX}:{{storms}}"
# The judging storm watch (a pickle): levels, bucket history and episodes of every brand.
STORM_STATE = f"{_STORMS}:state"
# Bucket indices with workers' shares waiting to be judged, scored by the index.
STORM_PENDING = f"{_STORMS}:pending"
# Workers collecting shares: a hash of publisher -> JSON [event-time watermark, wall time].
STORM_WORKERS = f"{_STORMS}:workers"
# The index of the last bucket judged (a string value): judges read it before the state.
STORM_JUDGED = f"{_STORMS}:judged"
STORM_SHARES_TTL = 2 * 86400.0  # seconds a share waits for a judge (none left: nobody judges)


def storm_shares_key(index: int) -> str:
    """The workers' shares of one bucket: a hash of publisher -> pickled share."""
    return f"{_STORMS}:shares:{index}"


# --- momentum notes shared by workers (scoring/shared_notes.py) -------------------------------

# A stream of entries {from: worker, notes: JSON}, the threads each worker scored, trimmed to
# about NOTES_KEPT entries (a worker further behind than that misses the oldest).
MOMENTUM_NOTES = f"{PREFIX}:{{momentum}}:notes"
NOTES_KEPT = 100_000


# --- TTLs ------------------------------------------------------------------------------------


def ttl_ms(seconds: float) -> int:
    """A Redis PX/PEXPIRE argument: whole milliseconds, at least 1 (0 would be an error)."""
    return max(1, math.ceil(seconds * 1000))


# --- outbox (alert delivery) -----------------------------------------------------------------
# OWNED BY THE ALERT DELIVERY / OUTBOX ENGINEER: add the outbox's keys and TTLs below this line.
# Give global outbox keys their own hash tag, e.g. f"{PREFIX}:{{outbox}}:pending".

# Every outbox key shares the {outbox} tag: the outbox scripts touch several of them at once.
# A random token each store sets if absent and checks later: gone (or another), Redis lost what
# it held (FLUSHALL, a restart without persistence) behind the workers' backs.
EPOCH = f"{PREFIX}:{{meta}}:epoch"

_OUTBOX = f"{PREFIX}:{{outbox}}"
# Entries not yet finished: a hash of entry id ("<episode>#<seq>|<route>") -> entry JSON.
OUTBOX_ENTRIES = f"{_OUTBOX}:entries"
# The same ids scored by when they are due (epoch ms); a claim moves one to its lease's end.
OUTBOX_DUE = f"{_OUTBOX}:due"
# The "sent" markers: finished ids (sent, dead-lettered or suppressed) scored by when (epoch ms).
# An id here is never recorded or sent again; markers older than OUTBOX_DONE_TTL are pruned.
OUTBOX_DONE = f"{_OUTBOX}:done"
# Unfinished entries per route (a hash route -> count) for the pending gauge.
OUTBOX_PENDING = f"{_OUTBOX}:pending"
# Maintenance silences: a hash brand (or "*") -> silenced until (epoch seconds).
OUTBOX_SILENCES = f"{_OUTBOX}:silences"
OUTBOX_DONE_TTL = 7 * 86400.0  # seconds: the dedup window for a (transition, route) pair
OUTBOX_EPISODE_TTL = 7 * 86400.0  # seconds an open episode (and its ack) is remembered


def outbox_episode_key(episode_id: str) -> str:
    """An open alert episode's current level (a string value, OUTBOX_EPISODE_TTL)."""
    return f"{_OUTBOX}:episode:{episode_id}"


def outbox_ack_key(episode_id: str) -> str:
    """An episode's acknowledgement: JSON {level, at} (a string value, OUTBOX_EPISODE_TTL)."""
    return f"{_OUTBOX}:ack:{episode_id}"
