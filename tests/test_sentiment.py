"""The sentiment model: VADER prior, online learning, cache, persistence, real-data quality."""

from __future__ import annotations

import csv
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from watchtower.errors import ConfigError
from watchtower.scoring.sentiment import (
    LABELS,
    Sentiment,
    SentimentConfig,
    SentimentModel,
    normalise,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TWEETS = DATA / "airline" / "Tweets.csv"

NEGATIVE = "This airline is the worst, I hate waiting hours for a terrible, rude service."
POSITIVE = "Thank you so much, the crew was wonderful and the flight was great!"
NEUTRAL = "The flight to Denver leaves from gate 12 at 5pm."
UNRELATED = [NEGATIVE, POSITIVE, NEUTRAL, "Lost my bag again, awful", "ok see you there"]


def total(s: Sentiment) -> float:
    return s.negative + s.neutral + s.positive


def teach_mixed(model: SentimentModel, rounds: int = 30) -> None:
    """All three classes, with an invented word 'zorblax' that only ever comes up negative."""
    for i in range(rounds):
        model.learn(f"my zorblax number {i} showed up at the desk", "negative")
        model.learn(f"parcel number {i} showed up at the desk", "neutral")
        model.learn(f"lovely parcel number {i}, thank you", "positive")


def test_vader_prior_alone_gets_obvious_texts_right() -> None:
    model = SentimentModel(SentimentConfig())
    assert model.learner_weight == 0.0
    for text, label in ((NEGATIVE, "negative"), (POSITIVE, "positive"), (NEUTRAL, "neutral")):
        s = model.scores(text)
        assert s.label == label, (text, s)
        assert total(s) == pytest.approx(1.0)
    assert model.negativity(NEGATIVE) > 0.8
    assert model.negativity(POSITIVE) < 0.1


def test_normalise_strips_retweet_prefix_urls_and_case() -> None:
    text = "RT @Some_One: RT @other:  Worst   DELAY ever https://t.co/abc www.x.com/y\n!"
    assert normalise(text) == "worst delay ever !"
    assert normalise("the RT @x: stays inside") == "the rt @x: stays inside"


def test_cache_hit_returns_the_miss_result_and_reposts_hit() -> None:
    model = SentimentModel(SentimentConfig())
    first = model.scores("Stuck on the tarmac for 3 hours, awful.")
    assert (model.cache_hits, model.cache_misses) == (0, 1)
    assert model.scores("Stuck on the tarmac for 3 hours, awful.") == first
    repost = model.scores("RT @angry_flyer: Stuck on the  tarmac for 3 hours, AWFUL. http://t.co/z")
    assert repost == first
    assert (model.cache_hits, model.cache_misses) == (2, 1)


def test_cache_off_and_evictions_change_nothing_but_speed() -> None:
    cached = SentimentModel(SentimentConfig(cache_size=2))
    uncached = SentimentModel(SentimentConfig(cache_size=0))
    for model in (cached, uncached):
        teach_mixed(model, rounds=5)
    for text in UNRELATED * 2:
        assert cached.scores(text) == uncached.scores(text)
    assert uncached.cache_hits == 0


def test_learning_a_pattern_raises_its_negativity() -> None:
    model = SentimentModel(SentimentConfig())
    text = "a zorblax turned up this morning"
    before = model.negativity(text)  # cached now: learning must refresh it
    teach_mixed(model)
    assert model.n_learned == 90
    assert 0.5 < model.learner_weight < 1.0
    after = model.scores(text)
    assert after.label == "negative"
    assert after.negative > before + 0.25
    assert total(after) == pytest.approx(1.0)


def test_one_class_feedback_fixes_its_text_without_flipping_the_rest() -> None:
    fresh = SentimentModel(SentimentConfig())
    model = SentimentModel(SentimentConfig())
    complaint_like = "worst ad campaign, I hate how good this is"
    assert model.scores(complaint_like).label == "negative"
    for i in range(30):  # operators only ever saying "this is not a complaint"
        model.learn(f"{complaint_like} {i}", "neutral")
    model.learn(complaint_like, "neutral")
    assert model.learner_weight == 0.0  # a learner that saw one class does not count yet
    assert model.scores(f"RT @fan: {complaint_like}").label == "neutral"  # its reposts do
    for text in UNRELATED:
        assert model.scores(text) == fresh.scores(text)


def test_invalid_label_is_named() -> None:
    model = SentimentModel(SentimentConfig())
    with pytest.raises(ValueError, match="'angry'"):
        model.learn("whatever", "angry")
    with pytest.raises(ValueError, match="'Negative'"):
        SentimentModel(SentimentConfig(learn=False)).learn("whatever", "Negative")
    assert model.n_learned == 0


def test_learn_off_learns_nothing() -> None:
    model = SentimentModel(SentimentConfig(learn=False))
    before = model.scores(NEUTRAL)
    model.learn(NEUTRAL, "negative")
    assert model.n_learned == 0
    assert model.scores(NEUTRAL) == before


def test_state_round_trip_gives_identical_scores_and_continues_identically() -> None:
    config = SentimentConfig()
    model = SentimentModel(config)
    teach_mixed(model, rounds=10)
    restored = SentimentModel.from_state(config, model.state_dict())
    pickled = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    assert restored.n_learned == pickled.n_learned == model.n_learned
    for text in UNRELATED:
        assert restored.scores(text) == pickled.scores(text) == model.scores(text)
    for m in (model, restored, pickled):
        m.learn("the zorblax again", "negative")
    assert restored.scores("zorblax") == pickled.scores("zorblax") == model.scores("zorblax")
    assert len(pickle.dumps(model)) < 200_000  # no VADER lexicon, no cache inside


def test_state_with_other_feature_hashing_is_refused() -> None:
    data = SentimentModel(SentimentConfig()).state_dict()
    with pytest.raises(ValueError, match="feature_buckets"):
        SentimentModel.from_state(SentimentConfig(feature_buckets=1024), data)


def test_same_calls_same_outputs() -> None:
    outputs = []
    for _ in range(2):
        model = SentimentModel(SentimentConfig())
        teach_mixed(model, rounds=8)
        outputs.append([model.scores(t) for t in UNRELATED])
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [("learning_rate", 0.0), ("prior_weight", -1.0), ("cache_size", -1), ("feature_buckets", 0)],
)
def test_bad_config_names_the_key(field: str, value: float) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError, match=field):
        replace(SentimentConfig(), **changes)


def progressive_accuracy(model: SentimentModel, tweets: list[tuple[str, str]]) -> float:
    """Predict each tweet, then learn its label: every prediction is out of sample."""
    right = 0
    for text, label in tweets:
        right += model.scores(text).label == label
        model.learn(text, label)
    return right / len(tweets)


@pytest.mark.realdata
@pytest.mark.skipif(not TWEETS.is_file(), reason=f"{TWEETS} is absent")
def test_blend_beats_vader_alone_on_airline_tweets() -> None:
    with TWEETS.open(newline="", encoding="utf-8") as f:
        rows = sorted(
            (r["tweet_created"], r["tweet_id"], r["text"], r["airline_sentiment"])
            for r in csv.DictReader(f)
            if r["airline_sentiment"] in LABELS
        )
    tweets = [(text, label) for _, _, text, label in rows[:3000]]
    vader = progressive_accuracy(SentimentModel(SentimentConfig(learn=False)), tweets)
    blended = progressive_accuracy(SentimentModel(SentimentConfig()), tweets)
    assert blended >= 0.70
    assert blended >= vader + 0.15
