"""monitoring/: the Grafana dashboard and the Prometheus rules query what the daemon exports.

A real daemon API (memory store, outbox with a working and a broken route) is driven over HTTP
until the series the files use exist; its /metrics is parsed with prometheus_client's parser and
every metric name and label in the dashboard's and the rules' PromQL is looked up in it. The
PromQL is read with regular expressions, not a parser: enough for what these files write, and
the checker's own tests below show it reports what it should.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from watchtower.config import (
    Config,
    DaemonConfig,
    HttpConfig,
    MomentumConfig,
    NotifyConfig,
    RouteConfig,
    ScoringConfig,
)
from watchtower.config_parse import Duration, Secret
from watchtower.daemon import Daemon
from watchtower.metrics import Metrics

from servers import AUTH, HOST, NDJSON, TOKEN, Receiver, daemon_api, free_port
from streams import burst, stream

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "prometheus-rules.yaml"
QUEUE = 64

# Labels Prometheus attaches to every scraped series; not in the exposition.
TARGET_LABELS = frozenset({"job", "instance"})
SKIPPED = frozenset({"up"})  # Prometheus' own series for each target
_FUNCTION_NAMES = (  # PromQL functions and aggregations; anything else before "(" is a typo
    "abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max "
    "clamp_min count count_over_time count_values delta deriv floor group histogram_quantile "
    "idelta increase irate label_join label_replace last_over_time max max_over_time min "
    "min_over_time predict_linear quantile quantile_over_time rate resets round scalar sort "
    "sort_desc stddev stdvar sum sum_over_time time timestamp topk vector"
)
FUNCTIONS = frozenset(_FUNCTION_NAMES.split())
KEYWORDS = frozenset({"and", "or", "unless", "bool", "inf", "nan"})
# Families with no series unless something fails inside the daemon: their labels are taken
# from the declaration in metrics.py instead of the exposition. Any other family the files use
# must have series after the scenario below.
DECLARED_ONLY = frozenset(  # a batch fails on an outage or a bug; a state is of another build
    {"watchtower_batch_failures", "watchtower_mentions_set_aside"}
)
# Families the dashboard leaves out on purpose; every other one must be on it.
NOT_ON_DASHBOARD = frozenset({"watchtower_idle_advances"})  # internal: event time moved on

_VARIABLE = re.compile(r"\$\{?\w+\}?")  # Grafana's $__rate_interval, $job, ${datasource}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_NUMBER = re.compile(r"(?<![\w:.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:])")
_NAME = re.compile(r"[A-Za-z_:][\w:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.+),\s*(\w+)\s*\)\s*$")


# --- reading PromQL ---------------------------------------------------------------------------


@dataclass
class Uses:
    """What one expression refers to: metrics, the labels each must carry, functions."""

    labels: dict[str, set[str]] = field(default_factory=dict)  # metric -> labels it needs
    functions: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def need(self, metrics: set[str], labels: set[str]) -> None:
        for metric in metrics:
            self.labels.setdefault(metric, set()).update(labels)


def names(fragment: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) in a cleaned fragment (no strings, ranges, selectors)."""
    text = _NUMBER.sub(" ", _CLAUSE.sub(" ", fragment))
    metrics: set[str] = set()
    functions: set[str] = set()
    for m in _NAME.finditer(text):
        word = m.group()
        if word.lower() in KEYWORDS:
            continue
        if text[m.end() :].lstrip().startswith("("):
            functions.add(word)
        else:
            metrics.add(word)
    return metrics, functions


def argument(text: str, start: int, end: int) -> str:
    """The parenthesised operand of the grouping clause at text[start:end], after it
    (``sum by (x) (arg)``) or before it (``sum (arg) by (x)``)."""
    before = text[:start].rstrip()
    if before.endswith(")"):
        close, step, opening = len(before) - 1, -1, ")"
    else:
        close, step, opening = text.index("(", end), 1, "("
    depth, i = 0, close
    while True:
        depth += 1 if text[i] == opening else -1 if text[i] in "()" else 0
        if depth == 0:
            return text[min(i, close) : max(i, close) + 1]
        i += step


def clean(expr: str) -> str:
    """Grafana variables to a number, strings emptied, range and offset durations dropped."""
    text = _STRING.sub('""', _VARIABLE.sub("1", expr))
    return _OFFSET.sub(" ", _RANGE.sub(" ", text))


def uses(expr: str) -> Uses:
    found = Uses()
    text = clean(expr)
    for m in _SELECTOR.finditer(text):
        if m.group(1) is None:
            found.problems.append(f"a selector without a metric name in {expr!r}")
            continue
        found.need({m.group(1)}, set(_MATCHER.findall(m.group(2))))
    text = _SELECTOR.sub(lambda m: m.group(1) or " ", text)
    every, found.functions = names(text)
    found.need(every, set())
    for m in _CLAUSE.finditer(text):
        labels = {label.strip() for label in m.group(2).split(",") if label.strip()}
        if m.group(1) in ("by", "without"):
            inside, _ = names(argument(text, m.start(), m.end()))
            found.need(inside, labels)
        else:  # on / ignoring / group_*: matched on both sides, so every metric needs them
            found.need(every, labels)
    return found


def template_uses(query: str) -> Uses:
    """A Grafana variable query: ``label_values(selector, label)``."""
    m = _LABEL_VALUES.match(query)
    if m is None:
        return Uses(problems=[f"variable query not understood: {query!r}"])
    found = uses(m.group(1))
    found.need(set(found.labels), {m.group(2)})
    return found


# --- the files --------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> Iterator[tuple[str, Uses]]:
    """(where, what it uses) for every query in the dashboard and the rules."""
    for panel in panels():
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", uses(target["expr"])
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']}", template_uses(variable["query"]["query"])
    for rule in rules():
        yield f"rule {rule['alert']}", uses(rule["expr"])


# --- the exposition ---------------------------------------------------------------------------

Series = dict[str, set[str] | None]  # series name -> its labels; None: the family has no series
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def declared(metrics: Metrics) -> dict[str, set[str]]:
    """The label names each metric is declared with in metrics.py."""
    found = vars(metrics).values()
    return {m._name: set(m._labelnames) for m in found if isinstance(m, MetricWrapperBase)}


def exposed(text: str, declaration: dict[str, set[str]]) -> Series:
    """Every series name a query may use (``_total`` for counters, ``_bucket``/``_sum``/
    ``_count`` for histograms) with the labels the exposition shows on it."""
    series: Series = {}
    for family in text_string_to_metric_families(text):
        labels: set[str] | None = {k for s in family.samples for k in s.labels} - {"le"}
        if not family.samples:
            labels = declaration[family.name] if family.name in DECLARED_ONLY else None
        for suffix in _SUFFIXES.get(family.type, ("",)):
            if suffix == "_bucket" and labels is not None:
                series[family.name + suffix] = labels | {"le"}
            else:
                series[family.name + suffix] = labels
    return series


def problems(where: str, found: Uses, series: Series) -> list[str]:
    out = [f"{where}: {p}" for p in found.problems]
    out += [f"{where}: unknown function {f}()" for f in sorted(found.functions - FUNCTIONS)]
    for metric, labels in sorted(found.labels.items()):
        if metric in SKIPPED:
            continue
        if metric not in series:
            out.append(f"{where}: no metric {metric} in /metrics")
        elif (have := series[metric]) is None:
            out.append(f"{where}: {metric} has no series: the scenario does not exercise it")
        elif missing := labels - have - TARGET_LABELS:
            out.append(f"{where}: {metric} has no label {', '.join(sorted(missing))}")
    return out


# --- the checker on its own -------------------------------------------------------------------


def small_exposition() -> Series:
    metrics = Metrics()
    metrics.mentions_received.labels("http").inc()
    metrics.notifications_pending.labels("chat").set(1)
    return exposed(generate_latest(metrics.registry).decode(), declared(metrics))


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("rate(watchtower_mentions_recieved_total[5m])", "no metric watchtower_mentions_recie"),
        ("rate(watchtower_mentions_received[5m])", "no metric watchtower_mentions_received"),
        ('watchtower_mentions_received_total{route="x"}', "has no label route"),
        ("sum by (reason) (rate(watchtower_mentions_received_total[5m]))", "no label reason"),
        ("sum(rate(watchtower_mentions_received_total[5m])) by (brand)", "no label brand"),
        ("max by (route) (watchtower_notifications_pending) > on (source) vector(1)", "source"),
        ("rate(watchtower_processing_seconds[5m])", "no metric watchtower_processing_seconds"),
        ("histogram_quantil(0.9, watchtower_processing_seconds_bucket)", "unknown function"),
        ("rate(watchtower_mentions_accepted_total[5m])", "has no series"),
        ('{__name__="watchtower_queue_depth"}', "without a metric name"),
        ("label_values(watchtower_queue_depth, brand)", "no label brand"),
    ],
)
def test_the_checker_reports_what_does_not_exist(expr: str, complaint: str) -> None:
    found = template_uses(expr) if expr.startswith("label_values") else uses(expr)
    reported = problems("test", found, small_exposition())
    assert any(complaint in p for p in reported), reported


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (source, job) (rate(watchtower_mentions_received_total{instance=~"$i"}[$__range]))',
        "histogram_quantile(0.99, sum by (le) (rate(watchtower_processing_seconds_bucket[5m])))",
        'up{job="watchtower"} == 0 and on (instance) watchtower_queue_depth > 1e3',
        "increase(watchtower_mentions_received_total[1h] offset 1d) >= 30 and vector($queue_size)",
        "label_values(watchtower_queue_depth, instance)",
    ],
)
def test_the_checker_accepts_what_exists(expr: str) -> None:
    found = template_uses(expr) if expr.startswith("label_values") else uses(expr)
    assert problems("test", found, small_exposition()) == []


# --- the files' structure ---------------------------------------------------------------------


def test_rules_have_what_the_on_call_needs() -> None:
    data = yaml.safe_load(RULES.read_text())
    assert [g["name"] for g in data["groups"]] == ["watchtower-daemon"]
    names_seen = [rule["alert"] for rule in rules()]
    assert len(names_seen) == len(set(names_seen)), "duplicate alert names"
    for rule in rules():
        name = rule.get("alert")
        assert isinstance(name, str), rule
        assert re.fullmatch(r"Watchtower[A-Z]\w+", name), name
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert isinstance(rule["expr"], str), name
        assert rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smhd]", str(rule.get("for"))), (name, rule.get("for"))
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert len(rule["annotations"]["summary"]) > 10, name
        assert len(rule["annotations"]["description"]) > 80, name  # what to do, not a title
    assert "WatchtowerDown" in names_seen


def walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_dashboard_is_importable_and_its_datasource_templated() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] == "watchtower-daemon"
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["social stream", "daemon"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance"} <= set(variables)
    sources = [n["datasource"] for n in walk(board) if isinstance(n.get("datasource"), dict)]
    uids = {s["uid"] for s in sources if s.get("type") == "prometheus"}
    assert uids == {"${datasource}"}, "a hard-coded datasource"
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_panel_filters_by_job_and_instance() -> None:
    for panel in panels():
        for target in panel["targets"]:
            selectors = [m.group(0) for m in _SELECTOR.finditer(target["expr"])]
            for selector in selectors:
                assert 'job=~"$job"' in selector, (panel["title"], selector)
                assert 'instance=~"$instance"' in selector, (panel["title"], selector)


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (it comes with Prometheus): rules not checked by it")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def rule(name: str) -> dict[str, Any]:
    return next(r for r in rules() if r["alert"] == name)


def fired(name: str, *labelled: dict[str, str], value: str = "") -> list[dict[str, Any]]:
    """What promtool should see of rule ``name`` firing once per label set: its labels, and
    its annotations with those labels and ``value`` filled in."""
    found = rule(name)
    alerts = []
    for labels in labelled:
        annotations = {}
        for key, template in found["annotations"].items():
            text = template.replace("{{ $value }}", value)
            for label, shown in labels.items():
                text = text.replace(f"{{{{ $labels.{label} }}}}", shown)
            annotations[key] = text
        every = {"job": "watchtower", **found["labels"], **labels}
        alerts.append({"exp_labels": every, "exp_annotations": annotations})
    return alerts


def promtool_test(
    tmp_path: Path, series: dict[str, str], checks: list[tuple[int, str, list[dict[str, Any]]]]
) -> None:
    """promtool's rule tests: ``series`` (selector: values, one sample a minute from 0) and,
    per check, (minute, alert name, the alerts expected to fire then)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (it comes with Prometheus): rules not tested by it")
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "alert_rule_test": [
                    {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": expected}
                    for minute, name, expected in checks
                ],
            }
        ],
    }
    path = tmp_path / "rules-test.yaml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mqtt_alert_fires_for_a_daemon_that_reads_mqtt_without_a_session(
    tmp_path: Path,
) -> None:
    """A daemon that never got a session alerts after 5 minutes, one that lost it 5 minutes
    after the loss, an http-only daemon never."""
    name = "WatchtowerMqttDisconnected"
    values = {  # instance: (mqtt_enabled, mqtt_connected)
        "never": ("1x30", "0x30"),
        "http-only": ("0x30", "0x30"),
        "lost": ("1x30", "1x10 0x20"),
    }
    series = {
        f'watchtower_mqtt_{metric}{{job="watchtower", instance="{instance}"}}': v
        for instance, pair in values.items()
        for metric, v in zip(("enabled", "connected"), pair, strict=True)
    }

    def on(*instances: str) -> list[dict[str, Any]]:
        return fired(name, *({"instance": i} for i in instances))

    checks = [(4, on()), (10, on("never")), (14, on("never")), (20, on("never", "lost"))]
    promtool_test(tmp_path, series, [(minute, name, alerts) for minute, alerts in checks])


def test_a_dead_url_beside_a_working_one_warns_and_only_a_lost_notification_pages(
    tmp_path: Path,
) -> None:
    """Route pager: urls[1] gives up every notification from minute 11 while urls[0] takes
    them, so they are sent: a warning naming urls[1], no dead letter. Route chat: its one URL
    gives up, so they are dead-lettered: critical, and no second alert for its URL."""

    def counter(metric: str, **labels: str) -> str:
        shown = ", ".join(f'{k}="{v}"' for k, v in {"instance": "w1", **labels}.items())
        return f'watchtower_{metric}_total{{job="watchtower", {shown}}}'

    failing = "0x10 1+1x20"  # one more a minute from minute 11
    series = {
        counter("notifications_sent", route="pager"): "1+1x30",
        counter("notifications_failed", route="pager", final="true"): "0x30",
        counter("notification_url_failures", route="pager", url="urls[1]", final="true"): failing,
        counter("notifications_sent", route="chat"): "0x30",
        counter("notifications_failed", route="chat", final="true"): failing,
        counter("notification_url_failures", route="chat", url="urls[0]", final="true"): failing,
    }
    url_failing, dead = "WatchtowerNotificationUrlFailing", "WatchtowerNotificationsDeadLettered"
    pager = {"instance": "w1", "route": "pager", "url": "urls[1]"}
    checks = [
        (10, url_failing, []),
        (10, dead, []),
        (13, url_failing, fired(url_failing, pager, value="3")),
        (13, dead, fired(dead, {"instance": "w1", "route": "chat"}, value="3")),
    ]
    promtool_test(tmp_path, series, checks)


# --- against a live daemon --------------------------------------------------------------------


@dataclass
class Api:
    daemon: Daemon
    base: str
    session: aiohttp.ClientSession

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        async with self.session.post(self.base + path, data=body, headers=headers) as r:
            return r.status

    async def feed(self, records: list[dict[str, Any]]) -> None:
        """Post ``records`` and run them through the engine, as the batcher would."""
        assert await self.post("/v1/mentions", ndjson(records), NDJSON) == 202
        rt = self.daemon.runtime
        queued = list(rt.inbox.queue._queue)  # type: ignore[attr-defined]
        rt.inbox.queue._queue.clear()  # type: ignore[attr-defined]
        await rt.decide(queued)

    async def metrics(self) -> str:
        async with self.session.get(self.base + "/metrics") as r:
            assert r.status == 200
            return await r.text()


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


@pytest.fixture
async def api(receiver: Receiver) -> AsyncIterator[Api]:
    """Two routes: chat to the local receiver, pager to a port nobody listens on."""
    chat = RouteConfig("chat", (Secret(receiver.url("/chat")),))
    pager = RouteConfig("pager", (Secret(f"json://{HOST}:{free_port()}/pager"),))
    config = Config(
        http=HttpConfig(port=0, token=Secret(TOKEN)),
        daemon=DaemonConfig(queue_size=QUEUE),
        momentum=MomentumConfig(big_size=5, min_count=3),  # a burst of 30 fires
        scoring=ScoringConfig(sentiment_gate="off"),
        notify=NotifyConfig(console=False, retry_initial=Duration(600), routes=(chat, pager)),
    )
    daemon = Daemon(config)
    async with daemon_api(daemon) as (base, session):
        yield Api(daemon, base, session)


async def drive(api: Api) -> None:
    """Make the series the dashboard and rules use exist, each through the real path."""
    no_token = {"Content-Type": "application/x-ndjson"}
    assert await api.post("/v1/mentions", b"{}\n", no_token) == 401
    silence = orjson.dumps({"brand": "globex", "for": "2h"})
    json_auth = {"Content-Type": "application/json", **AUTH}
    assert await api.post("/v1/silences", silence, json_auth) == 201
    acme = burst("r1", 0, 30, 4, "@acme you lost my bag")
    globex = [{**r, "brand": "globex"} for r in burst("r2", 2, 30, 4, "@globex refund me now")]
    await api.feed([{"id": "no-time", "text": "x"}, *stream(acme, globex)])
    await api.daemon.runtime.delivery.drain(10)  # chat sent, pager failed, globex silenced
    waiting = [{"id": f"q{i}", "created_at": 1_767_600_200, "text": "x"} for i in range(QUEUE + 1)]
    assert await api.post("/v1/mentions", ndjson(waiting[:1]), NDJSON) == 202  # stays queued
    assert await api.post("/v1/mentions", ndjson(waiting[1:]), NDJSON) == 503  # 1 short of room


async def test_every_metric_and_label_queried_exists_on_a_live_daemon(api: Api) -> None:
    await drive(api)
    series = exposed(await api.metrics(), declared(api.daemon.runtime.metrics))
    found = list(expressions())
    reported = [p for where, use in found for p in problems(where, use, series)]
    assert reported == [], "\n".join(reported)
    referenced = {metric for _, use in found for metric in use.labels}
    assert len(referenced) >= 15, referenced  # the reader found the queries' metrics


async def test_the_dashboard_shows_every_family(api: Api) -> None:
    text = await api.metrics()
    families = {f.name for f in text_string_to_metric_families(text)}
    # watchtower's own; of prometheus_client's process_* the dashboard shows CPU and memory
    families = {n for n in families if n.startswith("watchtower_") and not n.endswith("_created")}
    shown = {metric for p in panels() for t in p["targets"] for metric in uses(t["expr"]).labels}
    missing = {
        family
        for family in families - NOT_ON_DASHBOARD
        if not any(re.fullmatch(rf"{family}(_total|_bucket|_sum|_count)?", s) for s in shown)
    }
    assert missing == set(), f"families on no panel: {sorted(missing)}"
