"""The alerting and recording rules of both layers, checked and unit-tested with the real promtool
(Prometheus 3.x, built by scripts/services.sh: $DATAPIPE_PROMTOOL).

- `promtool check rules` on each layer's rules file and `promtool check config` on its
  prometheus.yml, both taken from the ConfigMaps the program renders for the layer;
- `promtool test rules`: for every alert rule, series on which it fires, with its exact labels and
  annotations (templates expanded here from the rule itself), at the evaluation its `for:` first
  allows and not one evaluation earlier; and series on which it must not fire;
- every alert has a severity, a summary and a runbook, and every alert rule has a firing and a quiet
  case here (a new alert without a unit test fails);
- wrong expectations make promtool fail (the harness cannot pass vacuously).

Range selectors are Prometheus 3's: left-open, `[15m]` at t holds the samples in (t-15m, t]."""

from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

from components import quantities
from components.batch import history_server
from components.batch.config import BatchConfig
from components.batch.memory import memory_allocation_mib as batch_allocation_mib
from components.ingestion import connectors, kafka_connect, schema_registry, topics
from components.ingestion import layer as ingestion_layer
from components.ingestion import kafka as kafka_builder, postgres as pg_builder
from components.ingestion.config import IngestionConfig
from components.observability import alerts, jmx, monitoring, postgres_exporter, prometheus
from components.observability.config import MonitoringConfig

pytestmark = pytest.mark.services

MIB = quantities.MIB
SERIES_MINUTES = 45  # every input series has samples at 0m..45m
QUIET_AT = 40  # past every `for:` (15m) plus the longest range (15m)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("DATAPIPE_PROMTOOL")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("promtool is not provisioned: run the suite with `make test`, which runs "
                           "scripts/services.sh and sources its env file (missing: DATAPIPE_PROMTOOL"
                           + (f"={path}, not an executable" if path else "") + ")")
    return path


# ---- the rules under test: each layer's, from the default config ----------------------------------

INGESTION = IngestionConfig()
BATCH = BatchConfig()
SOURCE, SINK = connectors.SOURCE_NAME, connectors.SINK_NAME
SLOT = INGESTION.postgres.slot_name
DATABASE = INGESTION.postgres.database
KEEP_BYTES = INGESTION.postgres.max_slot_wal_keep_size_mib * MIB
KAFKA, CONNECT, REGISTRY, POSTGRES = kafka_builder.APP, kafka_connect.APP, schema_registry.APP, pg_builder.APP
HISTORY = history_server.APP
# Each JVM's container limit, per pod: what the memory alerts compare a process's RSS with.
INGESTION_LIMITS_MIB = {KAFKA: INGESTION.kafka.memory_mib, CONNECT: INGESTION.kafka_connect.memory_mib,
                        REGISTRY: INGESTION.schema_registry.memory_mib}
BATCH_LIMITS_MIB = {HISTORY: batch_allocation_mib(BATCH, None, True)[HISTORY]}


@dataclass(frozen=True)
class Layer:
    name: str
    namespace: str
    monitoring: MonitoringConfig
    groups: list[dict[str, Any]]


LAYERS = {
    # The arguments of components/ingestion/layer.py alert_groups(): the limits are per pod
    # (container_limits_mib), not memory_allocation_mib(), which counts replicas (kafka: 3 x 682Mi)
    # and pods without a JVM.
    "ingestion": Layer("ingestion", INGESTION.namespace, INGESTION.monitoring, alerts.ingestion_groups(
        INGESTION.namespace, SLOT, INGESTION.postgres.max_slot_wal_keep_size_mib, (SOURCE, SINK),
        topics.DLQ_TOPIC, INGESTION_LIMITS_MIB, sum(INGESTION.memory_allocation_mib().values()),
        INGESTION.memory_budget_mib)),
    # components/batch/layer.py: the History Server is the layer's one scraped JVM.
    "batch": Layer("batch", BATCH.namespace, BATCH.monitoring, alerts.batch_groups(
        BATCH.namespace, BATCH_LIMITS_MIB, sum(batch_allocation_mib(BATCH, None, True).values()), BATCH.memory_budget_mib)),
}


def rendered(layer: Layer) -> tuple[dict[str, str], str]:
    """The layer's rules ConfigMap (file name -> text) and its prometheus.yml, as the program renders them."""
    objects = monitoring.manifests(layer.monitoring, layer.namespace, layer.name, layer.groups, {})
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    return maps["prometheus-rules"], maps["prometheus-config"]["prometheus.yml"]


def write_rules(layer: Layer, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered(layer)[0].items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


def run(promtool: str, *args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    print(f"$ promtool {' '.join(args)}  (exit {result.returncode})\n{result.stdout}{result.stderr}")
    return result


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def test_the_rules_are_the_programs():
    assert LAYERS["ingestion"].groups == ingestion_layer.alert_groups(INGESTION)
    # The batch layer passes the History Server's limit, the same number its allocation counts.
    assert BATCH_LIMITS_MIB == {HISTORY: BATCH.history_server.memory_mib}


# ---- 1. promtool check rules / check config ------------------------------------------------------

@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS)
def test_promtool_accepts_the_rules_file(promtool, layer, tmp_path):
    files = write_rules(layer, tmp_path)
    result = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", *map(str, files))
    assert result.returncode == 0, output(result)
    count = sum(len(group["rules"]) for group in layer.groups)
    assert f"SUCCESS: {count} rules found" in result.stdout, output(result)


@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS)
def test_promtool_accepts_the_prometheus_config_and_loads_the_rules_through_it(promtool, layer, tmp_path):
    """prometheus.yml names the rules by a glob under the directory where the pod mounts the rules
    ConfigMap. Here the ConfigMap's files are written to a temp directory and the glob's directory
    is moved there, its file pattern kept: promtool then loads (and checks) exactly the files the
    glob matches in the pod, through the config's own rule_files."""
    rules, text = rendered(layer)
    config = yaml.safe_load(text)
    rules_dir = tmp_path / "rules"
    write_rules(layer, rules_dir)
    moved = []
    for pattern in config["rule_files"]:
        directory, name = posixpath.split(pattern)
        assert directory == prometheus.RULES_DIR, f"{pattern} is not in the rules ConfigMap's mount"
        assert all(fnmatch.fnmatch(file, name) for file in rules), f"{pattern} misses one of {sorted(rules)}"
        moved.append(str(rules_dir / name))
    config["rule_files"] = moved
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run(promtool, "check", "config", "--lint=all", "--lint-fatal", str(path))
    assert result.returncode == 0, output(result)
    assert f"SUCCESS: {len(rules)} rule files found" in result.stdout, output(result)
    count = sum(len(group["rules"]) for group in layer.groups)
    assert f"SUCCESS: {count} rules found" in result.stdout, output(result)


# ---- 2. the unit-test harness -------------------------------------------------------------------

@dataclass(frozen=True)
class Fired:
    """An alert expected firing: the labels of its series (the templates' $labels), its value (the
    templates' $value) and, where one alert name has several rules, the rule's own labels that pick
    the rule (ConnectorNotRunning: connector)."""

    labels: dict[str, str] = field(default_factory=dict)
    value: Optional[float] = None
    rule: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """`fired` empty: the alert must not fire at `at`. Otherwise it fires exactly when its `for:` has
    elapsed since the minute its expression became true (`since`), and does not fire one
    evaluation earlier (still pending, or not yet true)."""

    alert: str
    fired: tuple[Fired, ...]
    since: int = 0
    at: Optional[int] = None


def fires(alert: str, *fired: Fired, since: int = 0) -> Check:
    assert fired
    return Check(alert, fired, since)


def quiet(alert: str, at: int = QUIET_AT) -> Check:
    return Check(alert, (), at=at)


@dataclass(frozen=True)
class Expr:
    """A promql_expr_test: `expr` at minute `at` gives these series (selector -> value)."""

    expr: str
    at: int
    samples: dict[str, float]


@dataclass(frozen=True)
class Case:
    name: str
    series: dict[str, str]  # selector -> promtool values notation
    checks: tuple[Check, ...]
    exprs: tuple[Expr, ...] = ()


def selector(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def flat(value: float) -> str:
    return f"{number(value)}x{SERIES_MINUTES}"


def go_value(value: float) -> str:
    """`{{ $value }}`: Go prints a float64 with %v (shortest 'g', exponent from 1e+06 up); the values
    the cases use stay where that is the plain decimal."""
    if not 1e-4 <= abs(value) < 1e6 and value != 0:
        raise ValueError(f"{value}: pick a value Go prints as a plain decimal")
    return number(value)


_TEMPLATE = re.compile(r"\{\{\s*(?:\$labels\.([A-Za-z_][A-Za-z0-9_]*)|(\$value))\s*\}\}")


def expand(text: str, labels: dict[str, str], value: Optional[float]) -> str:
    """Prometheus's expansion of an annotation, for the two forms the rules use."""
    def substitute(match: re.Match) -> str:
        if match.group(1):
            if match.group(1) not in labels:
                raise AssertionError(f"{text!r} uses $labels.{match.group(1)}, which the alert's series lack "
                                     f"({sorted(labels)}): Prometheus would print <no value>")
            return labels[match.group(1)]
        if value is None:
            raise AssertionError(f"{text!r} uses $value: give the expected alert a value")
        return go_value(value)

    expanded = _TEMPLATE.sub(substitute, text)
    assert "{{" not in expanded, f"a template form this harness does not expand: {text!r}"
    return expanded


def minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    assert seconds % 60 == 0, f"{duration}: the cases evaluate each minute"
    return seconds // 60


class Suite:
    """A layer's rules and the promtool test documents of its cases; records which rules a firing
    expectation resolved to and which alerts have a quiet case."""

    def __init__(self, layer: Layer):
        self.layer = layer
        self.alert_rules = [rule for group in layer.groups for rule in group["rules"] if "alert" in rule]
        self.fired_rules: set[int] = set()
        self.quiet_alerts: set[str] = set()

    def rule(self, alert: str, picked: dict[str, str]) -> tuple[int, dict[str, Any]]:
        found = [(i, r) for i, r in enumerate(self.alert_rules) if r["alert"] == alert
                 and all(r["labels"].get(k) == v for k, v in picked.items())]
        assert len(found) == 1, f"{alert} {picked}: {len(found)} rules of the {self.layer.name} layer match"
        return found[0]

    def hold(self, alert: str) -> int:
        holds = {minutes(r.get("for", "0s")) for r in self.alert_rules if r["alert"] == alert}
        assert len(holds) == 1, f"{alert}: no rule, or rules with different `for:` ({holds})"
        return holds.pop()

    def expected(self, alert: str, fired: Fired) -> dict[str, Any]:
        index, rule = self.rule(alert, fired.rule)
        self.fired_rules.add(index)
        assert not any("{{" in v for v in rule["labels"].values()), f"{alert}: templated labels"
        # The alert's labels: its series' (without __name__), then the rule's; $labels are the series'.
        return {"exp_labels": {**fired.labels, **rule["labels"]},
                "exp_annotations": {k: expand(v, fired.labels, fired.value) for k, v in rule["annotations"].items()}}

    def alert_tests(self, check: Check) -> list[dict[str, Any]]:
        exp = [self.expected(check.alert, fired) for fired in check.fired]
        if check.at is not None:
            assert not check.fired
            self.quiet_alerts.add(check.alert)
            return [{"eval_time": f"{check.at}m", "alertname": check.alert, "exp_alerts": []}]
        fire_at = check.since + self.hold(check.alert)
        earlier = [{"eval_time": f"{fire_at - 1}m", "alertname": check.alert, "exp_alerts": []}] if fire_at else []
        return [*earlier, {"eval_time": f"{fire_at}m", "alertname": check.alert, "exp_alerts": exp}]

    def group(self, case: Case) -> dict[str, Any]:
        tests = [t for check in case.checks for t in self.alert_tests(check)]
        evaluations = [(t["eval_time"], t["alertname"]) for t in tests]
        assert len(set(evaluations)) == len(evaluations), f"{case.name}: an alert checked twice at one time"
        group: dict[str, Any] = {
            "name": case.name, "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
            "alert_rule_test": tests}
        if case.exprs:
            group["promql_expr_test"] = [
                {"expr": e.expr, "eval_time": f"{e.at}m",
                 "exp_samples": [{"labels": labels, "value": value} for labels, value in e.samples.items()]}
                for e in case.exprs]
        return group

    def document(self, cases: list[Case], rules_file: str) -> dict[str, Any]:
        return {"rule_files": [rules_file], "evaluation_interval": "1m",
                # The file's order (records first): promtool would otherwise order the groups at random.
                "group_eval_order": [group["name"] for group in self.layer.groups],
                "tests": [self.group(case) for case in cases]}


def promtool_test(promtool: str, layer: Layer, document: dict[str, Any], directory: Path) -> subprocess.CompletedProcess:
    (rules,) = write_rules(layer, directory)
    assert document["rule_files"] == [rules.name]
    tests = directory / f"{layer.name}-tests.yaml"
    tests.write_text(yaml.safe_dump(document, sort_keys=False, width=200))
    result = run(promtool, "test", "rules", str(tests), cwd=directory)
    print(f"--- {tests} ---\n{tests.read_text()}")
    return result


# ---- the series -----------------------------------------------------------------------------------

def target(namespace: str, app: str, pod: str, container: Optional[str] = None, port: int = jmx.PORT) -> dict[str, str]:
    """A pod's `metrics` port as the layer's `datapipe` job labels it."""
    return {"job": "datapipe", "instance": f"{pod}:{port}", "app": app, "pod": pod,
            "container": container or app, "namespace": namespace}


def jvm(labels: dict[str, str], limit_mib: int, heap: float = 0.5, rss: float = 0.6) -> dict[str, str]:
    """A JVM's series from the agent: heap used/max (the heap ~60% of the limit) and resident memory."""
    heap_max = limit_mib * MIB * 3 // 5
    return {selector("jvm_memory_used_bytes", {**labels, "area": "heap"}): flat(heap * heap_max),
            selector("jvm_memory_max_bytes", {**labels, "area": "heap"}): flat(heap_max),
            selector("jvm_memory_used_bytes", {**labels, "area": "nonheap"}): flat(96 * MIB),
            selector("jvm_memory_max_bytes", {**labels, "area": "nonheap"}): flat(-1),
            selector("process_resident_memory_bytes", labels): flat(rss * limit_mib * MIB)}


def cadvisor(namespace: str, pod: str, container: str, limit_mib: int, ratio: float) -> dict[str, str]:
    """The kubelet's cAdvisor series of a container, and of its pod's cgroup (container="")."""
    def labels(name: str) -> dict[str, str]:
        return {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "namespace": namespace, "pod": pod,
                "container": name, "id": f"/kubepods/pod-{pod}/{name}"}
    return {selector("container_memory_working_set_bytes", labels(container)): flat(ratio * limit_mib * MIB),
            selector("container_spec_memory_limit_bytes", labels(container)): flat(limit_mib * MIB),
            selector("container_memory_working_set_bytes", labels("")): flat(ratio * limit_mib * MIB + 4 * MIB),
            selector("container_spec_memory_limit_bytes", labels("")): flat(0)}


NS = INGESTION.namespace
BROKERS = [target(NS, KAFKA, f"{kafka_builder.APP}-{i}") for i in range(INGESTION.kafka.brokers)]
WORKER = target(NS, CONNECT, "kafka-connect-6c9f8d7b5-x2x7q")
REGISTRY_POD = target(NS, REGISTRY, "schema-registry-7f6d5c4b3-q8w2e")
EXPORTER = target(NS, POSTGRES, "postgres-0", "postgres-exporter", postgres_exporter.PORT)
INGESTION_JVMS = [*BROKERS, WORKER, REGISTRY_POD]
SELF = {"job": "prometheus", "instance": f"localhost:{prometheus.PORT}"}


def connector_status(connector: str, status: str) -> str:
    return selector("kafka_connect_connector_status", {**WORKER, "connector": connector, "status": status})


def task_status(connector: str, status: str, task: str = "0") -> str:
    return selector("kafka_connect_task_status", {**WORKER, "connector": connector, "task": task, "status": status})


def task_labels(connector: str, status: str, task: str = "0") -> dict[str, str]:
    return {**WORKER, "connector": connector, "task": task, "status": status}


SLOT_LABELS = {**EXPORTER, "slot_name": SLOT, "database": DATABASE}
SLOT_LAG = selector("pg_replication_slots_pg_wal_lsn_diff", SLOT_LABELS)
SLOT_ACTIVE = selector("pg_replication_slots_active", SLOT_LABELS)


def wal_status_labels(status: str) -> dict[str, str]:
    return {**EXPORTER, "slot_name": SLOT, "slot_type": "logical", "wal_status": status}


def broker_series(name: str, values: list[float]) -> dict[str, str]:
    return {selector(name, broker): flat(value) for broker, value in zip(BROKERS, values, strict=True)}


UNDER_REPLICATED = "kafka_server_replicamanager_underreplicatedpartitions"
UNDER_MIN_ISR = "kafka_server_replicamanager_underminisrpartitioncount"
OFFLINE = "kafka_controller_kafkacontroller_offlinepartitionscount"
ACTIVE_CONTROLLERS = "kafka_controller_kafkacontroller_activecontrollercount"
SINK_CLIENT = {**WORKER, "client": f"{SINK}-0"}
SINK_LAG = selector("kafka_connect_sink_records_lag_max", SINK_CLIENT)
DLQ = "kafka_connect_task_error_deadletterqueue_produce_requests_total"
LATENCY_INPUTS = ("debezium_streaming_millisecondsbehindsource", "kafka_connect_producer_record_queue_time_avg",
                  "kafka_connect_producer_request_latency_avg")


def latency_series(behind: float, queue: float, request: float) -> dict[str, str]:
    debezium = {**WORKER, "plugin": "postgres", "server": "datapipe"}
    producer = {**WORKER, "client": f"{SOURCE}-0"}
    return {selector(LATENCY_INPUTS[0], debezium): flat(behind), selector(LATENCY_INPUTS[1], producer): flat(queue),
            selector(LATENCY_INPUTS[2], producer): flat(request)}


def limit_records(limits_mib: dict[str, int]) -> Expr:
    return Expr(alerts.LIMIT_RECORD, 10, {selector(alerts.LIMIT_RECORD, {"app": app}): mib * MIB
                                          for app, mib in limits_mib.items()})


INGESTION_ALERTS = (
    "ConnectorNotRunning", "ConnectorTaskNotRunning", "ReplicationSlotLagHigh", "ReplicationSlotLagCritical",
    "ReplicationSlotInactive", "ReplicationSlotLost", "PostgresExporterDown", "KafkaUnderReplicatedPartitions",
    "KafkaUnderMinIsr", "KafkaOfflinePartitions", "KafkaNoActiveController", "SinkLagGrowing",
    "DeadLetterQueueNotEmpty", "CdcLatencyAboveTarget", "ScrapeTargetDown", "JvmHeapHigh",
    "JvmProcessMemoryNearLimit", "ContainerMemoryNearLimit")
BATCH_ALERTS = ("SparkHistoryServerDown", "ScrapeTargetDown", "JvmHeapHigh", "JvmProcessMemoryNearLimit",
                "ContainerMemoryNearLimit")


def healthy_ingestion() -> dict[str, str]:
    series = {selector("up", labels): flat(1) for labels in [*INGESTION_JVMS, EXPORTER, SELF]}
    for connector in (SOURCE, SINK):
        series[connector_status(connector, "running")] = flat(1)
        series[task_status(connector, "running")] = flat(1)
        series[selector(DLQ, {**WORKER, "connector": connector, "task": "0"})] = flat(0)
    series[SLOT_LAG] = flat(16 * MIB)
    series[SLOT_ACTIVE] = flat(1)
    series[selector("pg_replication_slots_wal_status", wal_status_labels("reserved"))] = flat(1)
    series[selector("pg_up", EXPORTER)] = flat(1)
    series |= broker_series(UNDER_REPLICATED, [0, 0, 0]) | broker_series(UNDER_MIN_ISR, [0, 0, 0])
    series |= broker_series(OFFLINE, [0, 0, 0]) | broker_series(ACTIVE_CONTROLLERS, [1, 0, 0])
    series[SINK_LAG] = flat(120)  # a sink that keeps up is a little behind, steadily
    series |= latency_series(40, 2, 5)
    for labels in INGESTION_JVMS:
        series |= jvm(labels, INGESTION_LIMITS_MIB[labels["app"]])
        series |= cadvisor(NS, labels["pod"], labels["container"], INGESTION_LIMITS_MIB[labels["app"]], 0.6)
    series |= cadvisor(NS, EXPORTER["pod"], POSTGRES, INGESTION.postgres.memory_mib, 0.5)
    series |= cadvisor(NS, EXPORTER["pod"], "postgres-exporter", INGESTION.monitoring.postgres_exporter.memory_mib, 0.3)
    return series


def without(series: dict[str, str], *prefixes: str) -> dict[str, str]:
    """The series minus those whose selector starts with one of `prefixes`."""
    return {s: v for s, v in series.items() if not s.startswith(prefixes)}


def slot_lag_case(name: str, lag: int, high: bool, critical: bool) -> Case:
    series = healthy_ingestion() | {SLOT_LAG: flat(lag)}
    checks = [fires("ReplicationSlotLagHigh", Fired(SLOT_LABELS)) if high else quiet("ReplicationSlotLagHigh"),
              fires("ReplicationSlotLagCritical", Fired(SLOT_LABELS)) if critical else quiet("ReplicationSlotLagCritical")]
    return Case(name, series, tuple(checks))


def ingestion_cases() -> list[Case]:
    healthy = healthy_ingestion()
    cases = [Case("ingestion healthy: no alert fires", healthy, tuple(quiet(a) for a in INGESTION_ALERTS),
                  (Expr(alerts.LATENCY_RECORD, 10, {alerts.LATENCY_RECORD: 47}), limit_records(INGESTION_LIMITS_MIB)))]

    # Connectors and tasks. A paused connector's tasks are paused too.
    paused = without(healthy, connector_status(SOURCE, "running"), task_status(SOURCE, "running"))
    paused |= {connector_status(SOURCE, "paused"): flat(1), task_status(SOURCE, "paused"): flat(1)}
    cases.append(Case("source connector paused", paused, (
        fires("ConnectorNotRunning", Fired(rule={"connector": SOURCE})),
        fires("ConnectorTaskNotRunning", Fired(task_labels(SOURCE, "paused"))))))
    cases.append(Case("connectors' series missing (worker not scraped)",
                      without(healthy, "kafka_connect_connector_status", "kafka_connect_task_status"), (
                          fires("ConnectorNotRunning", Fired(rule={"connector": SOURCE}), Fired(rule={"connector": SINK})),
                          quiet("ConnectorTaskNotRunning"))))
    cases.append(Case("sink connector missing", without(healthy, connector_status(SINK, "running"), task_status(SINK, "running")),
                      (fires("ConnectorNotRunning", Fired(rule={"connector": SINK})),)))
    failed = without(healthy, task_status(SOURCE, "running")) | {task_status(SOURCE, "failed"): flat(1)}
    cases.append(Case("source task failed, connector running", failed, (
        fires("ConnectorTaskNotRunning", Fired(task_labels(SOURCE, "failed"))), quiet("ConnectorNotRunning"))))

    # The slot: lag thresholds at 50% and 80% of max_slot_wal_keep_size, from the config.
    half, most = KEEP_BYTES * 0.5, KEEP_BYTES * 0.8
    below = lambda x: int(x) - 1 if float(x).is_integer() else int(x)  # noqa: E731 - largest int < x
    above = lambda x: int(x) + 1  # noqa: E731 - smallest int > x
    lag_below_half = slot_lag_case("slot lag just below 50%", below(half), False, False)
    # Another slot's lag is not this slot's.
    lag_below_half.series[selector("pg_replication_slots_pg_wal_lsn_diff",
                                   {**SLOT_LABELS, "slot_name": "other_slot"})] = flat(KEEP_BYTES)
    cases += [lag_below_half,
              slot_lag_case("slot lag just above 50%", above(half), True, False),
              slot_lag_case("slot lag just below 80%", below(most), True, False),
              slot_lag_case("slot lag just above 80%", above(most), True, True)]
    cases.append(Case("slot inactive", healthy | {SLOT_ACTIVE: flat(0)},
                      (fires("ReplicationSlotInactive", Fired(SLOT_LABELS)),)))
    cases.append(Case("slot active", healthy, (quiet("ReplicationSlotInactive"),)))
    reserved = selector("pg_replication_slots_wal_status", wal_status_labels("reserved"))
    for status, fire in (("lost", True), ("unreserved", True), ("extended", False)):
        series = without(healthy, reserved) | {selector("pg_replication_slots_wal_status", wal_status_labels(status)): flat(1)}
        check = fires("ReplicationSlotLost", Fired(wal_status_labels(status))) if fire else quiet("ReplicationSlotLost")
        cases.append(Case(f"slot wal_status {status}", series, (check,)))
    # The exporter up, PostgreSQL refusing it: pg_up 0 and no slot series.
    cases.append(Case("exporter cannot log in", without(healthy, "pg_replication_slots", "pg_up") | {
        selector("pg_up", EXPORTER): flat(0)}, (fires("PostgresExporterDown", Fired(EXPORTER)),)))

    # Kafka.
    cases.append(Case("under-replicated partitions", healthy | broker_series(UNDER_REPLICATED, [2, 1, 0]),
                      (fires("KafkaUnderReplicatedPartitions", Fired(value=3)),)))
    cases.append(Case("partitions under min ISR", healthy | broker_series(UNDER_MIN_ISR, [0, 1, 0]),
                      (fires("KafkaUnderMinIsr", Fired(value=1)),)))
    cases.append(Case("offline partitions (on the active controller)", healthy | broker_series(OFFLINE, [4, 0, 0]),
                      (fires("KafkaOfflinePartitions", Fired(value=4)),)))
    cases.append(Case("no active controller", healthy | broker_series(ACTIVE_CONTROLLERS, [0, 0, 0]),
                      (fires("KafkaNoActiveController", Fired(value=0)),)))
    cases.append(Case("two active controllers", healthy | broker_series(ACTIVE_CONTROLLERS, [1, 1, 0]),
                      (fires("KafkaNoActiveController", Fired(value=2)),)))
    cases.append(Case("one active controller, on another broker", healthy | broker_series(ACTIVE_CONTROLLERS, [0, 0, 1]),
                      (quiet("KafkaNoActiveController"),)))

    # The sink's lag: 10, 15, 20, ... Both ranges hold two samples from 1m; at 16m the minimum over
    # (1m, 16m] is the 2m sample, 20.
    cases.append(Case("sink lag growing", healthy | {SINK_LAG: f"10+5x{SERIES_MINUTES}"},
                      (fires("SinkLagGrowing", Fired(SINK_CLIENT, value=10 + 5 * 2), since=1),)))
    cases.append(Case("sink lag high but constant", healthy | {SINK_LAG: flat(50_000)}, (quiet("SinkLagGrowing"),)))

    # Two tasks of the sink send 2 and 1 records to the DLQ at 2m; the source's counter stays 0.
    dlq = healthy | {selector(DLQ, {**WORKER, "connector": SINK, "task": "0"}): f"0 0 2x{SERIES_MINUTES - 2}",
                     selector(DLQ, {**WORKER, "connector": SINK, "task": "1"}): f"0 0 1x{SERIES_MINUTES - 2}"}
    cases.append(Case("records sent to the dead-letter queue", dlq,
                      (fires("DeadLetterQueueNotEmpty", Fired({"connector": SINK}, value=3), since=2),)))
    cases.append(Case("dead-letter queue empty", healthy, (quiet("DeadLetterQueueNotEmpty"),)))

    # Capture latency: the recording rule sums the three inputs; the target is 500 ms, exclusive.
    target_ms = alerts.LATENCY_TARGET_MS
    assert target_ms == 500  # the product description's target
    cases.append(Case("capture latency 501 ms", healthy | latency_series(480, 15, 6),
                      (fires("CdcLatencyAboveTarget", Fired(value=501)),),
                      (Expr(alerts.LATENCY_RECORD, 5, {alerts.LATENCY_RECORD: 501}),)))
    cases.append(Case("capture latency 500 ms", healthy | latency_series(480, 15, 5), (quiet("CdcLatencyAboveTarget"),),
                      (Expr(alerts.LATENCY_RECORD, QUIET_AT, {alerts.LATENCY_RECORD: 500}),)))
    # An idle producer's averages are NaN (the agent exports them as such): they add nothing.
    idle = healthy | latency_series(501, 15, 6)
    idle |= {key: " ".join(["NaN"] * (SERIES_MINUTES + 1)) for key in idle if key.startswith((LATENCY_INPUTS[1], LATENCY_INPUTS[2]))}
    cases.append(Case("capture latency 501 ms, idle producer", idle, (fires("CdcLatencyAboveTarget", Fired(value=501)),),
                      (Expr(alerts.LATENCY_RECORD, 5, {alerts.LATENCY_RECORD: 501}),)))

    # Memory: one broker's RSS at 95% of its container's limit (682Mi), the others at 80%.
    kafka_mib = INGESTION.kafka.memory_mib
    rss = healthy | {selector("process_resident_memory_bytes", b): flat((0.95 if i == 1 else 0.8) * kafka_mib * MIB)
                     for i, b in enumerate(BROKERS)}
    cases.append(Case("broker RSS at 95% of its limit", rss, (fires("JvmProcessMemoryNearLimit", Fired(
        {"app": KAFKA, "pod": BROKERS[1]["pod"]})),), (limit_records(INGESTION_LIMITS_MIB),)))
    cases.append(Case("every RSS at 80% of its limit", healthy | {
        selector("process_resident_memory_bytes", labels): flat(0.8 * INGESTION_LIMITS_MIB[labels["app"]] * MIB)
        for labels in INGESTION_JVMS}, (quiet("JvmProcessMemoryNearLimit"),)))
    near = healthy | cadvisor(NS, BROKERS[2]["pod"], KAFKA, kafka_mib, 0.95)
    near |= cadvisor("other-namespace", "app-0", "app", 512, 0.99)  # not this layer's
    cases.append(Case("container working set at 95% of its limit", near,
                      (fires("ContainerMemoryNearLimit", Fired({"pod": BROKERS[2]["pod"], "container": KAFKA})),)))
    cases.append(Case("container working sets at 85%, another namespace's at 99%",
                      healthy | cadvisor(NS, BROKERS[2]["pod"], KAFKA, kafka_mib, 0.85)
                      | cadvisor("other-namespace", "app-0", "app", 512, 0.99), (quiet("ContainerMemoryNearLimit"),)))
    connect_mib = INGESTION_LIMITS_MIB[CONNECT]
    cases.append(Case("worker heap at 95%", healthy | jvm(WORKER, connect_mib, heap=0.95),
                      (fires("JvmHeapHigh", Fired({"app": CONNECT, "pod": WORKER["pod"]})),)))
    cases.append(Case("worker heap at 85%", healthy | jvm(WORKER, connect_mib, heap=0.85), (quiet("JvmHeapHigh"),)))

    # A target down: its JVM's series are gone with it.
    down = without(healthy, *(s for s in healthy if f'pod="{REGISTRY_POD["pod"]}"' in s and not s.startswith("container_")))
    down[selector("up", REGISTRY_POD)] = flat(0)
    cases.append(Case("schema registry not answering", down, (fires("ScrapeTargetDown", Fired(REGISTRY_POD)),)))
    return cases


BNS = BATCH.namespace
HISTORY_POD = target(BNS, HISTORY, "spark-history-server-5b7c9d8f6-k2lmn")
HISTORY_MIB = BATCH_LIMITS_MIB[HISTORY]


def healthy_batch() -> dict[str, str]:
    series = {selector("up", HISTORY_POD): flat(1), selector("up", SELF): flat(1)}
    # A Spark driver is scraped by its own job, with its application's name as app.
    series[selector("up", {"job": prometheus.SPARK_DRIVER_JOB, "instance": "10.244.1.7:4040", "app": "spark-pi",
                           "pod": "spark-pi-driver", "namespace": BNS})] = flat(1)
    series |= jvm(HISTORY_POD, HISTORY_MIB)
    series |= cadvisor(BNS, HISTORY_POD["pod"], HISTORY, HISTORY_MIB, 0.6)
    return series


def batch_cases() -> list[Case]:
    healthy = healthy_batch()
    up = selector("up", HISTORY_POD)
    gone = without(healthy, *(s for s in healthy if f'pod="{HISTORY_POD["pod"]}"' in s and not s.startswith("container_")))
    return [
        Case("batch healthy: no alert fires", healthy, tuple(quiet(a) for a in BATCH_ALERTS),
             (limit_records(BATCH_LIMITS_MIB),)),
        Case("history server not answering", gone | {up: flat(0)}, (
            fires("SparkHistoryServerDown", Fired()), fires("ScrapeTargetDown", Fired(HISTORY_POD))))
        ,
        # No pod, no target: up{app="spark-history-server"} is missing.
        Case("history server not scraped at all", gone, (
            fires("SparkHistoryServerDown", Fired()), quiet("ScrapeTargetDown"))),
        Case("history server RSS at 95% of its limit", healthy | jvm(HISTORY_POD, HISTORY_MIB, rss=0.95),
             (fires("JvmProcessMemoryNearLimit", Fired({"app": HISTORY, "pod": HISTORY_POD["pod"]})),),
             (limit_records(BATCH_LIMITS_MIB),)),
        Case("history server RSS at 80% of its limit", healthy | jvm(HISTORY_POD, HISTORY_MIB, rss=0.8),
             (quiet("JvmProcessMemoryNearLimit"),)),
        Case("history server heap at 95%", healthy | jvm(HISTORY_POD, HISTORY_MIB, heap=0.95),
             (fires("JvmHeapHigh", Fired({"app": HISTORY, "pod": HISTORY_POD["pod"]})),)),
        Case("history server heap at 85%", healthy | jvm(HISTORY_POD, HISTORY_MIB, heap=0.85), (quiet("JvmHeapHigh"),)),
        Case("history server working set at 95% of its limit",
             healthy | cadvisor(BNS, HISTORY_POD["pod"], HISTORY, HISTORY_MIB, 0.95)
             | cadvisor(NS, "kafka-0", KAFKA, INGESTION.kafka.memory_mib, 0.99),
             (fires("ContainerMemoryNearLimit", Fired({"pod": HISTORY_POD["pod"], "container": HISTORY})),)),
        Case("history server working set at 85%, the ingestion layer's at 99%",
             healthy | cadvisor(BNS, HISTORY_POD["pod"], HISTORY, HISTORY_MIB, 0.85)
             | cadvisor(NS, "kafka-0", KAFKA, INGESTION.kafka.memory_mib, 0.99), (quiet("ContainerMemoryNearLimit"),)),
    ]


CASES = {"ingestion": ingestion_cases(), "batch": batch_cases()}


def suite_document(layer_name: str, cases: list[Case]) -> tuple[Suite, dict[str, Any]]:
    suite = Suite(LAYERS[layer_name])
    (rules_file,) = rendered(suite.layer)[0]
    return suite, suite.document(cases, rules_file)


@pytest.mark.parametrize("layer_name, case", [pytest.param(layer, case, id=f"{layer}: {case.name}")
                                              for layer, cases in CASES.items() for case in cases])
def test_promtool_unit_test(promtool, layer_name, case, tmp_path):
    _, document = suite_document(layer_name, [case])
    result = promtool_test(promtool, LAYERS[layer_name], document, tmp_path)
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)


# ---- 3. every alert: its labels and annotations, and a unit test --------------------------------

@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS)
def test_every_alert_has_a_severity_a_summary_and_a_runbook(layer):
    rules = [rule for group in layer.groups for rule in group["rules"] if "alert" in rule]
    assert rules
    for rule in rules:
        assert str(rule.get("labels", {}).get("severity", "")).strip(), f"{rule['alert']}: no severity"
        for key in ("summary", "runbook"):
            assert str(rule.get("annotations", {}).get(key, "")).strip(), f"{rule['alert']}: no {key}"


@pytest.mark.parametrize("layer_name", CASES)
def test_every_alert_rule_has_a_firing_and_a_quiet_unit_test(layer_name):
    suite, _ = suite_document(layer_name, CASES[layer_name])
    names = {rule["alert"] for rule in suite.alert_rules}
    unfired = [(rule["alert"], rule["labels"]) for i, rule in enumerate(suite.alert_rules) if i not in suite.fired_rules]
    assert not unfired, f"alert rules of the {layer_name} layer without a case where they fire: {unfired}"
    assert {suite.alert_rules[i]["alert"] for i in suite.fired_rules} == names
    assert suite.quiet_alerts == names, (f"alerts of the {layer_name} layer without a case where they must not "
                                         f"fire: {sorted(names - suite.quiet_alerts)}")


# ---- 4. the harness fails on a wrong expectation -------------------------------------------------

def _firing(group: dict[str, Any]) -> dict[str, Any]:
    (test,) = [t for t in group["alert_rule_test"] if t["exp_alerts"]]
    return test


def _earlier(group: dict[str, Any]) -> None:
    """Expect the alert one evaluation before its `for:` has elapsed."""
    firing = _firing(group)
    group["alert_rule_test"] = [t for t in group["alert_rule_test"] if t is firing or t["exp_alerts"]]
    firing["eval_time"] = f"{int(firing['eval_time'][:-1]) - 1}m"


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], key: str, change: Callable[[Any], Any]):
    def mutate(group: dict[str, Any]) -> None:
        target_ = path(group)
        target_[key] = change(target_[key])
    return mutate


# Each mutation, and what promtool's report must name (so it failed on the mutation, not on the file).
ALERT_REPORT, RECORD_REPORT = "alertname: ScrapeTargetDown", f'expr: "{alerts.LATENCY_RECORD}"'
MUTATIONS = {
    "an annotation differs": _set(lambda g: _firing(g)["exp_alerts"][0]["exp_annotations"], "summary",
                                  lambda s: s + " (not the rule's text)"),
    "a label differs": _set(lambda g: _firing(g)["exp_alerts"][0]["exp_labels"], "pod", lambda _: "kafka-9"),
    "a label is missing": lambda g: _firing(g)["exp_alerts"][0]["exp_labels"].pop("severity"),
    "an extra label": _set(lambda g: _firing(g)["exp_alerts"][0], "exp_labels", lambda l: {**l, "team": "data"}),
    "no alert where one fires": _set(_firing, "exp_alerts", lambda _: []),
    "firing before for: elapsed": _earlier,
    "a recording rule's value differs": _set(lambda g: g["promql_expr_test"][0]["exp_samples"][0], "value",
                                             lambda v: v + 1),
}
BASELINE = Case("schema registry not answering (baseline for the mutations)",
                {**{k: v for k, v in healthy_ingestion().items() if REGISTRY_POD["pod"] not in k or k.startswith("container_")},
                 selector("up", REGISTRY_POD): flat(0), **latency_series(480, 15, 6)},
                (fires("ScrapeTargetDown", Fired(REGISTRY_POD)), quiet("KafkaNoActiveController")),
                (Expr(alerts.LATENCY_RECORD, 5, {alerts.LATENCY_RECORD: 501}),))


@pytest.mark.parametrize("mutation", [None, *MUTATIONS], ids=["unchanged", *MUTATIONS])
def test_promtool_fails_a_wrong_expectation(promtool, mutation, tmp_path):
    _, document = suite_document("ingestion", [BASELINE])
    if mutation is None:
        result = promtool_test(promtool, LAYERS["ingestion"], document, tmp_path)
        assert result.returncode == 0, output(result)
        return
    MUTATIONS[mutation](document["tests"][0])
    result = promtool_test(promtool, LAYERS["ingestion"], document, tmp_path)
    assert result.returncode != 0, f"promtool accepted a wrong expectation ({mutation}):\n{output(result)}"
    report = RECORD_REPORT if mutation == "a recording rule's value differs" else ALERT_REPORT
    reported = result.stdout + result.stderr  # promtool writes a failed test to stderr
    assert "FAILED" in reported and report in reported, output(result)
