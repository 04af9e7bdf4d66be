"""How likely a thread is to become big: calibrated against the platform, learned from outcomes.

P(big) = sigmoid(prior + correction):
- the prior, ``PRIOR_SLOPE * log(expected_final / big)``: the self-exciting forecast against
  the big size (even odds when the forecast is the big size), usable from the first mention on;
- the correction ``a * prior + b``, an online logistic regression on top of the prior taught by
  outcomes (see `watchtower.scoring.learner`): it starts at zero and stays near it until
  outcomes say otherwise. It is a calibration, so it never reorders threads at one moment: a
  correction that also weighed count, age and acceleration fitted its snapshots better and
  alerted worse (docs/backtest.md).

"Big" is relative as well as absolute: at least ``big_size`` and above the forecasts of all but
the top ``big_share`` of the threads with traction (``min_count`` mentions from ``min_authors``
people or more) seen within the horizon, once there are ``MIN_POPULATION`` of them; each
thread counts at its forecast as of now, faded since its latest mention (`Population`). So the
same defaults work on a platform whose threads reach a few dozen and on one whose reach
thousands.

Learning in event time, from delayed outcomes: ``note`` snapshots a thread the first time its
prior reaches each of ``MILESTONES`` (the moments an alert can fire) and keeps its count within
the horizon; once event time passes the thread's horizon, its snapshots are labelled (did it
reach the big size it was judged against?) and learned. Cross-thread state (the population, the
correction) changes only in versions, one per ``EPOCH`` of event time, built from what happened
before the version's boundary and used from ``SETTLE`` after it. The engine works a batch thread
by thread, so a mention can be scored before an earlier one of another thread in the same batch;
as long as no batch spans more than ``SETTLE`` of event time (the daemon and replay both end a
batch at ``batch_span.BATCH_SPAN``, a minute), every version is complete when first used and the
scores do not depend on where batches are cut.

Several workers splitting one stream each score only the mentions they handle, so each would
miss from its population the threads whose mentions since their traction all went to others:
mostly small ones, which put "big" too high (two workers on the synthetic demo: 6 of 71 alerts
missed, the rest a median 54 s late). A model built with ``sharing`` keeps its notes of
followed threads for the others (``take_notes``) and takes theirs in (``absorb``), so every
worker's population and outcomes cover the whole stream.

State (``state_dict``/``load_state``) is a pickle: load it only from storage watchtower wrote.
"""

from __future__ import annotations

import heapq
import math
import pickle
from dataclasses import dataclass, field
from typing import Any

from watchtower.config import MomentumConfig
from watchtower.scoring.features import Features, forecast_of
from watchtower.scoring.learner import OffsetLogistic, sigmoid
from watchtower.scoring.population import Population

PRIOR_SLOPE = 3.0  # prior logit per unit of log(forecast / big): x1.26 -> 0.68, x1.6 -> 0.80
EPOCH = 60.0  # seconds of event time between model versions
SETTLE = 300.0  # a version is used this long after its boundary (see the module docstring)
KEEP_VERSIONS = 360  # versions kept (6 h) for scores of slightly older event times
MIN_POPULATION = 10  # threads with traction needed before "big" becomes relative
# Prior logits at which a thread is snapshotted, the first time it reaches each: the moments
# an alert could fire (P 0.18 to 0.82), so the correction calibrates what the levels act on.
MILESTONES = (-1.5, -0.75, 0.0, 0.75, 1.5)
MAX_TRACKED = 200_000  # threads followed within a horizon; beyond it the oldest are dropped
_FORMAT = 2  # 2: the population keeps each thread's memory, to fade its forecast
_FORMAT_UNFADED = 1  # read too: all but its population (that refills from new mentions)

# A thread followed at a mention: (thread, at, first_seen, count, authors, memory), as `note`
# takes them; what workers hand each other (lists once through JSON).
Note = tuple[str, float, float, int, float, tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class Version:
    """What every score between two boundaries reads: fixed once built."""

    big: float  # the big size threads are judged against
    slope: float  # the learned correction: slope * prior + bias
    bias: float


@dataclass(slots=True)
class _Thread:
    due: float  # first mention + horizon: the outcome is known then
    size: int = 0  # mentions within the horizon
    last: float = -math.inf  # latest event time observed (kept monotone)
    next_snapshot: int = 0
    snapshots: list[tuple[float, float]] = field(default_factory=list)  # (prior logit, big)


class MomentumModel:
    """P(the thread becomes big); see the module docstring."""

    def __init__(
        self, config: MomentumConfig, taus: tuple[float, ...], *, sharing: bool = False
    ) -> None:
        """``taus``: the decays of the threads' memories (`DecaySpec.taus`); ``sharing``: one
        of several workers, which hands its notes to the others (see the module docstring)."""
        self.config = config
        self.sharing = sharing
        self._outgoing: list[Note] = []
        self.learner = OffsetLogistic()
        self.learned = 0  # threads whose outcome was learned
        self.population = Population(taus)
        self._threads: dict[str, _Thread] = {}
        self._due: list[tuple[float, str]] = []  # (due, thread) heap
        self._built: int | None = None  # index of the newest version
        self._versions: dict[int, Version] = {}

    # --- scoring ---------------------------------------------------------------------------

    def predict(self, f: Features, baseline: float = 0.0) -> float:
        """P(big) of a thread with these features, its growth counted from ``baseline`` (the
        forecast when its last episode resolved); reads the model, changes nothing."""
        growth = f.expected_final - baseline
        return self.probability(f.count, f.authors, growth, self.version_at(f.at))

    def probability(self, count: int, authors: float, forecast: float, version: Version) -> float:
        """P(big) of a thread of ``count`` mentions by ``authors`` people, forecast to reach
        ``forecast``."""
        if count < self.config.min_count or authors < self.config.min_authors:
            return 0.0
        prior = prior_logit(forecast, version.big)
        return sigmoid(prior + version.slope * prior + version.bias)

    def big_size(self, at: float | None = None) -> float:
        """The size a thread must reach to be big, as the model sees it at ``at``."""
        return self.version_at(at).big

    def version_at(self, at: float | None) -> Version:
        """The version for event time ``at`` (None or not built yet: the newest)."""
        if at is None:
            return self._initial() if self._built is None else self._versions[self._built]
        return self._version_of(self._index(at))

    def _version_of(self, index: int) -> Version:
        if self._built is None:
            return self._initial()
        version = self._versions.get(min(index, self._built))
        return version or self._versions[min(self._versions)]

    # --- learning --------------------------------------------------------------------------

    def note(
        self,
        thread_id: str,
        at: float,
        first_seen: float,
        count: int,
        authors: float,
        memory: tuple[float, ...],
    ) -> Version:
        """Note a thread being scored (snapshots, population: outcomes are learned later);
        return the version to score ``at`` with. It takes the parts (``memory``: the decayed
        counts at ``at``, `features.memory`), not `Features`: the engine scores every mention
        and builds those only for a transition. Conversations (fewer than ``min_authors``
        people) move time on but are not followed: they are never scored, so they neither
        lower "big" nor teach the correction."""
        index = self._index(at)
        if count >= self.config.min_count:
            self._advance_for(index)
            if authors >= self.config.min_authors:
                self._follow(thread_id, at, first_seen, count, memory)
                if self.sharing:
                    self._outgoing.append((thread_id, at, first_seen, count, authors, memory))
        return self._version_of(index)

    def take_notes(self) -> list[Note]:
        """The threads this worker followed since the last call, for the other workers."""
        taken, self._outgoing = self._outgoing, []
        return taken

    def absorb(self, notes: list[Note]) -> None:
        """Follow the threads other workers scored, as if this worker had scored them; a note
        older than what this worker already saw of its thread is left out."""
        for thread_id, at, first_seen, count, _, memory in notes:
            known = self._threads.get(thread_id)
            if known is not None and at < known.last:
                continue
            self._advance_for(self._index(at))
            self._follow(thread_id, at, first_seen, count, tuple(memory))

    def _follow(
        self, thread_id: str, at: float, first_seen: float, count: int, memory: tuple[float, ...]
    ) -> None:
        thread = self._threads.get(thread_id)
        if thread is None:
            due = first_seen + self.config.horizon
            if at > due:
                return  # first seen with traction after its horizon: nothing left to learn
            thread = self._track(thread_id, due, at)
        at = max(at, thread.last)  # a thread's own time never runs back
        if at > thread.due:
            return  # its outcome window has closed
        thread.last = at
        thread.size = max(thread.size, count)
        self.population.move(thread_id, at, count, memory)
        if self.config.learn and thread.next_snapshot < len(MILESTONES):
            self._snapshot(thread, forecast_of(count, memory), self.version_at(at).big)

    def _snapshot(self, thread: _Thread, forecast: float, big: float) -> None:
        prior = prior_logit(forecast, big)
        reached = thread.next_snapshot
        while reached < len(MILESTONES) and prior >= MILESTONES[reached]:
            reached += 1
        if reached > thread.next_snapshot:
            thread.snapshots.append((prior, big))
            thread.next_snapshot = reached

    def _track(self, name: str, due: float, at: float) -> _Thread:
        thread = _Thread(due=due)
        self._threads[name] = thread
        heapq.heappush(self._due, (due, name))
        if len(self._threads) > MAX_TRACKED:  # forget the oldest, unlearned
            _, oldest = heapq.heappop(self._due)
            self._threads.pop(oldest, None)
            self.population.drop(oldest, at)
        return thread

    def _advance_for(self, index: int) -> None:
        """Build the versions up to ``index`` unless they are built already."""
        if self._built is None or index > self._built:
            self._advance(index)

    def _advance(self, target: int) -> None:
        """Build every version up to the one of index ``target``."""
        if self._built is None:
            self._built = target
            self._versions[target] = self._initial()
            return
        while self._built < target:
            self._built += 1
            self._versions[self._built] = self._build(self._built * EPOCH)
            self._versions.pop(self._built - KEEP_VERSIONS, None)

    def _build(self, boundary: float) -> Version:
        """The version after everything that happened before ``boundary``."""
        changed = self.population.apply(boundary)
        while self._due and self._due[0][0] < boundary:
            due, name = heapq.heappop(self._due)
            thread = self._threads.pop(name, None)
            self.population.drop(name, due)
            if thread is not None:
                self._learn(thread)
                changed = True
        changed = self.population.apply(boundary) or changed
        previous = self._versions.get(math.floor(boundary / EPOCH) - 1)
        if previous is not None and not changed:
            return previous
        return self._version()

    def _learn(self, thread: _Thread) -> None:
        if not self.config.learn or not thread.snapshots:
            return
        for prior, big in thread.snapshots:
            self.learner.learn_one({"prior": prior}, prior, thread.size >= big)
        self.learned += 1

    def _version(self) -> Version:
        big = float(self.config.big_size)
        if self.config.big_share > 0 and self.population.size >= MIN_POPULATION:
            big = max(big, self.population.quantile(1.0 - self.config.big_share))
        return Version(big, self.learner.weights.get("prior", 0.0), self.learner.bias)

    def _initial(self) -> Version:
        return Version(float(self.config.big_size), 0.0, 0.0)

    @staticmethod
    def _index(at: float) -> int:
        return math.floor((at - SETTLE) / EPOCH)

    # --- persistence -----------------------------------------------------------------------

    def state_dict(self) -> bytes:
        """Everything learned, as bytes (a pickle: keep it where only watchtower writes)."""
        state: dict[str, Any] = {
            "format": _FORMAT,
            "learner": self.learner,
            "learned": self.learned,
            "population": self.population,
            "threads": self._threads,
            "due": self._due,
            "built": self._built,
            "versions": self._versions,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def load_state(self, data: bytes) -> None:
        """Restore `state_dict` output (all or nothing); the config stays this model's own."""
        state = pickle.loads(data)  # noqa: S301 - written by watchtower itself (see above)
        if not isinstance(state, dict) or state.get("format") not in (_FORMAT, _FORMAT_UNFADED):
            raise ValueError("saved momentum state has an unknown format")
        if state["format"] == _FORMAT_UNFADED:
            # Its population has no memories to fade; an upgrade keeps what was learned (the
            # correction, the snapshots awaiting their outcome) and re-ranks the threads as
            # they are mentioned again.
            state["population"] = Population(self.population.taus)
        elif state["population"].taus != self.population.taus:
            raise ValueError("saved momentum state has other half-lives than the config")
        parts = (
            state["learner"],
            state["learned"],
            state["population"],
            state["threads"],
            state["due"],
            state["built"],
            state["versions"],
        )
        (
            self.learner,
            self.learned,
            self.population,
            self._threads,
            self._due,
            self._built,
            self._versions,
        ) = parts


def prior_logit(forecast: float, big: float) -> float:
    """The prior's log-odds: the forecast against the big size, in log terms (scale-free)."""
    return PRIOR_SLOPE * math.log((forecast if forecast > 1e-9 else 1e-9) / big)
