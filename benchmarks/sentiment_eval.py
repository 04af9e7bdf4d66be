"""Sentiment quality and cost on the airline tweets, by progressive validation.

Each tweet in time order (tweet_created) is first predicted, then learned: every prediction is
out of sample, as it is for a daemon that learns from replays and feedback. Compared: VADER alone
(the standard compound thresholds +-0.05), the blended model of watchtower.scoring.sentiment, and
its prior alone (VADER with watchtower's failure words: what a daemon with no labels reads).
Target: blended >= 80% accuracy and >= 15 points above VADER alone.

``--pretrain OTHER.csv`` first learns every tweet of another file (a deployment that has replayed
labelled history), then evaluates on --data as above. Also times scores() on a cache miss and a
hit. Times are CPU seconds of this process (time.process_time): other work on a shared machine
does not count.

    .venv/bin/python benchmarks/sentiment_eval.py [--data PATH] [--limit N] [--pretrain PATH]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from watchtower.scoring import service_lexicon
from watchtower.scoring.sentiment import LABELS, SentimentConfig, SentimentModel, normalise

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "airline" / "Tweets.csv"


@dataclass(frozen=True)
class Tweet:
    created: datetime
    tweet_id: str
    text: str
    label: str


@dataclass(frozen=True)
class Result:
    model: str
    accuracy: float
    macro_f1: float
    n: int
    us_per_mention: float


def load_tweets(path: Path, limit: int | None = None) -> list[Tweet]:
    """Labelled tweets in time order (ties by id); quoted newlines need the csv module."""
    with path.open(newline="", encoding="utf-8") as f:
        tweets = [
            Tweet(
                datetime.strptime(row["tweet_created"], "%Y-%m-%d %H:%M:%S %z"),
                row["tweet_id"],
                row["text"],
                row["airline_sentiment"],
            )
            for row in csv.DictReader(f)
            if row["airline_sentiment"] in LABELS
        ]
    tweets.sort(key=lambda t: (t.created, t.tweet_id))
    return tweets[:limit]


def accuracy_and_macro_f1(predicted: Sequence[str], truth: Sequence[str]) -> tuple[float, float]:
    pairs = list(zip(predicted, truth, strict=True))
    accuracy = sum(p == t for p, t in pairs) / len(pairs)
    f1s = []
    for label in LABELS:
        tp = sum(p == label and t == label for p, t in pairs)
        wrong = sum((p == label) != (t == label) for p, t in pairs)  # false pos + false neg
        f1s.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return accuracy, sum(f1s) / len(f1s)


def vader_label(compound: float) -> str:
    if compound >= 0.05:
        return "positive"
    return "negative" if compound <= -0.05 else "neutral"


def evaluate(
    name: str, tweets: Sequence[Tweet], predict_then_learn: Callable[[Tweet], str]
) -> Result:
    started = time.process_time()
    predicted = [predict_then_learn(t) for t in tweets]
    seconds = time.process_time() - started
    accuracy, macro_f1 = accuracy_and_macro_f1(predicted, [t.label for t in tweets])
    return Result(name, accuracy, macro_f1, len(tweets), seconds / len(tweets) * 1e6)


def vader_alone(tweets: Sequence[Tweet]) -> Result:
    analyzer = SentimentIntensityAnalyzer()
    return evaluate(
        "VADER alone (compound +-0.05)",
        tweets,
        lambda t: vader_label(analyzer.polarity_scores(t.text)["compound"]),
    )


def prior_alone(tweets: Sequence[Tweet]) -> Result:
    """What a daemon with no labels reads: VADER with the failure words (service_lexicon)."""
    analyzer = service_lexicon.analyzer()
    return evaluate(
        "VADER + failure words, no learning",
        tweets,
        lambda t: vader_label(
            analyzer.polarity_scores(service_lexicon.rewrite(normalise(t.text)))["compound"]
        ),
    )


def blended(
    tweets: Sequence[Tweet], config: SentimentConfig, pretrain: Sequence[Tweet] = ()
) -> Result:
    model = SentimentModel(config)
    for tweet in pretrain:
        model.learn(tweet.text, tweet.label)

    def predict_then_learn(tweet: Tweet) -> str:
        label = model.scores(tweet.text).label
        model.learn(tweet.text, tweet.label)
        return label

    name = "blended VADER + river (predict, learn)"
    if pretrain:
        name += f", after {len(pretrain)}"
    return evaluate(name, tweets, predict_then_learn)


def time_scores(tweets: Sequence[Tweet], config: SentimentConfig, learned: int) -> list[Result]:
    """µs per scores() call on misses then hits, after learning ``learned`` tweets."""
    model = SentimentModel(config)
    for tweet in tweets[:learned]:
        model.learn(tweet.text, tweet.label)
    fresh = [t.text for t in tweets[learned:]]
    model = SentimentModel.from_state(config, model.state_dict())  # same learner, cold cache
    rows = []
    for phase in ("cache miss", "cache hit"):
        started = time.process_time()
        for text in fresh:
            model.scores(text)
        seconds = time.process_time() - started
        name = f"scores() {phase}, learner trained on {learned}"
        cost = seconds / len(fresh) * 1e6
        rows.append(Result(name, float("nan"), float("nan"), len(fresh), cost))
    return rows


def print_table(results: Sequence[Result]) -> None:
    print(f"{'model':<48} {'accuracy':>8} {'macro-F1':>8} {'n':>6} {'µs/mention':>10}")
    for r in results:
        quality = (
            f"{r.accuracy:>8.1%} {r.macro_f1:>8.1%}" if r.accuracy == r.accuracy else f"{'':>17}"
        )
        print(f"{r.model:<48} {quality} {r.n:>6} {r.us_per_mention:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="airline Tweets.csv")
    parser.add_argument("--limit", type=int, default=None, help="first N tweets only")
    parser.add_argument("--pretrain", type=Path, default=None, help="learn this CSV first")
    args = parser.parse_args()
    tweets = load_tweets(args.data, args.limit)
    config = SentimentConfig()
    results = [vader_alone(tweets), blended(tweets, config), prior_alone(tweets)]
    if args.pretrain is not None:
        results.append(blended(tweets, config, load_tweets(args.pretrain)))
    uncached = blended(tweets, replace(config, cache_size=0))
    results.append(replace(uncached, model="blended, cache off"))
    results += time_scores(tweets, config, learned=len(tweets) // 2)
    print_table(results)
    gap = results[1].accuracy - results[0].accuracy
    print(f"blended - VADER: {gap:+.1%} accuracy; target >= 80% and >= +15 points")


if __name__ == "__main__":
    main()
