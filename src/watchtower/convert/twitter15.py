"""Twitter15 rumour propagation trees (Ma, Gao & Wong 2017) to mentions: one thread a cascade.

Layout: ``tree/<source_id>.txt`` (one edge a line,
``['parent_uid', 'parent_tweet_id', 'parent_delay_min']->['child_uid', 'child_tweet_id', ...]``,
with a ``ROOT`` edge to the thread root), ``source_tweets*.tsv`` (id, text) and ``label.txt``
(``veracity:id``). A cascade is keyed by its file name, the source id.

How the trees map to mentions:
- A child that carries a tweet id some earlier node already owns (usually the parent's) is a
  retweet: ``repost_of`` that tweet, text "RT @u<uid>: <its text>", id ``tw:<source>:rt:<n>``
  (retweets have no id of their own). Any other child is a reply: ``reply_to`` the tweet its
  parent shows, text "" (the data has no reply texts), id ``tw:<source>:<tweet_id>``. The source
  tweet is ``tw:<source>``. Ids are namespaced by cascade because ~600 tweets appear in several
  trees, and each cascade can be shifted in time on its own.
- Every child carries ``thread_id`` of the root. Authors are ``u<uid>``; followers unknown.
- Times: ``start`` + delay. Negative delays (noise) clamp to 0, and a child never precedes its
  parent (clamped to the parent's time), so every pointer refers to an earlier mention. In 8 trees
  the ROOT is an older tweet than the source (negative delay): there the root is at ``start`` and
  the other delays count from it.
- The veracity label is not a sentiment, so mentions carry ``label`` null; see `list_cascades`.

For a backtest: `list_cascades` gives each cascade's size, label and real start; then
`convert(path, start_times=..., horizon_minutes=..., only=...)` replays chosen cascades at
chosen times as one sorted stream (each opened only when the stream reaches it), or
`convert_cascade` gives one cascade as a list.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from watchtower.convert._records import (
    Record,
    author_record,
    mention_record,
    merge_by_start,
    snowflake_seconds,
)

_SOURCE_FILES = ("source_tweets.txt", "source_tweets_chunyuanY.tsv")
_Triple = tuple[str, str, str]  # (uid, tweet id, delay minutes as written)


@dataclass(frozen=True, slots=True)
class CascadeInfo:
    """One cascade as the backtest needs it; sizes count mentions within the horizon."""

    source_id: str  # tree file name; the key of `start_times` and of label.txt
    root_id: str  # mention id of the thread root: every other mention's thread_id
    label: str | None  # rumour veracity: non-rumor, false, true or unverified
    text: str  # source tweet text, "" when unknown
    start: float  # the root's real time (epoch seconds), the default start
    size: int  # mentions, root included
    retweets: int
    replies: int
    last_minute: float  # minutes from the root to the last mention kept


@dataclass(slots=True)
class _Node:
    uid: str
    tweet_id: str
    delay: float  # minutes after the source, as written (may be negative)
    order: int  # line in the file: the tie-break that keeps output deterministic
    parent: _Node | None = None
    minute: float | None = None  # settled minutes after the root
    mention_id: str = ""


@dataclass(slots=True)
class _Cascade:
    source_id: str
    root: _Node
    nodes: list[_Node]  # by (minute, order), root first, within the horizon
    owner: dict[str, _Node]  # tweet id -> the node that posted it

    def is_retweet(self, node: _Node) -> bool:
        return self.owner[node.tweet_id] is not node


def convert(
    path: Path,
    start_times: Mapping[str, float] | None = None,
    horizon_minutes: float | None = None,
    only: Collection[str] | None = None,
    brand: str | None = None,
) -> Iterator[Record]:
    """Mentions of every cascade (or those in `only`), merged and sorted by created_at.

    start_times: epoch seconds of each cascade's root, by source id; missing ones keep their
    real time. horizon_minutes: leave out mentions later than this after the root.
    """
    texts = read_source_texts(path)
    starts = start_times or {}
    streams = []
    for source_id in _selected(path, only):
        start = starts.get(source_id)
        if start is None:
            start = _real_start(path, source_id)

        def opener(
            source_id: str = source_id, start: float = start
        ) -> Iterator[tuple[float, Record]]:
            cascade = _load_cascade(path, source_id, horizon_minutes)
            return _records(cascade, start, texts.get(source_id, ""), brand)

        streams.append((start, opener))
    return merge_by_start(streams)


def convert_cascade(
    path: Path,
    source_id: str,
    start: float | None = None,
    horizon_minutes: float | None = None,
    brand: str | None = None,
) -> list[Record]:
    """Mentions of one cascade, sorted by created_at (the root first)."""
    cascade = _load_cascade(path, source_id, horizon_minutes)
    text = read_source_texts(path).get(source_id, "")
    if start is None:
        start = _real_start(path, source_id)
    return [record for _, record in _records(cascade, start, text, brand)]


def list_cascades(path: Path, horizon_minutes: float | None = None) -> list[CascadeInfo]:
    """Every cascade with its size, label and real start, by source id (~2 s for all 1,490)."""
    texts = read_source_texts(path)
    labels = read_labels(path)
    infos = []
    for source_id in _selected(path, None):
        cascade = _load_cascade(path, source_id, horizon_minutes)
        retweets = sum(1 for node in cascade.nodes[1:] if cascade.is_retweet(node))
        infos.append(
            CascadeInfo(
                source_id=source_id,
                root_id=cascade.root.mention_id,
                label=labels.get(source_id),
                text=texts.get(source_id, ""),
                start=_real_start(path, source_id),
                size=len(cascade.nodes),
                retweets=retweets,
                replies=len(cascade.nodes) - 1 - retweets,
                last_minute=cascade.nodes[-1].minute or 0.0,
            )
        )
    return infos


def read_source_texts(path: Path) -> dict[str, str]:
    """Source tweet text by source id ("id<TAB>text[<TAB>label]" lines)."""
    for name in _SOURCE_FILES:
        file = path / name
        if file.exists():
            rows = (line.split("\t") for line in file.read_text(encoding="utf-8").splitlines())
            return {row[0]: row[1] for row in rows if len(row) > 1}
    return {}


def read_labels(path: Path) -> dict[str, str]:
    """Veracity label by source id ("label:id" lines of label.txt)."""
    file = path / "label.txt"
    if not file.exists():
        return {}
    pairs = (line.strip().split(":") for line in file.read_text(encoding="utf-8").splitlines())
    return {pair[1]: pair[0] for pair in pairs if len(pair) == 2}


def _load_cascade(path: Path, source_id: str, horizon_minutes: float | None = None) -> _Cascade:
    """Parse and settle one tree: parents, times, who posted which tweet, mention ids."""
    root_triple, edges = _read_edges(_tree_file(path, source_id))
    root = _Node(root_triple[0], root_triple[1], float(root_triple[2]), order=0, minute=0.0)
    nodes = _link(root, root_triple, edges)
    _settle_minutes(root, nodes)
    nodes.sort(key=lambda node: (node.minute, node.order))
    if horizon_minutes is not None:
        nodes = [node for node in nodes if (node.minute or 0.0) <= horizon_minutes]
    cascade = _Cascade(source_id, root, nodes, _owners(root, nodes))
    _name(cascade)
    return cascade


def _selected(path: Path, only: Collection[str] | None) -> list[str]:
    available = sorted(file.stem for file in (path / "tree").glob("*.txt"))
    if only is None:
        return available
    missing = sorted(set(only) - set(available))
    if missing:
        raise ValueError(f"no tree file for cascade(s) {', '.join(missing[:5])}")
    return sorted(set(only))


def _tree_file(path: Path, source_id: str) -> Path:
    return path / "tree" / f"{source_id}.txt"


def _real_start(path: Path, source_id: str) -> float:
    """The root's real time: the source's, moved back when the ROOT is an older tweet."""
    with _tree_file(path, source_id).open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("['ROOT'"):
                root_delay = float(_triple(line.split("->")[1])[2])
                return snowflake_seconds(source_id) + min(root_delay, 0.0) * 60.0
    raise ValueError(f"{_tree_file(path, source_id)}: no ROOT edge")


def _read_edges(file: Path) -> tuple[_Triple, list[tuple[_Triple, _Triple]]]:
    root: _Triple | None = None
    edges: list[tuple[_Triple, _Triple]] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if "->" not in line:
            continue
        left, right = line.split("->")
        parent, child = _triple(left), _triple(right)
        if parent[0] != "ROOT":
            edges.append((parent, child))
        elif root is None:
            root = child
    if root is None:
        raise ValueError(f"{file}: no ROOT edge")
    return root, edges


def _triple(text: str) -> _Triple:
    """ "['39364684', '265953285247209472', '0.45']" -> ('39364684', '265953...', '0.45')."""
    uid, tweet_id, delay = text.strip().strip("[]").replace("'", "").split(", ")
    return uid, tweet_id, delay


def _link(root: _Node, root_triple: _Triple, edges: list[tuple[_Triple, _Triple]]) -> list[_Node]:
    """One node per distinct child; its first parent wins (the trees repeat some edges)."""
    by_triple: dict[_Triple, _Node] = {}
    parent_of: dict[_Triple, _Triple] = {}
    for order, (parent, child) in enumerate(edges, start=1):
        if child in by_triple or child in (parent, root_triple):
            continue
        by_triple[child] = _Node(child[0], child[1], float(child[2]), order)
        parent_of[child] = parent
    for triple, node in by_triple.items():
        # A parent that never appears as a child (a few edges) hangs from the root.
        node.parent = by_triple.get(parent_of[triple], root)
    return [root, *by_triple.values()]


def _settle_minutes(root: _Node, nodes: list[_Node]) -> None:
    """Minutes after the root: negative clamps to 0, and never before the parent."""
    offset = min(root.delay, 0.0)  # the 8 trees whose ROOT predates the source
    for node in nodes:
        chain: list[_Node] = []
        current = node
        while current.minute is None:
            chain.append(current)
            parent = current.parent or root
            if any(parent is seen for seen in chain):  # a cycle in the data: cut it at the root
                current.parent = parent = root
            current = parent
        minute = current.minute
        for pending in reversed(chain):
            minute = max(minute, pending.delay - offset)
            pending.minute = minute


def _owners(root: _Node, nodes: list[_Node]) -> dict[str, _Node]:
    """Who posted each tweet: the root its own, else the earliest node not sharing its parent's."""
    owner = {root.tweet_id: root}
    for node in nodes:
        if node.parent is not None and node.tweet_id != node.parent.tweet_id:
            owner.setdefault(node.tweet_id, node)
    for node in nodes:  # only reachable through a broken chain; keep every node owned
        owner.setdefault(node.tweet_id, node)
    return owner


def _name(cascade: _Cascade) -> None:
    """Mention ids, in time order so that the n of retweet ids follows the cascade."""
    source_id = cascade.source_id
    retweets = 0
    for node in cascade.nodes:
        if cascade.is_retweet(node):
            retweets += 1
            node.mention_id = f"tw:{source_id}:rt:{retweets}"
        elif node.tweet_id == source_id:
            node.mention_id = f"tw:{source_id}"
        else:
            node.mention_id = f"tw:{source_id}:{node.tweet_id}"


def _records(
    cascade: _Cascade, start: float, source_text: str, brand: str | None
) -> Iterator[tuple[float, Record]]:
    """(epoch, mention) of every node, in time order."""
    thread_id = cascade.root.mention_id
    for node in cascade.nodes:
        epoch = start + (node.minute or 0.0) * 60.0
        posted = cascade.owner[node.tweet_id]
        text = source_text if posted.tweet_id == cascade.source_id else ""
        is_root = node is cascade.root
        is_retweet = cascade.is_retweet(node)
        shown = cascade.owner[(node.parent or node).tweet_id]  # a reply answers what it saw
        record = mention_record(
            mention_id=node.mention_id,
            platform="twitter",
            created_at=epoch,
            text=f"RT @u{posted.uid}: {text}" if is_retweet else text,
            author=author_record(node.uid, f"u{node.uid}"),
            thread_id=None if is_root else thread_id,
            reply_to=None if is_root or is_retweet else shown.mention_id,
            repost_of=posted.mention_id if is_retweet else None,
            brand=brand,
            url=None if is_retweet else f"https://twitter.com/i/web/status/{node.tweet_id}",
        )
        yield epoch, record
