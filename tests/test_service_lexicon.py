"""The failure words and phrases VADER lacks: outage complaints read as complaints from the first
post on, and what VADER already scored well does not move."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from watchtower.scoring import service_lexicon
from watchtower.scoring.sentiment import SentimentConfig, SentimentModel, normalise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUTAGES = [
    "@acme down again, cannot log in, furious",
    "@acme the app is down, can't log in",
    "@acme your site keeps crashing",
    "@acme checkout not working for an hour",
    "is this where i report an outage? @acme",
]


def test_failure_phrases_become_one_failure_word() -> None:
    failure = service_lexicon.FAILURE
    assert service_lexicon.rewrite("the app is down, cannot log in") == (
        f"the app {failure}, {failure}"
    )
    assert service_lexicon.rewrite("my card isn't working") == f"my card {failure}"
    for kept in ("im down for pizza", "the price went down", "down to earth", "it works now"):
        assert service_lexicon.rewrite(kept) == kept
    # a quantity going down is not a failure, whatever else in the text is
    for kept in ("fares are down this week", "wait times are down, nice", "the price is down"):
        assert service_lexicon.rewrite(kept) == kept
    assert service_lexicon.rewrite("stock is down and the app is down") == (
        f"stock is down and the app {failure}"
    )


def test_a_model_with_no_labels_reads_outage_reports_as_complaints() -> None:
    model = SentimentModel(SentimentConfig())
    plain = SentimentIntensityAnalyzer()
    for text in OUTAGES:
        assert model.negativity(text) > 0.5, text
    # VADER alone calls most of them neutral or positive ("cannot" flips "furious")
    assert sum(plain.polarity_scores(normalise(t))["compound"] <= -0.05 for t in OUTAGES) <= 2


def test_texts_without_failure_words_score_as_vader_has_them() -> None:
    ours, plain = service_lexicon.analyzer(), SentimentIntensityAnalyzer()
    for text in ("i love this airline", "worst service ever", "flight was ok", "so happy!!"):
        rewritten = service_lexicon.rewrite(text)
        assert ours.polarity_scores(rewritten) == plain.polarity_scores(text)


@pytest.mark.realdata
def test_vaders_human_rated_tweets_keep_their_correlation() -> None:
    path = DATA / "vader_groundtruth" / "tweets_GroundTruth.txt"
    if not path.is_file():
        pytest.skip(f"no shared data at {path}")
    rated = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rated.append((normalise(parts[2]), float(parts[1])))
    ours, plain = service_lexicon.analyzer(), SentimentIntensityAnalyzer()

    def correlation(score: list[float]) -> float:
        ratings = [r for _, r in rated]
        ms, mr = statistics.mean(score), statistics.mean(ratings)
        cov = sum((s - ms) * (r - mr) for s, r in zip(score, ratings, strict=True))
        var = sum((s - ms) ** 2 for s in score) * sum((r - mr) ** 2 for r in ratings)
        return cov / math.sqrt(var)

    before = correlation([plain.polarity_scores(t)["compound"] for t, _ in rated])
    after = correlation(
        [ours.polarity_scores(service_lexicon.rewrite(t))["compound"] for t, _ in rated]
    )
    assert len(rated) == 4200
    assert after >= before - 0.002  # 0.871 both: 10 of 4,200 texts move
