"""How much event time one batch may span: the rule that every caller cutting batches for the
engine (the daemon's batcher, replay) keeps, so that its alerts do not depend on where they cut."""

from __future__ import annotations

from watchtower.mention import Mention

# A batch should span no more event time than this: the momentum model's cross-thread state
# settles for 5 minutes (SETTLE), so a batch spanning longer (512 mentions of a sparse stream,
# a backlog drained after an outage) gets other alerts than millisecond batches; under it, none
BATCH_SPAN = 60.0


def spans_too_long(first: Mention, coming: Mention) -> bool:
    """Whether ``coming`` is too far in event time from a batch's ``first`` to join it."""
    return coming.created_at - first.created_at > BATCH_SPAN
