"""The backtest's definitions on tiny hand-made threads, the rules with known answers, and a
small run on the real cascades when ../shared/data is there."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from test_convert import AIRLINE_HEADER, AIRLINE_ROWS
from watchtower.backtest import add_backtest_command
from watchtower.backtest.metrics import Outcome, figures, figures_grid, outcomes
from watchtower.backtest.rules import best, frequency_first, grid_search, spike_first
from watchtower.backtest.stream import (
    WINDOW,
    WINDOW_START,
    StreamSpec,
    Truth,
    big_threshold,
    cascade_layout,
    cascade_starts,
    fold_into_window,
    mentions,
    t_half,
)
from watchtower.cli import main
from watchtower.convert import pheme

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INF = math.inf


def stream_truth() -> dict[str, Outcome]:
    """Three big threads (caught early, caught late, missed) and two small ones."""
    return {
        "early": Outcome(size=90, t_half=1000.0, big=True),
        "late": Outcome(size=80, t_half=2000.0, big=True),
        "missed": Outcome(size=85, t_half=3000.0, big=True),
        "noisy": Outcome(size=10, t_half=500.0, big=False),
        "quiet": Outcome(size=3, t_half=100.0, big=False),
    }


def test_precision_early_recall_f1_and_lead_follow_the_issue() -> None:
    first = {"early": 1000.0 - 30 * 60, "late": 2000.0, "noisy": 400.0}
    f = figures(stream_truth(), first)
    assert f.precision == pytest.approx(2 / 3)  # early, late are big; noisy is not
    assert f.early_recall == pytest.approx(1 / 3)  # an alert at t_half is not early
    assert f.f1 == pytest.approx(2 * (2 / 3) * (1 / 3) / (2 / 3 + 1 / 3))
    assert f.median_lead == pytest.approx(30.0)  # minutes, over the early-caught only
    assert (f.alerted, f.big, f.early) == (3, 3, 1)


def test_no_alert_at_all_scores_zero_and_has_no_lead() -> None:
    f = figures(stream_truth(), {})
    assert (f.precision, f.early_recall, f.f1) == (0.0, 0.0, 0.0)
    assert math.isnan(f.median_lead)
    alerts_on_unknown_threads = figures(stream_truth(), {"storm:acme": 5.0})
    assert alerts_on_unknown_threads.alerted == 0  # brand storms are not threads


def test_the_vectorised_figures_agree_with_the_definition() -> None:
    truth = stream_truth()
    names = sorted(truth)
    detectors = [
        {"early": 100.0, "late": 1900.0, "noisy": 400.0},
        {"missed": 2990.0},
        {},
    ]
    first = np.array([[d.get(n, INF) for d in detectors] for n in names])
    big = np.array([truth[n].big for n in names])
    half = np.array([truth[n].t_half for n in names])
    for one, many in zip(
        (figures(truth, d) for d in detectors), figures_grid(first, big, half), strict=True
    ):
        assert many.precision == pytest.approx(one.precision)
        assert many.early_recall == pytest.approx(one.early_recall)
        assert many.f1 == pytest.approx(one.f1)
        assert (many.alerted, many.big, many.early) == (one.alerted, one.big, one.early)
        assert (math.isnan(many.median_lead) and math.isnan(one.median_lead)) or (
            many.median_lead == pytest.approx(one.median_lead)
        )


def test_t_half_is_when_half_the_final_size_was_reached() -> None:
    assert t_half([30.0, 0.0, 20.0, 10.0]) == 10.0  # 2nd of 4
    assert t_half([0.0, 10.0, 20.0]) == 10.0  # 2nd of 3 (ceil of 1.5)
    assert t_half([5.0]) == 5.0


def test_big_threshold_is_the_interpolated_80th_percentile() -> None:
    sizes = [7, 1, 10, 3, 5, 9, 2, 4, 8, 6]
    assert big_threshold(sizes) == pytest.approx(8.2)
    assert big_threshold(sizes) == pytest.approx(float(np.percentile(sizes, 80)))


def test_only_cascades_can_be_big() -> None:
    truth = Truth(cascades={"c1", "c2", "c3", "c4", "c5"})
    for i, size in enumerate((10, 20, 30, 40, 50), start=1):
        for k in range(size):
            truth.add(f"c{i}", 100.0 * i + k)
    for k in range(60):  # a background thread bigger than every cascade
        truth.add("bg", float(k))
    found, threshold = outcomes(truth)
    assert threshold == pytest.approx(42.0)  # of the cascades only
    assert [t for t, o in found.items() if o.big] == ["c5"]
    assert found["c5"].t_half == 500.0 + 24  # its 25th mention


def test_frequency_rule_fires_at_the_kth_mention_within_the_window() -> None:
    times = np.array([0.0, 60.0, 120.0, 130.0, 140.0])
    # windows are (t - 60, t]: the mention exactly 60 s earlier is out
    first = frequency_first(times, 60.0, np.array([1, 2, 3, 4]))
    assert first.tolist() == [0.0, 130.0, 140.0, INF]


def test_spike_rule_needs_its_baseline_unless_new_data_may_alert() -> None:
    times = np.array([0.0, 10.0, 20.0, 600.0, 605.0, 610.0, 615.0])
    cs = np.array([3, 4, 5])
    # current (t - 60, t] against previous (t - 120, t - 60]: 0 before the late burst
    assert spike_first(times, 60.0, 2.0, cs, new_data=False).tolist() == [610.0, 615.0, INF]
    assert spike_first(times, 60.0, 2.0, cs, new_data=True).tolist() == [20.0, 615.0, INF]


def test_spike_rule_ignores_a_steady_thread() -> None:
    steady = np.arange(0.0, 1200.0, 10.0)  # 6 a minute for 20 minutes
    assert spike_first(steady, 60.0, 2.0, np.array([3]), new_data=False).tolist() == [INF]
    assert frequency_first(steady, 60.0, np.array([6])).tolist() == [50.0]


def test_grid_search_finds_the_rule_that_separates_big_from_small() -> None:
    fast = [np.arange(0.0, 600.0, 6.0) + 1000.0 * i for i in range(3)]  # 100 in 10 min
    slow = [np.arange(0.0, 6000.0, 300.0) + 1000.0 * i for i in range(3)]  # 20 in 100 min
    threads = fast + slow
    big = np.array([True] * 3 + [False] * 3)
    half = np.array([t[len(t) // 2 - 1] for t in threads])
    points = grid_search(threads, big, half)
    top, spike = best(points, "frequency"), best(points, "spike")
    assert top is not None
    assert spike is not None
    assert top.figures.f1 == 1.0
    assert top.figures.median_lead > 0
    assert spike.figures.precision == 1.0
    assert best(points, "frequency", min_lead=1e6) is None  # nothing that early


def test_cascade_starts_are_seeded_and_fall_in_the_window() -> None:
    ids = [str(i) for i in range(50, 0, -1)]
    one, again, other = (cascade_starts(ids, s) for s in (7, 7, 8))
    assert one == again != other
    assert all(WINDOW_START <= at < WINDOW_START + WINDOW for at in one.values())
    assert list(cascade_starts(ids, 7, limit=3)) == ["1", "10", "11"]  # source-id order
    assert cascade_starts(ids, 7, limit=3)["1"] == one["1"]  # a limit keeps the same draws


def test_background_keeps_its_time_of_day() -> None:
    at = WINDOW_START + 3 * 86400 + 5 * 3600 + 17.5  # three days later, 05:00:17.5
    assert fold_into_window(at) == WINDOW_START + 5 * 3600 + 17.5
    assert fold_into_window(WINDOW_START - 60) == WINDOW_START + WINDOW - 60


def test_reply_threads_are_whole_in_the_truth(tmp_path: Path) -> None:
    """PHEME replies carry only reply_to: the truth follows the chain to the root, so a thread
    is one cascade with every reply in it, and each cascade starts within the window."""
    folder = tmp_path / "replies"
    folder.mkdir()
    structures = {"1": {"1": {"2": {"3": []}, "4": []}}, "9": {"9": {"8": []}}}
    posts = {"1": 1.4e9, "2": 1.4e9 + 60, "3": 1.4e9 + 90, "4": 1.4e9 + 600, "9": 1.3e9,
             "8": 1.3e9 + 49 * 3600}  # fmt: skip
    (folder / "structures.json").write_bytes(orjson.dumps(structures))
    posts_json = {k: {"time": t, "text": f"post {k}"} for k, t in posts.items()}
    (folder / "posts.json").write_bytes(orjson.dumps(posts_json))
    assert cascade_layout(folder) == "pheme"
    truth = Truth()
    spec = StreamSpec(data=tmp_path, cascades=folder, background=False)
    fed = list(mentions(spec, truth))
    assert truth.cascades == {"tw:1", "tw:9"}
    assert sorted(len(ts) for ts in truth.times.values()) == [1, 4]  # "8" is past 48 h
    start = min(truth.times["tw:1"])
    assert WINDOW_START <= start < WINDOW_START + WINDOW
    assert sorted(truth.times["tw:1"]) == [start, start + 60, start + 90, start + 600]
    assert [m.created_at for m in fed] == sorted(m.created_at for m in fed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a Twitter15-layout folder"):
        cascade_layout(tmp_path / "empty")
    with pytest.raises(ValueError, match="no such file or folder"):
        cascade_layout(tmp_path / "nothing")


def test_a_mentions_file_is_a_cascade_a_thread(tmp_path: Path) -> None:
    """Watchtower's own input format: threads by thread_id or by the reply chain, each moved
    into the window and cut at 48 h; a bad line is left out and said, not fatal."""
    day = 86400.0
    lines = [
        {"id": "a", "created_at": 1.0e9, "text": "root a"},
        {"id": "a1", "created_at": 1.0e9 + 30, "text": "", "reply_to": "a"},
        {"id": "a2", "created_at": 1.0e9 + 90, "text": "", "reply_to": "a1"},  # a chain
        {"id": "a3", "created_at": 1.0e9 + 3 * day, "text": "", "thread_id": "a"},  # past 48 h
        {"id": "b", "created_at": 1.5e9, "text": "root b"},
        {"id": "b1", "created_at": 1.5e9 + 60, "text": "", "thread_id": "b"},
        # replies to a post not in the file: one thread under it, as the engine has them
        {"id": "d1", "created_at": 1.6e9, "text": "", "reply_to": "gone"},
        {"id": "d2", "created_at": 1.6e9 + 5, "text": "", "reply_to": "gone"},
    ]
    path = tmp_path / "cascades.jsonl"
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    path.write_bytes(body + b'{"id": "c", "created_at": "soon", "text": ""}\n')
    assert cascade_layout(path) == "mentions"
    truth = Truth()
    fed = list(mentions(StreamSpec(data=tmp_path, cascades=path, background=False), truth))
    assert truth.cascades == {"a", "b", "gone"}
    assert len(truth.times["gone"]) == 2
    start = min(truth.times["a"])
    assert sorted(truth.times["a"]) == [start, start + 30, start + 90]
    assert WINDOW_START <= start < WINDOW_START + WINDOW
    assert len(truth.times["b"]) == 2
    assert [m.created_at for m in fed] == sorted(m.created_at for m in fed)
    assert len(truth.rejected) == 1
    assert truth.rejected[0].startswith("line 9: created_at")


def test_stretch_slows_each_cascade_from_its_source_and_cuts_at_48_hours(tmp_path: Path) -> None:
    hour = 3600.0
    lines = [
        {"id": "a", "created_at": 1.0e9, "text": "root a"},
        {"id": "a1", "created_at": 1.0e9 + 30, "text": "", "reply_to": "a"},
        {"id": "a2", "created_at": 1.0e9 + 90, "text": "", "reply_to": "a1"},
        {"id": "a3", "created_at": 1.0e9 + 30 * hour, "text": "", "thread_id": "a"},
        {"id": "a4", "created_at": 1.0e9 + 72 * hour, "text": "", "thread_id": "a"},
        {"id": "b", "created_at": 1.0e9 + 50, "text": "root b"},
        {"id": "b1", "created_at": 1.0e9 + 100, "text": "", "thread_id": "b"},
    ]
    path = tmp_path / "cascades.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))

    def ages(stretch: float) -> dict[str, list[float]]:
        truth = Truth()
        spec = StreamSpec(data=tmp_path, cascades=path, background=False, stretch=stretch)
        fed = list(mentions(spec, truth))
        assert [m.created_at for m in fed] == sorted(m.created_at for m in fed)
        starts.append({t: min(times) for t, times in truth.times.items()})
        return {t: [at - min(times) for at in sorted(times)] for t, times in truth.times.items()}

    starts: list[dict[str, float]] = []

    assert ages(1.0) == {"a": [0.0, 30.0, 90.0, 30 * hour], "b": [0.0, 50.0]}
    assert ages(2.0) == {"a": [0.0, 60.0, 180.0], "b": [0.0, 100.0]}  # 30 h became 60: cut
    assert ages(0.5) == {"a": [0.0, 15.0, 45.0, 15 * hour, 36 * hour], "b": [0.0, 25.0]}
    assert starts[0] == starts[1] == starts[2]  # each cascade still starts where it was drawn


def test_keep_thins_replies_but_never_roots_or_breaks_a_chain(tmp_path: Path) -> None:
    folder = tmp_path / "replies"
    folder.mkdir()
    chain: dict[str, object] = {}
    for k in range(11, 1, -1):  # 1 <- 2 <- 3 ... <- 11: a reply chain ten deep
        chain = {str(k): chain}
    direct: dict[str, object] = {str(100 + k): [] for k in range(400)}  # and 400 replies to 1
    structures = {"1": {"1": {**chain, **direct}}}
    ids = ["1", *[str(k) for k in range(2, 12)], *direct]
    posts = {k: {"time": 1.4e9 + i, "text": "x"} for i, k in enumerate(ids)}
    (folder / "structures.json").write_bytes(orjson.dumps(structures))
    (folder / "posts.json").write_bytes(orjson.dumps(posts))
    spec = StreamSpec(data=tmp_path, cascades=folder, background=False, keep=0.5)
    fed = list(mentions(spec, Truth()))
    kept = {m.id for m in fed}
    assert "tw:1" in kept  # the root always
    for m in fed:
        assert m.parent is None or m.parent in kept  # no reply without its parent
    assert 150 <= sum(m.parent == "tw:1" for m in fed) <= 250  # about half of 401
    assert fed == list(mentions(spec, Truth()))  # seeded


@pytest.mark.realdata
def test_backtest_on_a_few_real_cascades(tmp_path: Path) -> None:
    if not (DATA / "twitter15").is_dir() or not (DATA / "airline").is_dir():
        pytest.skip(f"no shared data at {DATA}")
    parser = argparse.ArgumentParser()
    add_backtest_command(parser.add_subparsers())
    out = tmp_path / "bt.json"
    args = parser.parse_args(["backtest", "--data", str(DATA), "--limit", "40", "--json", str(out)])
    assert args.func(args) == 0
    report = orjson.loads(out.read_bytes())
    assert report["cascades"] == 40
    assert report["watchtower"]["big"] == 8  # 80th percentile of 40 cascades
    for name in ("watchtower", "frequency", "spike"):
        figs = report[name]
        assert 0.0 <= figs["precision"] <= 1.0
        assert 0.0 <= figs["early_recall"] <= 1.0
    assert report["frequency"]["f1"] > 0.5  # grid-searched on the same 40 threads
    assert len(report["sweep"]) > 10


@pytest.mark.realdata
def test_backtest_on_real_reply_threads(tmp_path: Path) -> None:
    folder = DATA / "pheme_rumoureval2017"
    if not folder.is_dir() or not (DATA / "airline").is_dir():
        pytest.skip(f"no shared data at {DATA}")
    parser = argparse.ArgumentParser()
    add_backtest_command(parser.add_subparsers())
    out = tmp_path / "bt.json"
    argv = ["backtest", "--data", str(DATA), "--cascades", str(folder), "--limit", "60"]
    args = parser.parse_args([*argv, "--json", str(out)])
    assert args.func(args) == 0
    report = orjson.loads(out.read_bytes())
    assert report["cascades"] == 60
    assert report["watchtower"]["big"] == 12  # 80th percentile of 60 threads
    assert report["frequency"]["f1"] > 0.3  # the rules do find the bigger reply threads


@pytest.mark.realdata
def test_a_source_and_its_conversion_to_mentions_give_the_same_figures(tmp_path: Path) -> None:
    """PHEME read from its folder and from `watchtower convert pheme` output: one stream."""
    pheme_folder = DATA / "pheme_rumoureval2017"
    if not pheme_folder.is_dir() or not (DATA / "airline").is_dir():
        pytest.skip(f"no shared data at {DATA}")
    converted = tmp_path / "pheme.jsonl"
    converted.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in pheme.convert(pheme_folder)))
    parser = argparse.ArgumentParser()
    add_backtest_command(parser.add_subparsers())
    reports = []
    for source in (pheme_folder, converted):
        out = tmp_path / f"{source.name}.json"
        argv = ["backtest", "--data", str(DATA), "--cascades", str(source), "--limit", "60"]
        args = parser.parse_args([*argv, "--json", str(out)])
        assert args.func(args) == 0
        reports.append(orjson.loads(out.read_bytes()))
    folder_report, file_report = reports
    assert file_report["rejected"] == 0
    for key in ("cascades", "big_threshold", "watchtower", "frequency", "spike", "sweep"):
        assert file_report[key] == folder_report[key], key


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_below_one_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    assert main(["backtest", "--data", str(tmp_path), "--limit", limit]) == 2
    assert capsys.readouterr().err == (
        f"watchtower backtest: --limit must be 1 or more, got {limit}\n"
    )


def test_a_cascades_file_without_cascades_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "airline").mkdir()  # two background tweets: the run itself takes no time
    (tmp_path / "airline" / "Tweets.csv").write_text(AIRLINE_HEADER + AIRLINE_ROWS)
    cascades = tmp_path / "none.jsonl"
    cascades.write_text('{"id": "x", "text": "no time"}\n')
    assert main(["backtest", "--data", str(tmp_path), "--cascades", str(cascades)]) == 2
    assert capsys.readouterr().err == (
        f"watchtower: {cascades}: no cascades in it (1 records refused)\n"
    )
