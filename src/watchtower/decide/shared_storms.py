"""Brand storms judged across the workers that split one stream (``state.backend: redis``).

A worker sees only its share of each brand's complaints: judged alone, a storm of 40 separate
complaints against 12 expected shows as about 20 against 6 on each of two workers, which can
stay under ``min_threads`` or the z threshold, and a big storm fires on every worker with a
fraction of the count. So each worker only collects: every bucket it closes is a share
(``StormWatch`` in collect mode), published to a board with how far its event time is. Once
every present worker is past a bucket's end, the first worker to try judges it: it loads the
shared watch, merges every worker's shares of each bucket due and decides them exactly as one
worker seeing the whole stream would have (a test checks the transitions are identical), and
stores the watch back. The board keeps judgements atomic (state/redis_storms.py): one wins, the
others are redone.

A worker tries when its own event time crosses into a new bucket (the last one to cross is the
one that can judge), and keeps its presence known every ``KEEPALIVE`` seconds. A worker that
stops hands over its open bucket; one that dies is waited for until the board takes it for gone,
and a share it publishes after that (a worker stalled for minutes) is too late: logged, dropped.
"""

from __future__ import annotations

import logging
import math
import pickle
import time

from watchtower.alerting.alert import AlertTransition
from watchtower.config import StormConfig
from watchtower.decide.storms import StormEpisode, StormWatch
from watchtower.logs import kv
from watchtower.scoring.baseline import Partial
from watchtower.state.store import StormBoard

log = logging.getLogger(__name__)

KEEPALIVE = 30.0  # wall seconds between heartbeats at most, even with nothing to publish


class SharedStorms:
    """Publishes the local watch's shares and judges the buckets that are due (``sync``)."""

    def __init__(self, config: StormConfig, board: StormBoard) -> None:
        self.config = config
        self.board = board
        self._firing: dict[str, StormEpisode] = {}  # as of the last judgement made here
        self._through: int | None = None  # the last bucket that judgement decided
        self._bucket: int | None = None  # the bucket this worker's event time is in
        self._beat = -math.inf  # time.monotonic() of the last heartbeat
        self._due = False  # a judgement to try (the last try lost to another worker's)
        self._unsent: list[Partial] = []  # shares not yet published (the store was down)

    def reconfigure(self, config: StormConfig) -> None:
        """A reload: shares not yet published stay, unless the bucket grid changed under them."""
        if config.bucket != self.config.bucket:
            self._unsent, self._bucket, self._through = [], None, None
        self.config = config

    async def sync(self, local: StormWatch, watermark: float | None) -> list[AlertTransition]:
        """Publish ``local``'s new shares; judge what every worker has closed, if anything.
        A store failure is logged and the work kept for the next call: the batch that called
        has been decided, and storms can wait for the store to come back."""
        if watermark is None or not self.config.enabled:
            return []
        self._unsent += local.take_partials()
        try:
            return await self._sync(watermark)
        except Exception as exc:  # the stage boundary: the next batch tries again
            log.warning("shared storms deferred", extra=kv(error=repr(exc)))
            return []

    async def _sync(self, watermark: float) -> list[AlertTransition]:
        bucket = math.floor(watermark / self.config.bucket)
        now = time.monotonic()
        # A new bucket, or a while since the last try: a laggard may have caught up or gone.
        due = bucket != self._bucket or now - self._beat >= KEEPALIVE
        if self._unsent or due:
            await self.board.publish([(s.index, _encode(s)) for s in self._unsent], watermark)
            self._unsent = []
            self._beat, self._bucket = now, bucket
            self._due = self._due or due
        if not self._due:
            return []
        judgement = _Judgement(self.config)
        if not await self.board.judge(self.config.bucket, judgement.decide):
            return []  # another worker judged or published meanwhile: tried again next time
        self._due = False
        if judgement.through is not None:
            self._firing, self._through = judgement.firing, judgement.through
        return judgement.out

    @property
    def firing(self) -> dict[str, StormEpisode]:
        """Brands in a storm, if this worker judged the latest bucket (else another worker did
        and says so): summed over workers, each storm is counted once."""
        latest = self._bucket is not None and self._through == self._bucket - 1
        return self._firing if latest else {}

    async def hand_over(self, local: StormWatch) -> None:
        """Publish the open bucket's share and leave: this worker stops, the others go on."""
        share = local.baseline.open_partial()
        shares = self._unsent + local.take_partials() + ([] if share is None else [share])
        await self.board.publish([(s.index, _encode(s)) for s in shares], None)
        self._unsent = []
        await self.board.leave()


class _Judgement:
    """One try at judging: the decision, kept only if the board stores its state."""

    def __init__(self, config: StormConfig) -> None:
        self.config = config
        self.through: int | None = None  # the last bucket decided (None: nothing was due)
        self.out: list[AlertTransition] = []
        self.firing: dict[str, StormEpisode] = {}

    def decide(self, state: bytes | None, shares: list[bytes], through: int) -> bytes:
        self.through = through
        watch = StormWatch(self.config)
        if state is not None:
            try:
                watch.load_state(state)
            except ValueError as exc:  # another bucket width: the baselines start afresh
                log.warning("shared storm state not loaded", extra=kv(error=str(exc)))
        partials = [p for p in map(_decode, shares) if p is not None]
        due = watch.baseline.next_index
        late = [p for p in partials if due is not None and p.index < due]
        if late:
            log.warning("storm shares too late to count", extra=kv(buckets=len(late)))
        self.out = watch.judge(partials, through)
        self.firing = watch.firing
        return watch.state_dict()


def _encode(share: Partial) -> bytes:
    return pickle.dumps(share, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Partial | None:
    """A share, or None (logged) for bytes that are not one: they must not stop every judgement."""
    try:
        share = pickle.loads(data)  # noqa: S301 - written by watchtower workers, as other blobs
    except Exception as exc:
        log.warning("storm share unreadable, dropped", extra=kv(error=repr(exc)))
        return None
    if not isinstance(share, Partial):
        log.warning("storm share unreadable, dropped", extra=kv(got=type(share).__name__))
        return None
    return share
