"""Converters: exact records from tiny hand-made fixtures, and counts on the real data."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import orjson
import pytest

from watchtower.convert import add_convert_command, airline, pheme, twcs, twitter15
from watchtower.convert._records import snowflake_seconds

Record = dict[str, object]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
T0 = 1767571200.0  # 2026-01-05T00:00:00Z


def _mention(mention_id: str, created_at: str, text: str, **fields: object) -> Record:
    """A full record in the format's key order, with the converters' usual defaults."""
    record: Record = {
        "id": mention_id,
        "platform": "twitter",
        "created_at": created_at,
        "text": text,
        "author": None,
        "thread_id": None,
        "reply_to": None,
        "repost_of": None,
        "quote_of": None,
        "brand": None,
        "url": None,
        "lang": "en",
        "label": None,
    }
    unknown = fields.keys() - record.keys()
    assert not unknown, unknown
    record.update(fields)
    return record


def _author(name: str) -> Record:
    return {"id": name, "handle": name, "followers": None, "verified": False}


def _uid(uid: str) -> Record:
    return {"id": uid, "handle": f"u{uid}", "followers": None, "verified": False}


# --- airline ---------------------------------------------------------------------------

AIRLINE_HEADER = (
    "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,"
    "negativereason_confidence,airline,airline_sentiment_gold,name,negativereason_gold,"
    "retweet_count,text,tweet_coord,tweet_created,tweet_location,user_timezone\n"
)
AIRLINE_ROWS = (
    '11,negative,1.0,Late Flight,0.9,US Airways,,ann,,0,"@USAirways late\nagain",,'
    "2015-02-24 11:00:00 -0800,,\n"
    "12,positive,1.0,,,Delta,,bob,,0,@JetBlue thanks!,,2015-02-24 18:30:00 +0000,,\n"
    "11,neutral,0.5,,,US Airways,,ann,,0,@USAirways late again,,2015-02-24 11:00:00 -0800,,\n"
)


def test_airline_exact_records(tmp_path: Path) -> None:
    (tmp_path / "Tweets.csv").write_text(AIRLINE_HEADER + AIRLINE_ROWS, encoding="utf-8")
    assert list(airline.convert(tmp_path)) == [
        _mention(
            "tw:12",
            "2015-02-24T18:30:00.000Z",
            "@JetBlue thanks!",
            author=_author("bob"),
            brand="delta",
            url="https://twitter.com/bob/status/12",
            label="positive",
        ),
        _mention(
            "tw:11",
            "2015-02-24T19:00:00.000Z",  # -0800 converted to UTC
            "@USAirways late\nagain",  # quoted newline kept; the repeated id 11 dropped
            author=_author("ann"),
            brand="us_airways",
            url="https://twitter.com/ann/status/11",
            label="negative",
        ),
    ]


# --- twitter15 -------------------------------------------------------------------------

TREE_500 = """\
['ROOT', 'ROOT', '0.0']->['11', '500', '0.0']
['11', '500', '0.0']->['12', '500', '1.0']
['11', '500', '0.0']->['13', '510', '2.5']
['11', '500', '0.0']->['13', '510', '2.5']
['13', '510', '2.5']->['14', '510', '-3.0']
['12', '500', '1.0']->['15', '500', '0.5']
['11', '500', '0.0']->['16', '520', '90.0']
"""
# The ROOT is an older tweet (590); the source 600 appears as a child of it, even before
# the ROOT line.
TREE_600 = """\
['21', '590', '-10.0']->['22', '600', '0.0']
['ROOT', 'ROOT', '0.0']->['21', '590', '-10.0']
['21', '590', '-10.0']->['23', '600', '2.0']
"""


@pytest.fixture
def trees(tmp_path: Path) -> Path:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "500.txt").write_text(TREE_500, encoding="utf-8")
    (tmp_path / "tree" / "600.txt").write_text(TREE_600, encoding="utf-8")
    (tmp_path / "source_tweets_chunyuanY.tsv").write_text(
        "500\tbig news URL\tfalse\n600\tother news\ttrue\n", encoding="utf-8"
    )
    (tmp_path / "label.txt").write_text("false:500\ntrue:600\n", encoding="utf-8")
    return tmp_path


def _cascade_500(stamp: str) -> list[Record]:
    """Cascade 500 started at 2026-01-05T00:00Z; `stamp` is the date-hour prefix."""
    thread = {"thread_id": "tw:500"}
    return [
        _mention(
            "tw:500",
            f"{stamp}:00:00.000Z",
            "big news URL",
            author=_uid("11"),
            url="https://twitter.com/i/web/status/500",
        ),
        _mention(
            "tw:500:rt:1",
            f"{stamp}:01:00.000Z",
            "RT @u11: big news URL",
            author=_uid("12"),
            repost_of="tw:500",
            **thread,
        ),
        _mention(  # retweeted through 12 at 0.5 min: never before its parent
            "tw:500:rt:2",
            f"{stamp}:01:00.000Z",
            "RT @u11: big news URL",
            author=_uid("15"),
            repost_of="tw:500",
            **thread,
        ),
        _mention(  # a reply: its own tweet id, no text in the data; the duplicate edge dropped
            "tw:500:510",
            f"{stamp}:02:30.000Z",
            "",
            author=_uid("13"),
            reply_to="tw:500",
            url="https://twitter.com/i/web/status/510",
            **thread,
        ),
        _mention(  # a retweet of the reply, negative delay clamped
            "tw:500:rt:3",
            f"{stamp}:02:30.000Z",
            "RT @u13: ",
            author=_uid("14"),
            repost_of="tw:500:510",
            **thread,
        ),
    ]


def test_twitter15_one_cascade_exact(trees: Path) -> None:
    late_reply = _mention(
        "tw:500:520",
        "2026-01-05T01:30:00.000Z",
        "",
        author=_uid("16"),
        thread_id="tw:500",
        reply_to="tw:500",
        url="https://twitter.com/i/web/status/520",
    )
    expected = _cascade_500("2026-01-05T00")
    assert twitter15.convert_cascade(trees, "500", start=T0) == [*expected, late_reply]
    assert twitter15.convert_cascade(trees, "500", start=T0, horizon_minutes=60) == expected


def test_twitter15_merges_cascades_by_time(trees: Path) -> None:
    records = list(twitter15.convert(trees, start_times={"500": T0, "600": T0 + 300}))
    assert [(r["id"], r["created_at"]) for r in records] == [
        ("tw:500", "2026-01-05T00:00:00.000Z"),
        ("tw:500:rt:1", "2026-01-05T00:01:00.000Z"),
        ("tw:500:rt:2", "2026-01-05T00:01:00.000Z"),
        ("tw:500:510", "2026-01-05T00:02:30.000Z"),
        ("tw:500:rt:3", "2026-01-05T00:02:30.000Z"),
        ("tw:600:590", "2026-01-05T00:05:00.000Z"),  # the older ROOT starts the thread
        ("tw:600", "2026-01-05T00:15:00.000Z"),  # the source, 10 min after it
        ("tw:600:rt:1", "2026-01-05T00:17:00.000Z"),
        ("tw:500:520", "2026-01-05T01:30:00.000Z"),
    ]
    by_id = {r["id"]: r for r in records}
    assert by_id["tw:600"]["text"] == "other news"
    assert by_id["tw:600"]["reply_to"] == "tw:600:590"
    assert by_id["tw:600:590"]["text"] == ""
    assert by_id["tw:600:rt:1"]["repost_of"] == "tw:600"
    assert by_id["tw:600:rt:1"]["text"] == "RT @u22: other news"


def test_twitter15_real_start_and_selection(trees: Path) -> None:
    records = list(twitter15.convert(trees, only=["600"], brand="acme"))
    assert [r["id"] for r in records] == ["tw:600:590", "tw:600", "tw:600:rt:1"]
    assert {r["brand"] for r in records} == {"acme"}
    # Default start: the source's snowflake time, moved back by the older ROOT's 10 minutes.
    root_time = snowflake_seconds("600") - 600
    assert records[0]["created_at"] == "2010-11-04T01:32:54.657Z"  # 600 >> 22 == 0: the epoch
    assert twitter15.list_cascades(trees)[1].start == pytest.approx(root_time)
    with pytest.raises(ValueError, match="700"):
        list(twitter15.convert(trees, only=["700"]))


def test_twitter15_list_cascades(trees: Path) -> None:
    first, second = twitter15.list_cascades(trees, horizon_minutes=60)
    assert first == twitter15.CascadeInfo(
        source_id="500",
        root_id="tw:500",
        label="false",
        text="big news URL",
        start=snowflake_seconds("500"),
        size=5,
        retweets=3,
        replies=1,
        last_minute=2.5,
    )
    assert (second.root_id, second.label, second.size, second.retweets) == (
        "tw:600:590",
        "true",
        3,
        1,
    )
    assert second.last_minute == pytest.approx(12.0)


# --- twcs --------------------------------------------------------------------------------

# pandas re-save layout: leading index column, parent ids as floats; tweet 6 has an unquoted
# newline in its text, which splits its row in two.
TWCS_HEAD = """\
,tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id
0,1,sprintcare,False,Tue Oct 31 22:10:47 +0000 2017,@115712 I understand.,2,3.0
1,2,115712,True,Tue Oct 31 22:11:45 +0000 2017,@sprintcare and how?,,1.0
2,3,115712,True,Tue Oct 31 22:08:27 +0000 2017,@sprintcare no answer,1,4.0
3,4,115712,True,Tue Oct 31 21:45:10 +0000 2017,@sprintcare is it down?,3,
4,5,115799,True,Wed Nov 01 08:00:00 +0000 2017,"@AmazonHelp where is
my parcel",,
5,6,115800,True,Wed Nov 01 09:00:00 +0000 2017,@AmazonHelp first line
second line,7,
6,7,AmazonHelp,False,Wed Nov 01 09:05:00 +0000 2017,@115800 Sorry! DM us.,,6.0
"""
# Kaggle's own layout; the parent 99 is not in the data.
TWCS_SAMPLE = """\
tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id
8,115900,True,Thu Nov 02 10:00:00 +0000 2017,@ChaseSupport hello?,,99
"""


def test_twcs_exact_records(tmp_path: Path) -> None:
    (tmp_path / "head.csv").write_text(TWCS_HEAD, encoding="utf-8")
    (tmp_path / "sample.csv").write_text(TWCS_SAMPLE, encoding="utf-8")
    sprint, amazon = {"brand": "sprintcare"}, {"brand": "amazonhelp"}
    customer = _author("115712")
    assert list(twcs.convert(tmp_path)) == [
        _mention("tw:4", "2017-10-31T21:45:10.000Z", "@sprintcare is it down?",
                 author=customer, **sprint),
        _mention("tw:3", "2017-10-31T22:08:27.000Z", "@sprintcare no answer",
                 author=customer, reply_to="tw:4", **sprint),
        _mention("tw:1", "2017-10-31T22:10:47.000Z", "@115712 I understand.",
                 author=_author("sprintcare"), reply_to="tw:3", **sprint),
        _mention("tw:2", "2017-10-31T22:11:45.000Z", "@sprintcare and how?",
                 author=customer, reply_to="tw:1", **sprint),
        # Nobody answers: the brand comes from the @-mention of a known company account.
        _mention("tw:5", "2017-11-01T08:00:00.000Z", "@AmazonHelp where is\nmy parcel",
                 author=_author("115799"), **amazon),
        _mention("tw:6", "2017-11-01T09:00:00.000Z", "@AmazonHelp first line\nsecond line",
                 author=_author("115800"), **amazon),
        _mention("tw:7", "2017-11-01T09:05:00.000Z", "@115800 Sorry! DM us.",
                 author=_author("AmazonHelp"), reply_to="tw:6", **amazon),
        _mention("tw:8", "2017-11-02T10:00:00.000Z", "@ChaseSupport hello?",
                 author=_author("115900"), reply_to="tw:99"),
    ]  # fmt: skip


# --- pheme -------------------------------------------------------------------------------

PHEME_TRAINDEV = {
    "structures.json": {"100": {"100": {"101": {"103": []}, "102": [], "104": {"105": []}},
                                "106": []}},
    "posts.json": {"100": {"time": 1400000000.0, "text": "breaking"},
                   "101": {"time": 1400000060.0, "text": "@a source?"},
                   "102": {"time": 1400000100.0, "text": "@a wow"},
                   "103": {"time": 1400000200.0, "text": "@b none"},
                   "105": {"time": 1400000300.0, "text": "@c gone"},
                   "106": {"time": 1400000250.0, "text": "@a top"}},
}  # fmt: skip
PHEME_TEST = {
    "structures.json": {"200": {"200": {"201": []}}},
    "posts.json": {"200": {"time": 1399990000, "text": "earlier"},
                   "201": {"time": 1399990050, "text": "@z reply"}},
}  # fmt: skip


def test_pheme_exact_records(tmp_path: Path) -> None:
    for split, files in (("traindev", PHEME_TRAINDEV), ("test", PHEME_TEST)):
        (tmp_path / split).mkdir()
        for name, content in files.items():
            (tmp_path / split / name).write_bytes(orjson.dumps(content))
    assert list(pheme.convert(tmp_path)) == [
        _mention("tw:200", "2014-05-13T14:06:40.000Z", "earlier"),
        _mention("tw:201", "2014-05-13T14:07:30.000Z", "@z reply", reply_to="tw:200"),
        _mention("tw:100", "2014-05-13T16:53:20.000Z", "breaking"),
        _mention("tw:101", "2014-05-13T16:54:20.000Z", "@a source?", reply_to="tw:100"),
        _mention("tw:102", "2014-05-13T16:55:00.000Z", "@a wow", reply_to="tw:100"),
        _mention("tw:103", "2014-05-13T16:56:40.000Z", "@b none", reply_to="tw:101"),
        # Hung next to the root: no parent known, so the thread id links it.
        _mention("tw:106", "2014-05-13T16:57:30.000Z", "@a top", thread_id="tw:100"),
        # Its parent 104 was deleted: the link stays, and the thread id keeps it resolvable.
        _mention("tw:105", "2014-05-13T16:58:20.000Z", "@c gone", reply_to="tw:104",
                 thread_id="tw:100"),
    ]  # fmt: skip
    assert [r["id"] for r in pheme.convert(tmp_path / "test")] == ["tw:200", "tw:201"]


def test_pheme_threads_moved_to_chosen_starts_and_cut_at_a_horizon(tmp_path: Path) -> None:
    for split, files in (("traindev", PHEME_TRAINDEV), ("test", PHEME_TEST)):
        (tmp_path / split).mkdir()
        for name, content in files.items():
            (tmp_path / split / name).write_bytes(orjson.dumps(content))
    assert pheme.thread_ids(tmp_path) == ["100", "200"]
    # Thread 100 moved to an hour before thread 200 (it really starts ~3 h after it), kept
    # for 3 minutes after its root: 103 (+200 s), 106 (+250 s) and 105 (+300 s) are cut.
    moved = list(pheme.convert(tmp_path, {"100": 1399986400.0}, horizon_minutes=3.0))
    assert [(r["id"], r["created_at"]) for r in moved] == [
        ("tw:100", "2014-05-13T13:06:40.000Z"),
        ("tw:101", "2014-05-13T13:07:40.000Z"),
        ("tw:102", "2014-05-13T13:08:20.000Z"),
        ("tw:200", "2014-05-13T14:06:40.000Z"),  # not in start_times: its real time
        ("tw:201", "2014-05-13T14:07:30.000Z"),
    ]
    only = pheme.convert(tmp_path, {"200": 1400000000.0}, only=["200"])
    assert [(r["id"], r["created_at"]) for r in only] == [
        ("tw:200", "2014-05-13T16:53:20.000Z"),
        ("tw:201", "2014-05-13T16:54:10.000Z"),
    ]


def _check_stream(records: list[Record]) -> None:
    """Sorted by time, ids unique."""
    stamps = [str(r["created_at"]) for r in records]
    assert stamps == sorted(stamps)
    assert len({r["id"] for r in records}) == len(records)


# --- command -----------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_convert_command(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_convert_command_writes_jsonl(trees: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["convert", "twitter15", str(trees), "-o", str(out), "--horizon-minutes", "60"]
    assert _run_cli(argv) == 0
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    _check_stream(records)  # real starts: cascade 600's older root comes first
    assert [r["id"] for r in records][:2] == ["tw:600:590", "tw:500"]
    assert len(records) == 8
    assert _run_cli(["convert", "airline", str(tmp_path / "missing")]) == 2


def test_convert_says_how_many_repeated_airline_rows_it_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Tweets.csv").write_text(AIRLINE_HEADER + AIRLINE_ROWS, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert _run_cli(["convert", "airline", str(tmp_path), "-o", str(out)]) == 0
    assert len(out.read_bytes().splitlines()) == 2  # ids 11 and 12
    assert capsys.readouterr().err == (
        "watchtower convert: left out 1 row repeating an earlier row's tweet id "
        "(the first row of each id is kept)\n"
        f"wrote 2 mentions to {out}\n"
    )


def test_a_folder_of_another_dataset_is_an_error_not_zero_mentions(
    trees: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = trees / "out.jsonl"
    assert _run_cli(["convert", "pheme", str(trees), "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower convert: {trees} does not look like PHEME/RumourEval 2017 reply threads: "
        "it gave no mentions\n"
    )
    assert not out.exists()  # no empty output left behind
    assert _run_cli(["convert", "airline", str(trees)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower convert: {trees}: no Tweets.csv in it, not the airline dataset's folder\n"
    )


@pytest.mark.parametrize(
    ("dataset", "text", "error"),
    [
        ("twcs", AIRLINE_HEADER + AIRLINE_ROWS, ": not a twcs CSV: its columns are not tweet_id, "),
        ("airline", TWCS_SAMPLE, ": not Tweets.csv of Twitter US Airline Sentiment: no column "
                                 "airline_sentiment, airline, name, tweet_created"),
        ("twcs", TWCS_SAMPLE.replace("Thu Nov 02 10:00:00 +0000 2017", "yesterday"),
         " line 2: not a twcs row: time data 'yesterday' does not match format"),
        ("airline", AIRLINE_HEADER + AIRLINE_ROWS.replace("2015-02-24 18:30:00 +0000", "noon"),
         " line 4: tweet_created 'noon' is not a time like '2015-02-24 11:35:52 -0800'"),
    ],
)  # fmt: skip
def test_a_file_of_another_dataset_is_an_error_naming_what_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str, text: str, error: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert _run_cli(["convert", dataset, str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"watchtower convert: {path}{error}")


# --- the real data (../shared/data), when present ---------------------------------------

realdata = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is absent")


@pytest.mark.realdata
@realdata
@pytest.mark.parametrize(
    ("dataset", "folder"), [("pheme", "twitter15"), ("twcs", "airline"), ("twitter15", "twcs")]
)
def test_real_data_of_another_dataset_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], dataset: str, folder: str
) -> None:
    assert _run_cli(["convert", dataset, str(DATA / folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"watchtower convert: {DATA / folder}")
    assert err.count("\n") == 1


@pytest.mark.realdata
@realdata
def test_real_airline_says_it_left_out_the_repeated_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_cli(["convert", "airline", str(DATA / "airline"), "-o", str(tmp_path / "a")]) == 0
    assert "left out 114 rows repeating an earlier row's tweet id" in capsys.readouterr().err


@pytest.mark.realdata
@realdata
def test_real_airline() -> None:
    records = list(airline.convert(DATA / "airline"))
    _check_stream(records)
    assert len(records) == 10_101  # the 10,215 rows of this split, 114 repeated ids dropped
    brands = Counter(r["brand"] for r in records)
    assert set(brands) == {"united", "us_airways", "american", "southwest", "delta",
                           "virgin_america"}  # fmt: skip
    assert set(Counter(r["label"] for r in records)) == {"negative", "neutral", "positive"}
    # PROVENANCE's span, 2015-02-16 23:36:05 -0800 .. 2015-02-24 11:53:37 -0800, in UTC.
    assert str(records[0]["created_at"]) >= "2015-02-17T07:36:05.000Z"
    assert str(records[-1]["created_at"]) <= "2015-02-24T19:53:37.000Z"


@pytest.mark.realdata
@realdata
def test_real_twitter15() -> None:
    folder = DATA / "twitter15"
    infos = twitter15.list_cascades(folder)
    assert len(infos) == 1490
    labels = Counter(info.label for info in infos)
    assert labels == {"non-rumor": 374, "false": 370, "true": 372, "unverified": 374}
    total = sum(info.size for info in infos)
    # 622,968 edges + 1,490 roots, less repeated edges and nodes listed under two parents.
    assert total == 599_196
    assert sum(info.retweets for info in infos) / total > 0.85  # PROVENANCE: ~88% of edges
    assert all(info.text for info in infos)
    first_hour = list(twitter15.convert(folder, horizon_minutes=60, only=["265953285247209472"]))
    assert first_hour[0]["created_at"] == "2012-11-06T23:06:19.033Z"  # PROVENANCE's example
    assert len(first_hour) == 1 + sum(
        1 for r in first_hour if r["thread_id"] == "tw:265953285247209472"
    )


@pytest.mark.realdata
@realdata
def test_real_twitter15_stream_is_sorted_and_linked() -> None:
    records = list(twitter15.convert(DATA / "twitter15", horizon_minutes=24 * 60))
    _check_stream(records)
    seen: set[object] = set()
    for record in records:
        for name in ("thread_id", "reply_to", "repost_of"):
            assert record[name] is None or record[name] in seen
        seen.add(record["id"])


@pytest.mark.realdata
@realdata
def test_real_twcs() -> None:
    folder = DATA / "twcs"
    head = list(twcs.read_tweets(folder / "twcs_head_monalisapatra26.csv"))
    assert len(head) == 5_000  # 5,001 rows in PROVENANCE, one a spilled text fragment
    assert sum(tweet.inbound for tweet in head) == 2_778
    assert len({tweet.author_id for tweet in head if not tweet.inbound}) == 76
    # PROVENANCE counts 1,307 roots: the spilled fragment was one more row without a parent.
    assert sum(1 for tweet in head if tweet.parent_id is None) == 1_306
    records = list(twcs.convert(folder))
    _check_stream(records)
    assert len(records) == 5_000 + 93
    assert all(r["brand"] for r in records)


@pytest.mark.realdata
@realdata
def test_real_pheme() -> None:
    records = list(pheme.convert(DATA / "pheme_rumoureval2017"))
    _check_stream(records)
    assert len(records) == 4_519 + 1_049
    roots = [r for r in records if r["reply_to"] is None and r["thread_id"] is None]
    assert len(roots) == 297 + 28
