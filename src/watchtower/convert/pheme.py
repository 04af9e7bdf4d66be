"""PHEME / RumourEval 2017 conversation threads to mentions.

Each split folder (traindev/, test/) holds structures.json, the nested reply tree of every
thread ({thread: {root: {reply: {...} | []}}}), and posts.json ({id: {"time", "text"}}).
A reply carries `reply_to` of its parent. Deleted posts (in the tree, not in posts.json) are
skipped; a reply whose parent is deleted, or that the tree hangs at the top level next to the
root, cannot be linked through parents, so it carries `thread_id` of the root instead.
The data has no authors.

For a backtest, `thread_ids` lists the threads and `convert(path, start_times=...,
horizon_minutes=..., only=...)` replays chosen threads, each moved so that its earliest post
(the root, in this data) is at its chosen time, cut at a horizon after that.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from watchtower.convert._records import Record, mention_record

SPLITS = ("traindev", "test")


@dataclass(frozen=True, slots=True)
class _Post:
    post_id: str
    epoch: float
    text: str
    parent_id: str | None  # None for the root, and for replies hung at the top level
    root_id: str


def convert(
    path: Path,
    start_times: Mapping[str, float] | None = None,
    horizon_minutes: float | None = None,
    only: Collection[str] | None = None,
) -> Iterator[Record]:
    """Mentions of one split folder, or of every split under the dataset folder, by time.

    start_times: epoch seconds each thread (by thread id) is moved to start at; missing ones
    keep their real time. horizon_minutes: leave out posts later than this after the start.
    only: these threads only.
    """
    posts: list[_Post] = []
    for split in split_folders(path):
        posts.extend(read_split(split))
    if only is not None:
        wanted = set(only)
        posts = [post for post in posts if post.root_id in wanted]
    if start_times is not None or horizon_minutes is not None:
        posts = _shifted(posts, start_times or {}, horizon_minutes)
    posts.sort(key=lambda post: post.epoch)  # stable: ties keep tree order
    known = {post.post_id for post in posts}
    return (_mention(post, known) for post in posts)


def thread_ids(path: Path) -> list[str]:
    """Every thread's id (its root's post id), sorted."""
    ids: set[str] = set()
    for split in split_folders(path):
        ids.update(orjson.loads((split / "structures.json").read_bytes()))
    return sorted(ids)


def _shifted(
    posts: list[_Post], start_times: Mapping[str, float], horizon_minutes: float | None
) -> list[_Post]:
    """Each thread moved to its start time and cut at the horizon after it."""
    origin: dict[str, float] = {}  # the thread's real start: its earliest post (the root's)
    for post in posts:
        origin[post.root_id] = min(post.epoch, origin.get(post.root_id, post.epoch))
    out = []
    for post in posts:
        age = post.epoch - origin[post.root_id]
        if horizon_minutes is not None and age > horizon_minutes * 60.0:
            continue
        start = start_times.get(post.root_id, origin[post.root_id])
        out.append(replace(post, epoch=start + age))
    return out


def split_folders(path: Path) -> list[Path]:
    """The folder itself when it holds posts.json, else its standard split sub-folders."""
    if (path / "posts.json").exists():
        return [path]
    return [path / split for split in SPLITS if (path / split / "posts.json").exists()]


def read_split(folder: Path) -> Iterator[_Post]:
    """Posts of one split in tree order (depth first), deleted posts left out."""
    texts = orjson.loads((folder / "posts.json").read_bytes())
    structures = orjson.loads((folder / "structures.json").read_bytes())
    for thread_id, tops in structures.items():
        for top_id, subtree in tops.items():  # the root, and replies whose parent is unknown
            yield from _walk(top_id, subtree, thread_id, texts)


def _walk(
    post_id: str,
    subtree: object,
    root_id: str,
    texts: Mapping[str, Mapping[str, Any]],
) -> Iterator[_Post]:
    # Iterative depth-first walk: threads are shallow, but data should not set our stack depth.
    stack: list[tuple[str, object, str | None]] = [(post_id, subtree, None)]
    while stack:
        current, children, parent = stack.pop()
        post = texts.get(current)
        if post is not None:
            yield _Post(current, float(post["time"]), str(post["text"]), parent, root_id)
        if isinstance(children, dict):
            stack.extend((child, grand, current) for child, grand in reversed(children.items()))


def _mention(post: _Post, known: set[str]) -> Record:
    is_root = post.post_id == post.root_id
    linked = post.parent_id is not None and post.parent_id in known
    return mention_record(
        mention_id=f"tw:{post.post_id}",
        platform="twitter",
        created_at=post.epoch,
        text=post.text,
        author=None,
        thread_id=None if is_root or linked else f"tw:{post.root_id}",
        reply_to=f"tw:{post.parent_id}" if post.parent_id is not None else None,
    )
