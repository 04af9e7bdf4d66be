"""Sentiment of a post: VADER's lexicon prior blended with an online river classifier.

VADER (made for social text; with the failure words it lacks, `service_lexicon`) scores every
post from the first one on. A river softmax regression on hashed words, word pairs and VADER's
own scores learns from labels (ground truth in replays, operator feedback live), so the mix of
lexicon and learned evidence is itself learned.
The learner counts in the blend only once it has seen every class: a classifier taught by one
class alone (a run of "this is not a complaint") would call everything that class. Until then a
label still acts at once on its own text and that text's reposts, through a memory of labelled
texts.

Contract (river style): score before learning on each mention; the same calls in the same order
give the same outputs (nothing is random; features are hashed with CRC-32, not ``hash()``).

State (``state_dict``/``from_state`` or pickling the model) is a pickle: load it only from
storage that watchtower itself wrote (trusted local data), never from users.
"""

from __future__ import annotations

import itertools
import math
import pickle
import re
import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from river import linear_model, optim

from watchtower.errors import ConfigError
from watchtower.scoring import service_lexicon

LABELS = ("negative", "neutral", "positive")
_STATE_FORMAT = 1
_NEUTRAL_BAND = 0.05  # VADER's documented compound threshold between neutral and polar
# How fast the neutral logit falls as |compound| grows: a text without sentiment words gets
# P(neutral) ~0.6 (at the default sharpness), not a three-way tie.
_NEUTRAL_SLOPE = 20.0

# Applied to lower-cased text (cheaper than IGNORECASE on every call).
_RETWEET_PREFIX = re.compile(r"(?:rt\s+@\w+:?\s*)+")
_URL = re.compile(r"(?:https?://|www\.)\S+")
# Words (with @handles, #tags, contractions), ! and ?, simple emoticons, single emoji.
_TOKEN = re.compile(r"[@#]?\w[\w']*|[!?]|[:;=]-?[()dp]|[\U0001F300-\U0001FAFF\u2600-\u27BF]")

Features = dict[int | str, float]  # hashed terms (int) and named dense features (str)


@dataclass(frozen=True)
class SentimentConfig:
    learn: bool = True  # learn from labels (replays) and operator feedback at all
    prior_weight: float = 20.0  # labels (3 x the rarest class's count) at which learner = VADER
    cache_size: int = 100_000  # LRU of normalised text -> features and scores (reposts hit)
    learning_rate: float = 0.3  # AdaGrad base step of the online classifier
    feature_buckets: int = 2**18  # hashed word/pair features: caps the learner's memory
    bigrams: bool = True  # word pairs ("not good") as features as well as single words
    vader_sharpness: float = 2.0  # polar logits of VADER's compound c are -s*c and s*c
    memory_size: int = 100_000  # labelled texts remembered exactly (feedback fixes their reposts)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ConfigError("prior_weight", f"must be 0 or more, got {self.prior_weight!r}")
        for name in ("learning_rate", "vader_sharpness"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(name, f"must be a positive number, got {getattr(self, name)!r}")
        for name in ("cache_size", "memory_size"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be 0 (off) or more, got {getattr(self, name)!r}")
        if not 1 <= self.feature_buckets <= 2**32:  # CRC-32 values, stored as 4-byte unsigned
            raise ConfigError("feature_buckets", f"must be 1 to 2**32, got {self.feature_buckets}")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """Class probabilities of one text; they sum to 1."""

    negative: float
    neutral: float
    positive: float

    @property
    def label(self) -> str:
        """The most likely class (ties go to the earlier of negative, neutral, positive)."""
        probabilities = (self.negative, self.neutral, self.positive)
        return LABELS[probabilities.index(max(probabilities))]


def normalise(text: str) -> str:
    """The cache key: no "RT @handle:" prefix, no URLs, single spaces, lower case."""
    text = " ".join(_URL.sub(" ", text.lower()).split())
    prefix = _RETWEET_PREFIX.match(text)
    return text[prefix.end() :] if prefix else text


def vader_probabilities(compound: float, sharpness: float) -> tuple[float, float, float]:
    """VADER's compound score as (negative, neutral, positive) probabilities.

    A softmax whose argmax is VADER's own rule (neutral within +-0.05): the neutral logit
    equals the polar one at the band's edges and falls steeply outside it.
    """
    margin = _NEUTRAL_BAND - abs(compound)
    neutral = sharpness * _NEUTRAL_BAND + _NEUTRAL_SLOPE * margin
    logits = (-sharpness * compound, neutral, sharpness * compound)
    top = max(logits)
    weights = [math.exp(z - top) for z in logits]
    total = sum(weights)
    return (weights[0] / total, weights[1] / total, weights[2] / total)


class _Entry:
    """What a text costs to compute (VADER, hashed terms) and its scores as of ``version``.

    Compact (~1 kB with its key) because the cache holds up to cache_size of them: the feature
    dict is rebuilt from ``terms`` only when learning has made the scores stale.
    """

    __slots__ = ("polarity", "sentiment", "terms", "version")

    def __init__(self, polarity: dict[str, float], terms: array[int]) -> None:
        self.polarity = (polarity["neg"], polarity["neu"], polarity["pos"], polarity["compound"])
        self.terms = terms
        self.version = -1  # no scores yet
        self.sentiment = Sentiment(1 / 3, 1 / 3, 1 / 3)

    def features(self) -> Features:
        """Hashed words and pairs (scaled to unit length), a bias, and VADER's scores."""
        value = 1.0 / math.sqrt(len(self.terms)) if self.terms else 0.0
        features: Features = dict.fromkeys(self.terms, value)
        negative, neutral, positive, compound = self.polarity
        features.update(
            bias=1.0,
            vader_neg=negative,
            vader_neu=neutral,
            vader_pos=positive,
            vader_compound=compound,
            vader_compound_pos=max(0.0, compound),
            vader_compound_neg=max(0.0, -compound),
        )
        return features


class SentimentModel:
    """Scores texts, learns from labelled ones; see the module docstring."""

    def __init__(self, config: SentimentConfig) -> None:
        self._setup(config)

    def _setup(self, config: SentimentConfig) -> None:
        self.config = config
        self._vader = service_lexicon.analyzer()  # VADER and the failure words it lacks
        self._learner: Any = linear_model.SoftmaxRegression(optim.AdaGrad(config.learning_rate))
        self._label_counts = dict.fromkeys(LABELS, 0)
        self._memory: OrderedDict[str, list[int]] = OrderedDict()
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._version = 0  # bumped by every learn(): cached scores older than this are stale
        self._n_learned = 0
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def n_learned(self) -> int:
        return self._n_learned

    @property
    def learner_weight(self) -> float:
        """The learner's share of the blend; 0 until it has seen every class."""
        covered = len(LABELS) * min(self._label_counts.values())
        return covered / (covered + self.config.prior_weight) if covered else 0.0

    def scores(self, text: str) -> Sentiment:
        key = normalise(text)
        entry, hit = self._lookup(key)
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1
        if entry.version != self._version:
            entry.sentiment = self._blend(key, entry)
            entry.version = self._version
        return entry.sentiment

    def negativity(self, text: str) -> float:
        """P(negative) of ``text``."""
        return self.scores(text).negative

    def learn(self, text: str, label: str) -> None:
        """Learn that ``text`` has sentiment ``label`` (one of LABELS)."""
        if label not in LABELS:
            raise ValueError(f"unknown sentiment label {label!r}; expected one of {LABELS}")
        if not self.config.learn:
            return
        key = normalise(text)
        entry, _ = self._lookup(key)
        counts = self._memory.get(key)
        repeated = counts is not None and counts[LABELS.index(label)] > 0
        self._remember(key, label)
        self._n_learned += 1
        entry.version = -1  # this text's own labels changed: rescore it
        if repeated:
            # A repost of a text already learned with this label is no new, independent
            # example: teaching it again would overweight viral texts and stale every cached
            # score for nothing.
            return
        self._learner.learn_one(entry.features(), label)
        self._label_counts[label] += 1
        self._version += 1

    def _lookup(self, key: str) -> tuple[_Entry, bool]:
        """The cache entry of a normalised text, computed on a miss; and whether it was a hit."""
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            return entry, True
        entry = _Entry(self._vader.polarity_scores(service_lexicon.rewrite(key)), self._terms(key))
        if self.config.cache_size:
            self._cache[key] = entry
            if len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return entry, False

    def _terms(self, key: str) -> array[int]:
        """Words (and word pairs), hashed to feature_buckets with CRC-32, each once, in order
        (the order keeps float sums, hence scores, reproducible)."""
        tokens = _TOKEN.findall(key)
        if self.config.bigrams:
            tokens += [" ".join(pair) for pair in itertools.pairwise(tokens)]
        buckets = self.config.feature_buckets
        return array("I", dict.fromkeys(zlib.crc32(t.encode()) % buckets for t in tokens))

    def _blend(self, key: str, entry: _Entry) -> Sentiment:
        """VADER and the learner mixed by learner_weight, then any labels this text was given."""
        probabilities = list(vader_probabilities(entry.polarity[3], self.config.vader_sharpness))
        weight = self.learner_weight
        if weight > 0:
            learned = self._learner.predict_proba_one(entry.features())
            probabilities = [
                weight * learned[label] + (1 - weight) * prior
                for label, prior in zip(LABELS, probabilities, strict=True)
            ]
        counts = self._memory.get(key)
        if counts is not None:
            # The text's own labels, with the model's view as one more pseudo-label.
            total = sum(counts) + 1
            probabilities = [(n + p) / total for n, p in zip(counts, probabilities, strict=True)]
        return Sentiment(*probabilities)

    def _remember(self, key: str, label: str) -> None:
        if not self.config.memory_size:
            return
        counts = self._memory.get(key)
        if counts is None:
            counts = self._memory[key] = [0, 0, 0]
            if len(self._memory) > self.config.memory_size:
                self._memory.popitem(last=False)
        else:
            self._memory.move_to_end(key)
        counts[LABELS.index(label)] += 1

    # --- persistence ------------------------------------------------------------------------

    def _learned_state(self) -> dict[str, Any]:
        return {
            "format": _STATE_FORMAT,
            "feature_buckets": self.config.feature_buckets,
            "bigrams": self.config.bigrams,
            "learner": self._learner,
            "label_counts": self._label_counts,
            "memory": self._memory,
            "n_learned": self._n_learned,
            "version": self._version,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"sentiment state format {state.get('format')!r} is not supported")
        for name in ("feature_buckets", "bigrams"):
            if state[name] != getattr(self.config, name):
                raise ValueError(
                    f"sentiment state was learned with {name}={state[name]!r}, "
                    f"the config says {getattr(self.config, name)!r}"
                )
        self._learner = state["learner"]  # keeps the learning rate it was saved with
        self._label_counts = state["label_counts"]
        self._memory = state["memory"]
        self._n_learned = state["n_learned"]
        self._version = state["version"]

    def state_dict(self) -> bytes:
        """What was learned, as bytes (a pickle: trusted local storage only). No cache."""
        return pickle.dumps(self._learned_state(), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, config: SentimentConfig, data: bytes) -> SentimentModel:
        """A model that continues from ``state_dict()`` bytes written by watchtower itself."""
        model = cls(config)
        model._restore(pickle.loads(data))  # noqa: S301 - trusted local data, see module doc
        return model

    def __getstate__(self) -> dict[str, Any]:
        # Pickling the whole model leaves out the VADER lexicon and the cache: both rebuild.
        return {"config": self.config, "learned": self._learned_state()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["config"])
        self._restore(state["learned"])
