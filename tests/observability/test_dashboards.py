"""The layers' Grafana dashboards (components/observability/dashboards.py), checked for structure and
for the metrics they name: every metric in every panel's PromQL must be one that something the
program deploys produces. The oracle for that is built here from the sources themselves (the JMX
agent's rules, the recording rules) and from what the exporters are known to export, so a panel that
names a metric nothing produces (a typo, a renamed rule) fails here rather than showing "No data".

Pure and fast: no network, no promtool."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterator, Optional

import pytest

from components import quantities
from components.batch import spark
from components.batch.config import BatchConfig
from components.ingestion.config import IngestionConfig
from components.observability import alerts, dashboards, jmx, monitoring

NAMESPACE = {"ingestion": "datapipe-ingestion", "batch": "datapipe-batch"}
BUILDERS = {"ingestion": dashboards.ingestion, "batch": dashboards.batch}
# The services whose JMX rules each layer deploys (jmx.RULES keys).
LAYER_SERVICES = {"ingestion": ("kafka", "kafka-connect", "schema-registry"), "batch": ("spark-history-server",)}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard(layer: str) -> dict[str, Any]:
    return BUILDERS[layer](NAMESPACE[layer])


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that query (rows excluded)."""
    return [p for p in board["panels"] if p["type"] != "row"]


def targets(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels(board):
        for target in panel["targets"]:
            yield panel, target


# ---- PromQL: the metric names an expression selects -------------------------------------------------

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing",
    "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
    "start", "end",  # the @ modifier's start() and end()
}
# Followed by a parenthesised list of label names, not by an expression.
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = r"(?:[0-9]+(?:ms|[smhdwy]))+"
_NUMBER = re.compile(rf"{_DURATION}|0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OPERATORS = set("+-*/%^=!<>,@~")


def _string_end(expr: str, start: int) -> int:
    """The index past the string literal opening at `start` ("...", '...' with escapes, `...` raw)."""
    quote, i = expr[start], start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise ValueError(f"unterminated string at {start} in {expr!r}")


def _matchers(expr: str, start: int) -> tuple[set[str], int]:
    """The metric names a `{...}` opening at `start` selects (`__name__="x"` or a bare quoted name),
    and the index past its `}`."""
    names, i, label, operator = set(), start + 1, None, None
    while i < len(expr):
        char = expr[i]
        if char.isspace() or char == ",":
            i += 1
        elif char == "}":
            return names, i + 1
        elif char in "\"'`":
            end = _string_end(expr, i)
            value = expr[i + 1:end - 1]
            if label is None:
                names.add(value)  # Prometheus 3: {"metric.name", ...}
            elif label == "__name__":
                if operator != "=":
                    raise ValueError(f"__name__{operator} selects names this test cannot check: {expr!r}")
                names.add(value)
            label, operator, i = None, None, end
        elif (op := re.match(r"=~|!~|!=|=", expr[i:])) and label is not None:
            operator, i = op.group(), i + len(op.group())
        elif match := _LABEL.match(expr, i):
            label, i = match.group(), match.end()
        else:
            raise ValueError(f"unexpected {char!r} at {i} in the matchers of {expr!r}")
    raise ValueError(f"unclosed {{ at {start} in {expr!r}")


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """The index past the bracket matching the one at `start` (strings skipped)."""
    depth, i = 0, start
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _string_end(expr, i)
            continue
        depth += expr[i] == opening
        depth -= expr[i] == closing
        i += 1
        if depth == 0:
            return i
    raise ValueError(f"unclosed {opening} at {start} in {expr!r}")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects. Not a full parser: it knows enough of the
    grammar to tell a metric from a function, an aggregation, a keyword, a grouping's label list, a
    matcher's label, a range or a literal, and raises on what it does not understand (an unknown
    function, an unbalanced parenthesis, a stray character) rather than guess."""
    names: set[str] = set()
    depth, i = 0, 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif char in "\"'`":
            i = _string_end(expr, i)
        elif char == "{":
            found, i = _matchers(expr, i)
            names |= found
        elif char == "[":  # a range or a subquery's range and step
            end = expr.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed [ at {i} in {expr!r}")
            i = end + 1
        elif char == "(":
            depth, i = depth + 1, i + 1
        elif char == ")":
            if depth == 0:
                raise ValueError(f"unbalanced ) at {i} in {expr!r}")
            depth, i = depth - 1, i + 1
        elif (number := _NUMBER.match(expr, i)) and (char.isdigit() or char == "."):
            i = number.end()
            if i < len(expr) and (expr[i].isalnum() or expr[i] == "_"):
                raise ValueError(f"malformed number {expr[number.start():i + 1]!r} in {expr!r}")
        elif ident := _IDENT.match(expr, i):
            word, i = ident.group(), ident.end()
            rest = expr[i:].lstrip()
            if word.lower() in GROUPING:
                if rest.startswith("("):
                    i = _closing(expr, len(expr) - len(rest), "(", ")")
            elif word.lower() in AGGREGATIONS | KEYWORDS:
                pass  # an aggregation may be followed by its `by (...)` before its argument
            elif rest.startswith("("):
                if word not in FUNCTIONS:
                    raise ValueError(f"{word}() is not a PromQL function, in {expr!r}")
            else:
                names.add(word)
        elif char in _OPERATORS:
            i += 1
        else:
            raise ValueError(f"unexpected {char!r} at {i} in {expr!r}")
    if depth:
        raise ValueError(f"unbalanced ( in {expr!r}")
    return names


@pytest.mark.parametrize("expr, expected", [
    ('sum by (app) (rate(foo_total{a="b"}[5m]))', {"foo_total"}),
    ("sum(rate(foo_total[5m])) by (app)", {"foo_total"}),
    ("max by (app, pod) (rss) / on (app) group_left datapipe:limit_bytes > 0.9",
     {"rss", "datapipe:limit_bytes"}),
    ("a * on (x) group_right (y, z) b", {"a", "b"}),
    ('count(x{s!="running",t=~"a|b"} == 1) or vector(0)', {"x"}),
    ("a and ignoring (pod) b unless c offset 5m or d > bool 1", {"a", "b", "c", "d"}),
    ("min_over_time(lag[15m]) > 0 and deriv(lag[15m:1m]) > 0", {"lag"}),
    ("histogram_quantile(0.99, sum without (pod) (rate(h_bucket[5m])))", {"h_bucket"}),
    ('label_replace(up, "dst", "$1 (x) {y}", "src", "(.*)")', {"up"}),
    ('{__name__="by_name", a="}"}', {"by_name"}),
    ('topk(3, x @ end()) - 1e3 * 0x1F + Inf - NaN + .5', {"x"}),
    ('absent(up{job="a"} == 1) # a comment: not_a_metric', {"up"}),
])
def test_extractor(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


@pytest.mark.parametrize("expr", [
    "rat(foo[5m])",  # no such function
    "sum(foo",
    "sum(foo))",
    'foo{a="b"',
    "foo[5m",
    'foo{a="b}',
    '{__name__=~"foo.*"}',  # a name pattern the oracle cannot check
    "5foo",
    "foo $ bar",
])
def test_extractor_rejects(expr: str) -> None:
    with pytest.raises(ValueError):
        metric_names(expr)


# ---- the oracle: the metric names the deployed exporters and rules produce -------------------------

def capture_groups(pattern: str) -> list[str]:
    """The source text of each capturing group of a Java regex, by group number (from 1): escapes and
    character classes skipped, (?:...) and look-arounds not counted, (?<name>...) counted."""
    groups: list[Optional[str]] = []
    stack: list[tuple[Optional[int], int]] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class, i = True, i + 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a leading ] is literal
            continue
        elif char == "(":
            named = re.match(r"\(\?<([A-Za-z][A-Za-z0-9]*)>", pattern[i:])
            if named:
                groups.append(None)
                stack.append((len(groups) - 1, i + named.end()))
            elif pattern.startswith("(?", i):
                stack.append((None, i))
            else:
                groups.append(None)
                stack.append((len(groups) - 1, i + 1))
        elif char == ")":
            number, start = stack.pop()
            if number is not None:
                groups[number] = pattern[start:i]
        i += 1
    assert not stack and not in_class, f"unbalanced regex {pattern!r}"
    return [g for g in groups if g is not None]


def alternatives(group: str) -> Optional[list[str]]:
    """The literal strings a group matches when it is a plain alternation of literals (`A|B|C`, an
    escaped punctuation character counting as itself); None when it is a general pattern."""
    options = []
    for option in group.split("|"):
        literal = re.sub(r"\\([^A-Za-z0-9])", r"\1", option)
        if re.search(r"[\\.\[\](){}*+?^$]", re.sub(r"\\[^A-Za-z0-9]", "", option)):
            return None
        options.append(literal)
    return options


def safe_name(name: str) -> str:
    """jmx_exporter 1.0.1's JmxCollector.safeName: an unsafe character becomes _, runs of _ collapse
    into one, a leading digit gets a _ before it."""
    name = re.sub(r"[^A-Za-z0-9:_]+", "_", name)
    name = re.sub(r"_+", "_", name)
    return "_" + name if name[:1].isdigit() else name


RESERVED_SUFFIXES = ("_total", "_created", "_bucket", "_info")


def exposed_name(name: str, type_: str) -> str:
    """jmx_exporter 1.0.1 builds its snapshots with client_java 1.x, whose
    PrometheusNaming.sanitizeMetricName strips the reserved suffixes (MatchedRule.withValue); the
    text format puts `_total` back on counters only. A GAUGE rule named `x_total` exports `x`."""
    while name.endswith(RESERVED_SUFFIXES):
        name = name[:name.rfind("_")]
    return name + "_total" if type_ == "COUNTER" else name


WILDCARD = "\0"  # stands for a general group's text inside a name until it becomes a regex


def rule_names(rule: dict[str, Any], lowercase: bool) -> set[str]:
    """The names one JMX rule can export: `name` with each $N replaced by every alternative of the
    N-th capturing group, safe_name()d, lower-cased (lowercaseOutputName) and exposed_name()d. A $N
    of a general group (a rule that puts free text in the name) becomes WILDCARD."""
    groups = [alternatives(g) for g in capture_groups(rule["pattern"])]
    names = [rule["name"]]
    for number in sorted({int(n) for n in re.findall(r"\$(\d)", rule["name"])}):
        options = groups[number - 1]
        names = [n.replace(f"${number}", option) for n in names for option in (options or [WILDCARD])]
    out = set()
    for name in names:
        parts = [safe_name(part) for part in name.split(WILDCARD)]
        name = WILDCARD.join(part.lower() if lowercase else part for part in parts)
        out.add(exposed_name(name, rule.get("type", "UNTYPED")))
    return out


# The JVM collectors of the jmx_prometheus_javaagent 1.0.1, whatever the rules (observed on the real
# agent in tests/services/test_observability.py). `*`: any suffix.
JVM_AGENT_METRICS = (
    "jvm_buffer_pool_*", "jvm_classes_*", "jvm_gc_collection_seconds_count", "jvm_gc_collection_seconds_sum",
    "jvm_memory_committed_bytes", "jvm_memory_init_bytes", "jvm_memory_max_bytes", "jvm_memory_used_bytes",
    "jvm_memory_pool_*", "jvm_threads_current", "jvm_threads_daemon", "jvm_threads_peak", "jvm_threads_state",
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_resident_memory_bytes",
    "process_virtual_memory_bytes", "process_start_time_seconds",
)
# postgres_exporter v0.20.1's default collectors that the ingestion layer relies on:
# collector/pg_replication_slots.go (pg_replication_slots_*) and collector/pg_stat_database.go
# (pg_stat_database_*), plus pg_up from the exporter itself.
POSTGRES_EXPORTER_METRICS = (
    "pg_up", "pg_replication_slots_active", "pg_replication_slots_pg_wal_lsn_diff",
    "pg_replication_slots_slot_current_wal_lsn", "pg_replication_slots_slot_confirmed_flush_lsn",
    "pg_replication_slots_slot_is_active", "pg_replication_slots_safe_wal_size_bytes",
    "pg_replication_slots_wal_status", "pg_stat_database_numbackends", "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback", "pg_stat_database_tup_inserted",
)
PROMETHEUS_METRICS = ("up",)


def spark_servlet_names(key: str) -> set[str]:
    """The series Spark's PrometheusServlet writes for a gauge registered under `key`: Spark 3.5
    core/src/main/scala/org/apache/spark/metrics/sink/PrometheusServlet.scala, normalizeKey(key) =
    s"metrics_${key.replaceAll("[^a-zA-Z0-9]", "_")}_", then "Number" and "Value" with the label
    type="gauges" (gauges with a String value are skipped)."""
    prefix = "metrics_" + re.sub(r"[^a-zA-Z0-9]", "_", key) + "_"
    return {prefix + "Number", prefix + "Value"}


# The driver's registry keys: <spark.metrics.namespace>.<executor id, "driver">.<source>.<metric>
# (MetricsSystem.buildRegistryName), the namespace from components/batch/spark.py METRICS_CONF.
SPARK_METRICS_NAMESPACE = spark.METRICS_CONF["spark.metrics.namespace"]
# JvmSource registers Dropwizard's MemoryUsageGaugeSet (heap.*, non-heap.*, total.*); the
# DAGSchedulerSource its stage.* and job.* gauges. GC gauges are left out: their names carry the
# collector's name, which depends on the JVM's ergonomics.
SPARK_DRIVER_GAUGES = (
    *(f"jvm.{area}.{field}" for area in ("heap", "non-heap", "total") for field in ("init", "used", "max", "committed")),
    "jvm.heap.usage", "jvm.non-heap.usage",
    "DAGScheduler.stage.failedStages", "DAGScheduler.stage.runningStages", "DAGScheduler.stage.waitingStages",
    "DAGScheduler.job.allJobs", "DAGScheduler.job.activeJobs",
)


def recorded_names(groups: list[dict[str, Any]]) -> set[str]:
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def produced(layer: str) -> list[re.Pattern[str]]:
    """Every metric name something deployed in the layer produces, as full-match patterns."""
    names: set[str] = set()
    for service in LAYER_SERVICES[layer]:
        document = jmx.rules_document(service)  # what the agent's rules file holds
        for rule in document.get("rules", []):
            names |= {re.escape(n).replace(re.escape(WILDCARD), "[A-Za-z0-9_:]+")
                      for n in rule_names(rule, document["lowercaseOutputName"])}
    names |= {re.escape(n).replace(r"\*", "[A-Za-z0-9_:]+") for n in (*JVM_AGENT_METRICS, *PROMETHEUS_METRICS)}
    if layer == "ingestion":
        names |= {re.escape(n) for n in POSTGRES_EXPORTER_METRICS}
        names |= {re.escape(n) for n in recorded_names(alerts.ingestion_groups(
            NAMESPACE[layer], "debezium", 1024, ("source", "sink"), "dlq", {"kafka": 682, "kafka-connect": 1024},
            6142, 6144))}
    else:
        names |= {re.escape(n) for n in recorded_names(alerts.batch_groups(NAMESPACE[layer], {"spark-history-server": 512}, 16818, 18432))}
        names |= {re.escape(n) for key in SPARK_DRIVER_GAUGES
                  for n in spark_servlet_names(f"{SPARK_METRICS_NAMESPACE}.driver.{key}")}
    return [re.compile(n) for n in names]


def is_produced(name: str, oracle: list[re.Pattern[str]]) -> bool:
    return any(pattern.fullmatch(name) for pattern in oracle)


def unknown_metrics(board: dict[str, Any], layer: str) -> dict[str, set[str]]:
    """expr -> the names in it that nothing in the layer produces."""
    oracle = produced(layer)
    unknown = {}
    for _, target in targets(board):
        missing = {n for n in metric_names(target["expr"]) if not is_produced(n, oracle)}
        if missing:
            unknown[target["expr"]] = missing
    return unknown


def test_every_layer_service_has_its_rules_in_the_oracle() -> None:
    assert sorted(s for services in LAYER_SERVICES.values() for s in services) == sorted(jmx.RULES)


@pytest.mark.parametrize("pattern, groups", [
    (r"a<type=(X|Y), name=([^,>]+)(?:, [^>]*)?><>(P|Q)", ["X|Y", "[^,>]+", "P|Q"]),
    (r"a(?<n>b|c)\((d)\)[(e)]", ["b|c", "d"]),
    (r"x(?=y)(z)", ["z"]),
])
def test_capture_groups(pattern: str, groups: list[str]) -> None:
    assert capture_groups(pattern) == groups


def test_rule_names_expand_alternations_and_follow_the_agent() -> None:
    rule = {"pattern": r"d.([a-z]+)<ctx=(streaming|snapshot), s=([^,>]+)(?:, [^>]*)?><>(Foo-Bar|BazQux)",
            "name": "d_$2_$4", "type": "GAUGE"}
    assert rule_names(rule, True) == {"d_streaming_foo_bar", "d_streaming_bazqux", "d_snapshot_foo_bar",
                                "d_snapshot_bazqux"}
    counter = {"pattern": r"k<t=(a-b-total|c)>", "name": "k_$1", "type": "COUNTER"}
    assert rule_names(counter, True) == {"k_a_b_total", "k_c_total"}
    gauge = {"pattern": r"k<t=(a-b-total|c)>", "name": "k_$1", "type": "GAUGE"}
    assert rule_names(gauge, True) == {"k_a_b", "k_c"}
    free = {"pattern": r"k<t=x><>(.+)", "name": "k_registered_$1"}
    assert rule_names(free, True) == {f"k_registered_{WILDCARD}"}


def test_oracle_knows_the_metrics_the_dashboards_were_written_against() -> None:
    oracle = produced("ingestion")
    for name in ("kafka_server_replicamanager_underreplicatedpartitions", "kafka_connect_source_record_write_total",
                 "kafka_connect_task_error_total_record_errors_total", "debezium_streaming_millisecondsbehindsource",
                 "kafka_connect_producer_record_queue_time_avg", "kafka_network_requestmetrics_totaltimems",
                 "datapipe:cdc_capture_latency_ms", "datapipe:container_memory_limit_bytes", "jvm_buffer_pool_used_bytes"):
        assert is_produced(name, oracle), name
    # A COUNTER rule keeps its _total; a GAUGE rule named ..._total would lose it (client_java 1.x).
    assert is_produced("kafka_connect_producer_record_error_total", oracle)
    assert not is_produced("kafka_connect_producer_record_error", oracle)
    assert spark_servlet_names("datapipe.driver.jvm.heap.used") == {
        "metrics_datapipe_driver_jvm_heap_used_Number", "metrics_datapipe_driver_jvm_heap_used_Value"}
    assert "metrics_datapipe_driver_DAGScheduler_job_activeJobs_Value" in spark_servlet_names(
        "datapipe.driver.DAGScheduler.job.activeJobs")


# ---- 1, 2. every panel queries, and only metrics the layer produces ---------------------------------

@pytest.mark.parametrize("layer", BUILDERS)
def test_every_panel_has_targets_with_an_expr_and_a_legend(layer: str) -> None:
    board = dashboard(layer)
    assert panels(board)
    for panel in panels(board):
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and metric_names(target["expr"]), (panel["title"], target)
            assert target["legendFormat"], (panel["title"], target)


@pytest.mark.parametrize("layer", BUILDERS)
def test_every_metric_is_produced(layer: str) -> None:
    assert unknown_metrics(dashboard(layer), layer) == {}


@pytest.mark.parametrize("layer, expr", [
    ("ingestion", "sum(rate(kafka_server_brokertopicmetrics_bytesinpersec{topic!=\"\"}[1m]))"),  # no _total
    ("ingestion", "max(kafka_connect_producer_record_error)"),  # a COUNTER: exported with _total
    ("batch", "sum(kafka_server_replicamanager_underreplicatedpartitions)"),  # another layer's metric
    ("batch", 'metrics_datapipe_driver_jvm_heap_used{type="gauges"}'),  # the servlet appends _Value
])
def test_an_unknown_metric_fails(layer: str, expr: str) -> None:
    board = copy.deepcopy(dashboard(layer))
    panels(board)[-1]["targets"].append({"refId": "Z", "datasource": DATASOURCE, "expr": expr, "legendFormat": "x"})
    assert list(unknown_metrics(board, layer)) == [expr]


# ---- 3. structure -----------------------------------------------------------------------------------

def test_uids_are_unique_and_stable() -> None:
    uids = [dashboard(layer)["uid"] for layer in BUILDERS]
    assert uids == ["datapipe-ingestion", "datapipe-batch"]
    # Stable: not derived from the namespace, so a re-import replaces the dashboard.
    assert dashboards.ingestion("elsewhere")["uid"] == "datapipe-ingestion"


@pytest.mark.parametrize("layer", BUILDERS)
def test_model_and_datasource_variable(layer: str) -> None:
    board = dashboard(layer)
    assert board["title"] and board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel, target in targets(board):
        assert panel["datasource"] == DATASOURCE and target["datasource"] == DATASOURCE, panel["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("layer", BUILDERS)
def test_panels_have_a_title_and_a_unit(layer: str) -> None:
    board = dashboard(layer)
    for panel in board["panels"]:
        assert panel["title"].strip()
    for panel in panels(board):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]


@pytest.mark.parametrize("layer", BUILDERS)
def test_grid_positions_do_not_overlap(layer: str) -> None:
    placed = dashboard(layer)["panels"]
    for panel in placed:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            p, q = a["gridPos"], b["gridPos"]
            overlap = (p["x"] < q["x"] + q["w"] and q["x"] < p["x"] + p["w"]
                       and p["y"] < q["y"] + q["h"] and q["y"] < p["y"] + p["h"])
            assert not overlap, (a["title"], b["title"])


def threshold_values(panel: dict[str, Any]) -> set[float]:
    return {s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None}


def panel_querying(board: dict[str, Any], name: str) -> dict[str, Any]:
    found = [p for p in panels(board) if any(name in metric_names(t["expr"]) for t in p["targets"])]
    assert found, f"no panel queries {name}"
    return found[0]


def test_latency_panel_has_the_500_ms_threshold_line() -> None:
    panel = panel_querying(dashboard("ingestion"), alerts.LATENCY_RECORD)
    assert panel["fieldConfig"]["defaults"]["unit"] == "ms"
    assert 500 in threshold_values(panel)
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"


@pytest.mark.parametrize("layer, budget_mib", [
    ("ingestion", IngestionConfig().memory_budget_mib),
    ("batch", BatchConfig().memory_budget_mib),
])
def test_memory_panel_has_the_layer_budget_threshold(layer: str, budget_mib: int) -> None:
    assert budget_mib * quantities.MIB == {"ingestion": 6, "batch": 18}[layer] * 2**30
    budget = [p for p in panels(dashboard(layer)) if "budget" in p["title"].lower()]
    assert len(budget) == 1
    panel = budget[0]
    assert panel["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert budget_mib * quantities.MIB in threshold_values(panel)
    names = {name for t in panel["targets"] for name in metric_names(t["expr"])}
    assert {alerts.LAYER_LIMITS_RECORD, alerts.BUDGET_RECORD} <= names


# ---- 4. serialisable, and shipped in the ConfigMap Grafana's sidecar picks up -----------------------

@pytest.mark.parametrize("layer", BUILDERS)
def test_json_and_configmap(layer: str) -> None:
    board = dashboard(layer)
    assert json.loads(json.dumps(board)) == board
    assert monitoring.layer_dashboard(layer, NAMESPACE[layer]) == board
    config_map = monitoring.dashboard_configmap(NAMESPACE[layer], layer, board)
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["labels"][monitoring.DASHBOARD_LABEL] == "1"
    assert monitoring.DASHBOARD_LABEL == "grafana_dashboard"
    assert json.loads(config_map["data"][f"datapipe-{layer}.json"]) == board
