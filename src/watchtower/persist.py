"""The sentiment model across restarts: what it learned, kept in the state store's blobs.

Only when the store keeps blobs (Redis): the memory store dies with the process anyway. The
bytes are the model's own ``state_dict`` (a pickle): written and read only by watchtower
processes sharing one Redis, the trust boundary of the thread state beside them. A blob that
does not load (another model version) is logged and ignored: the model starts from its prior.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from watchtower.logs import kv
from watchtower.scoring.sentiment import SentimentConfig, SentimentModel

log = logging.getLogger(__name__)

SENTIMENT_BLOB = "sentiment-model"


@runtime_checkable
class BlobStore(Protocol):
    async def get_blob(self, name: str) -> bytes | None: ...

    async def set_blob(self, name: str, data: bytes) -> None: ...


async def restore_sentiment(store: object, config: SentimentConfig) -> SentimentModel | None:
    """The saved model, or None (no blobs, nothing saved, unreadable, store unreachable)."""
    if not isinstance(store, BlobStore):
        return None
    try:
        data = await store.get_blob(SENTIMENT_BLOB)
        if data is None:
            return None
        model = SentimentModel.from_state(config, data)
    except Exception as exc:
        log.warning("saved sentiment model not restored", extra=kv(error=repr(exc)))
        return None
    log.info("sentiment model restored", extra=kv(bytes=len(data), learned=model.n_learned))
    return model


async def save_sentiment(store: object, model: SentimentModel) -> bool:
    if not isinstance(store, BlobStore):
        return False
    data = model.state_dict()
    await store.set_blob(SENTIMENT_BLOB, data)
    log.info("sentiment model saved", extra=kv(bytes=len(data), learned=model.n_learned))
    return True
