"""The engine: mentions in, alert transitions out, in event time, with no I/O of its own.

A batch is worked per thread (states loaded once, saved once with compare-and-set), yet the
result does not depend on where batches are cut: each mention is scored right after its own
observation, quiet checks ("ticks") fall at fixed multiples of ``alerts.tick`` of event time,
and the batch's transitions are ordered by the input position that caused them. So a replay of
a file and the live daemon give the same alerts for the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from watchtower.alerting.alert import AlertTransition, build_transition
from watchtower.config import Config
from watchtower.decide.levels import Levels
from watchtower.decide.shared_storms import SharedStorms
from watchtower.decide.storms import StormWatch
from watchtower.engine_records import EngineStats, SetAside
from watchtower.errors import StoreError
from watchtower.mention import Mention
from watchtower.repeats import Repeats, keeping
from watchtower.scoring.features import features, forecast_of, memory
from watchtower.scoring.momentum import MomentumModel
from watchtower.scoring.score import gated, score
from watchtower.scoring.sentiment import SentimentModel
from watchtower.scoring.shared_notes import SharedNotes
from watchtower.state.store import NoteBoard, Store, StormBoard, load_readable
from watchtower.state.thread_state import (
    HEADLINE_CHARS,
    DecaySpec,
    Observation,
    ThreadState,
    growth_curve,
    mean_negativity,
    new_state,
    observe,
    shortened,
    unique_authors,
)
from watchtower.threads import resolve_roots

_MAX_CAS_RETRIES = 5

# One mention of a batch: (global input position, which orders the batch's transitions;
# the mention; its negativity). A plain tuple: one is built per mention.
_Item = tuple[int, Mention, float]


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        sentiment: SentimentModel,
        momentum: MomentumModel | None = None,
        storm_board: StormBoard | None = None,
        note_board: NoteBoard | None = None,
    ) -> None:
        """The boards: this engine is one of several workers on a shared store, which judge
        brand storms together (decide/shared_storms.py; ``storms`` only collects) and hand
        each other the threads they scored (scoring/shared_notes.py)."""
        self.config = config
        self.store = store
        self.sentiment = sentiment
        self.spec = _decay_spec(config)
        self.notes = None if note_board is None else SharedNotes(note_board)
        self.momentum = momentum or self._momentum(config)
        self.levels = Levels(config.levels, config.alerts)
        self.shared = None if storm_board is None else SharedStorms(config.storms, storm_board)
        self.storms = StormWatch(config.storms, collect=self.shared is not None)
        self.stats = EngineStats()
        self.set_aside = SetAside()
        self.watermark: float | None = None  # the latest event time seen
        self.repeats = Repeats(config.input.remembered_ids)
        self._next_tick: float | None = None
        self._position = 0

    def reconfigure(self, config: Config) -> None:
        """Take a reloaded (already validated) config and keep everything learned and held:
        thread state, event time, positions, the sentiment model, the momentum model (unless
        its own settings changed) and the brand baselines (unless their bucket changed)."""
        if config.momentum != self.config.momentum:  # features (the taus) need a restart
            self.momentum = self._momentum(config)
        storms = StormWatch(config.storms, collect=self.shared is not None)
        if config.storms.bucket == self.config.storms.bucket:
            storms.load_state(self.storms.state_dict())
        self.storms = storms
        if self.shared is not None:
            self.shared.reconfigure(config.storms)
        self.levels = Levels(config.levels, config.alerts)
        self.repeats.remembered = config.input.remembered_ids
        self.config = config

    def _momentum(self, config: Config) -> MomentumModel:
        sharing = self.notes is not None
        return MomentumModel(config.momentum, self.spec.taus, sharing=sharing)

    async def process(self, mentions: Sequence[Mention]) -> list[AlertTransition]:
        """Fold a batch into the state; return its transitions in causal order. Repeats are
        dropped first, before they are resolved, scored or counted anywhere. A batch that
        fails is retried whole: what its attempt set aside is forgotten, to be set aside
        once, by the attempt that succeeds."""
        earlier, self.set_aside = self.set_aside, SetAside()
        try:
            transitions = await self._process(mentions)
        except BaseException:
            self.set_aside = earlier
            raise
        earlier.add(self.set_aside)
        self.set_aside = earlier
        return transitions

    async def _process(self, mentions: Sequence[Mention]) -> list[AlertTransition]:
        arrived = self._in_time(mentions)
        known, mentions = await self.repeats.dropped(arrived, self.store)
        if not mentions:
            self.stats.repeats += len(arrived)
            return []
        try:
            transitions = await self._fold(mentions, known)
        except BaseException:  # cancelled too: the roots remembered may reach the store
            self.repeats.failed(mentions)
            raise
        self.repeats.decided(mentions)
        self.stats.repeats += len(arrived) - len(mentions)
        self.stats.mentions += len(mentions)
        return transitions + await self._share_with_workers()

    async def _fold(
        self, mentions: Sequence[Mention], known: dict[str, str]
    ) -> list[AlertTransition]:
        roots = await resolve_roots(mentions, self.store, known)
        by_thread: dict[str, list[_Item]] = {}
        born: set[str] = set()  # threads whose root post is in this batch
        storms: list[tuple[int, AlertTransition]] = []
        position = self._position
        sentiment, learn = self.sentiment, self.config.sentiment.learn
        for mention, root in zip(mentions, roots, strict=True):
            # Score, then (replays with labels) learn: never the other way round.
            negativity = sentiment.negativity(mention.text)
            if learn and mention.label is not None:
                sentiment.learn(mention.text, mention.label)
            items = by_thread.get(root)
            if items is None:
                items = by_thread[root] = []
            if mention.id == root:
                born.add(root)
            items.append((position, mention, negativity))
            # Brand storms close their buckets in event time, before this mention counts.
            closed = self.storms.observe(mention, root, negativity)
            if closed:
                storms += [(2 * position, t) for t in closed]
            position += 1
        self._position = position
        ticks = self._ticks_for(mentions)
        return await self._run(by_thread, ticks, storms, born)

    def _in_time(self, mentions: Sequence[Mention]) -> Sequence[Mention]:
        """``mentions`` but those older by more than ``state.thread_ttl`` than the latest
        event time before them (in input order, so batch boundaries change nothing): their
        thread would already be forgotten, so they could only open alerts about the past (a
        producer's wrong clock, last month's export posted to a live daemon). They are set
        aside (``take_set_aside``), to be dead-lettered."""
        ttl = self.config.state.thread_ttl
        latest = -math.inf if self.watermark is None else self.watermark

        def in_time(m: Mention) -> bool:
            nonlocal latest
            at = m.created_at
            if at >= latest - ttl:
                latest = max(latest, at)
                return True
            behind = (latest - at) / 3600
            self.set_aside.too_late.append((m, (
                f"{behind:.1f} h older than the stream's latest mention, beyond state.thread_ttl"
                f" ({ttl / 3600:g} h): replay it on its own to see what it would have raised"
            )))  # fmt: skip
            return False

        return keeping(mentions, in_time)

    async def advance(self, now: float) -> list[AlertTransition]:
        """Let event time pass with no mention (live: driven by the clock when idle)."""
        if self.watermark is not None and now <= self.watermark:
            return []
        self.watermark = now
        ticks = self._due_ticks(now, self._position)
        storms = [(2 * self._position, t) for t in self.storms.advance(now)]
        transitions = await self._run({}, ticks, storms) if ticks or storms else []
        return transitions + await self._share_with_workers()

    async def _share_with_workers(self) -> list[AlertTransition]:
        """With other workers: hand them this batch's notes and take theirs; publish this
        worker's closed storm buckets and judge those that are due. Last, once the batch's
        threads are saved: a judgement is kept in the store as soon as it is made, so nothing
        after it may fail the batch and lose its transitions (neither of these raises)."""
        if self.notes is not None:
            await self.notes.sync(self.momentum)
        if self.shared is None:
            return []
        return self._counted(await self.shared.sync(self.storms, self.watermark))

    @property
    def storms_firing(self) -> int:
        """Brands with a storm episode open (shared: as of the last judgement seen here)."""
        return len(self.storms.firing if self.shared is None else self.shared.firing)

    async def _run(
        self,
        by_thread: dict[str, list[_Item]],
        ticks: list[tuple[float, int]],
        storms: list[tuple[int, AlertTransition]],
        born: set[str] | frozenset[str] = frozenset(),
    ) -> list[AlertTransition]:
        pending = set(by_thread)
        if ticks:
            await self.store.expire(ticks[-1][0])
            pending.update(await self.store.active_threads())
        results: dict[str, list[tuple[int, AlertTransition]]] = {}
        for _ in range(_MAX_CAS_RETRIES):
            states, unreadable = await load_readable(self.store, sorted(pending), new=born)
            born = frozenset()  # a conflict is redone from what the store really holds
            if unreadable:
                self._set_aside(unreadable, by_thread)
                pending.difference_update(unreadable)
            worked = {
                tid: self._run_thread(tid, states.get(tid), by_thread.get(tid, []), ticks)
                for tid in sorted(pending)
            }
            conflicts = await self.store.save(s for s, _ in worked.values() if s is not None)
            for tid, (_, done) in worked.items():
                if tid not in conflicts:
                    results[tid] = done
            pending = set(conflicts)
            self.stats.redone += len(pending)
            if not pending:
                break
        else:
            raise StoreError(f"threads kept changing under us: {sorted(pending)[:5]}")
        ordered = sorted(
            (pair for pairs in [*results.values(), storms] for pair in pairs),
            key=lambda pair: (pair[0], pair[1].thread_id),
        )
        return self._counted([transition for _, transition in ordered])

    def _counted(self, transitions: list[AlertTransition]) -> list[AlertTransition]:
        for t in transitions:
            self.stats.transitions[(t.level, t.state)] += 1
        return transitions

    def _set_aside(self, unreadable: dict[str, str], by_thread: dict[str, list[_Item]]) -> None:
        """Leave out threads whose stored state this build cannot read (the store keeps them
        untouched), with their mentions, for the caller to dead-letter (``take_set_aside``)."""
        aside = self.set_aside
        aside.unreadable.update(unreadable)
        for tid, reason in unreadable.items():
            aside.mentions += [(mention, reason) for _, mention, _ in by_thread.pop(tid, [])]

    def take_set_aside(self) -> SetAside:
        """What was left out since the last call; the engine starts a new record."""
        taken, self.set_aside = self.set_aside, SetAside()
        return taken

    def _run_thread(
        self,
        tid: str,
        state: ThreadState | None,
        items: list[_Item],
        ticks: list[tuple[float, int]],
    ) -> tuple[ThreadState | None, list[tuple[int, AlertTransition]]]:
        out: list[tuple[int, AlertTransition]] = []
        tick_index = 0
        for position, mention, negativity in items:
            while tick_index < len(ticks) and ticks[tick_index][1] <= position:
                at, tick_position = ticks[tick_index]
                self._check(state, at, 2 * tick_position, out, tick=True)
                tick_index += 1
            state = self._observe(tid, state, mention, negativity)
            self._check(state, state.last_seen, 2 * position + 1, out)
        for at, position in ticks[tick_index:]:
            self._check(state, at, 2 * position, out, tick=True)
        return state, out

    def _observe(
        self, tid: str, state: ThreadState | None, m: Mention, negativity: float
    ) -> ThreadState:
        if state is None:
            state = new_state(tid, m.created_at, self.spec)
            state.brand, state.platform = m.brand, m.platform
            self.stats.threads_created += 1
        if m.id == tid:  # the root
            state.url = state.url or m.url
            state.headline = shortened(m.text, HEADLINE_CHARS) or state.headline
        elif not state.headline:
            state.headline = shortened(m.text, HEADLINE_CHARS)
        author = m.author
        if author is None:
            obs = Observation(m.created_at, m.id, None, 0, negativity, None, m.url, m.text)
        else:
            followers = author.followers or 0
            obs = Observation(
                m.created_at, m.id, author.id, followers, negativity, author.handle, m.url, m.text
            )
        observe(state, obs, self.spec)
        return state

    def _check(
        self,
        state: ThreadState | None,
        now: float,
        order: int,
        out: list[tuple[int, AlertTransition]],
        tick: bool = False,
    ) -> None:
        """Score the thread at ``now`` and let the levels decide; ``order`` sorts the output.

        A tick looks only at open episodes: a thread resolved earlier in this batch is skipped
        just as it would be had the batch been cut there.
        """
        if state is None:
            return
        episode = state.episode
        if episode.id is None and (tick or state.count < self.config.momentum.min_count):
            return  # ticks look only at open episodes; cold threads cannot reach a level
        # The hot path: every mention of a warm thread is scored, so nothing is built here
        # that only a transition needs (the features, the score's parts).
        kept = memory(state, now, self.spec)
        forecast = forecast_of(state.count, kept)
        authors = unique_authors(state)
        version = self.momentum.note(
            state.thread_id, now, state.first_seen, state.count, authors, kept
        )
        baseline = episode.resolved_forecast  # as scored: a resolve below moves it on
        momentum = self.momentum.probability(state.count, authors, forecast - baseline, version)
        value = gated(momentum, mean_negativity(state), self.config.scoring)
        decision = self.levels.decide(
            episode, state.thread_id, now, value, state.last_seen, can_rise=not tick
        )
        if decision is not None:
            if decision.change == "resolved":
                episode.resolved_forecast = forecast
            f = features(state, now, self.spec)
            s = score(f, momentum, self.config.scoring, version.big, baseline)
            curve = growth_curve(state, now, self.spec)
            transition = build_transition(decision, state, f, s, now, curve, self.config)
            out.append((order, transition))

    def _ticks_for(self, mentions: Sequence[Mention]) -> list[tuple[float, int]]:
        """The quiet checks that fall inside this batch, each with the position it precedes."""
        ticks: list[tuple[float, int]] = []
        position = self._position - len(mentions)
        watermark = self.watermark
        for offset, mention in enumerate(mentions):
            at = mention.created_at
            if watermark is None or at > watermark:
                watermark = at
                if self._next_tick is None or at >= self._next_tick:  # else none is due
                    ticks.extend(self._due_ticks(at, position + offset))
        self.watermark = watermark
        return ticks

    def _due_ticks(self, now: float, position: int) -> list[tuple[float, int]]:
        """The quiet checks due by event time ``now``, one per ``alerts.tick``, except across
        a long jump (a gap in a replay, a backfill, a clock fixed): once the first
        ``_useful_ticks()`` have passed, every episode open before it has resolved (no mention
        for ``resolve_after_quiet``), so the rest are skipped but the last, which expires
        idle threads as of ``now``. The same alerts, at a cost bounded by the config."""
        step = self.config.alerts.tick
        if self._next_tick is None:
            self._next_tick = (now // step + 1) * step
            return []
        due: list[tuple[float, int]] = []
        useful = self._useful_ticks()
        while self._next_tick <= now:
            if len(due) == useful:
                self._next_tick = (now // step) * step  # the last due one
            due.append((self._next_tick, position))
            self._next_tick += step
        return due

    def _useful_ticks(self) -> int:
        """Ticks after the watermark that can still change an episode: the first one at least
        ``resolve_after_quiet`` after the last mention resolves every open episode."""
        alerts = self.config.alerts
        return math.ceil(alerts.resolve_after_quiet / alerts.tick) + 2


def _decay_spec(config: Config) -> DecaySpec:
    f = config.features
    return DecaySpec.from_half_lives(
        f.half_lives, f.sparkline_bucket, f.sparkline_buckets, f.top_mentions
    )
