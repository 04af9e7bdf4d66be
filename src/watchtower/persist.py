"""What the engine learned, across restarts: the sentiment model and the momentum model, kept
in the state store's blobs (the brand storm baselines live on the workers' shared board:
decide/shared_storms.py; a stopping worker hands its open bucket over there).

Only when the store keeps blobs (Redis): the memory store dies with the process anyway. The
bytes are the model's own ``state_dict`` (a pickle): written and read only by watchtower
processes sharing one Redis, the trust boundary of the thread state beside them. A blob that
does not load (another model version) is logged and ignored: the model starts from its prior.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from watchtower.engine import Engine
from watchtower.logs import kv
from watchtower.scoring.sentiment import SentimentConfig, SentimentModel

log = logging.getLogger(__name__)

SENTIMENT_BLOB = "sentiment-model"
MOMENTUM_BLOB = "momentum-model"


class Learned(Protocol):
    def state_dict(self) -> bytes: ...

    def load_state(self, data: bytes) -> None: ...


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


def _models(engine: Engine) -> tuple[tuple[str, Learned], ...]:
    # Brand storms on a shared store live on the workers' board all along (shared_storms.py).
    return ((MOMENTUM_BLOB, engine.momentum),)


async def restore_learned(store: object, engine: Engine) -> None:
    """Put back into ``engine`` every model saved by the last stop (each one independently)."""
    model = await restore_sentiment(store, engine.config.sentiment)
    if model is not None:
        engine.sentiment = model
    if not isinstance(store, BlobStore):
        return
    for name, target in _models(engine):
        try:
            data = await store.get_blob(name)
            if data is not None:
                target.load_state(data)
                log.info("model restored", extra=kv(model=name, bytes=len(data)))
        except Exception as exc:
            log.warning("saved model not restored", extra=kv(model=name, error=repr(exc)))


async def save_learned(store: object, engine: Engine) -> bool:
    if not isinstance(store, BlobStore):
        return False
    await save_sentiment(store, engine.sentiment)
    for name, model in _models(engine):
        await store.set_blob(name, model.state_dict())
    if engine.shared is not None:
        await engine.shared.hand_over(engine.storms)
    return True
