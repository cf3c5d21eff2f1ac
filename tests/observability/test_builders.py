"""The monitoring builders and their wiring: the JMX agent in every JVM (and the init container
that refuses a wrong jar), PostgreSQL's exporter, each layer's Prometheus, the NetworkPolicies and
RBAC that let it scrape, the operator objects, the dashboards' ConfigMaps and the config checks.

Pure tests and the whole program under mocks (tests/program.py); the alert rules themselves are
promtool's (test_alert_rules.py), the dashboards' queries test_dashboards.py's."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from components.batch import spark
from components.batch.config import SparkConfig
from components.cloud.access import S3Endpoint
from components.config import ConfigError, StackConfig, parse_stack_config
from components.config_types import PRIVATE_NETWORKS
from components.ingestion import layer as ingestion_layer
from components.ingestion import postgres
from components.ingestion.config import PostgresConfig
from components.observability import alerts, dashboards, jmx, monitoring, postgres_exporter, prometheus
from components.observability.config import JMX_EXPORTER_SHA256, JMX_EXPORTER_VERSION, JmxExporterConfig, MonitoringConfig, \
    PrometheusConfig
from components.quantities import parse_mib
from tests.program import DEFAULT_CONFIG, Program, merged, run_program

NAMESPACE = {"ingestion": "data-ingestion", "batch": "batch-analytics"}
NAME_LABEL = "app.kubernetes.io/name"
PROMETHEUS_PEER = {"podSelector": {"matchLabels": {NAME_LABEL: prometheus.APP}}}
# Every JVM the program runs: (layer, kind, name, the env var its start script passes to the JVM,
# whether its builder annotates the pod with the rules' digest).
JVMS = [
    ("ingestion", "StatefulSet", "kafka", "KAFKA_OPTS", True),
    ("ingestion", "Deployment", "kafka-connect", "KAFKA_OPTS", True),
    ("ingestion", "Deployment", "schema-registry", "SCHEMA_REGISTRY_OPTS", True),
    ("batch", "Deployment", "spark-history-server", "SPARK_DAEMON_JAVA_OPTS", False),
]
# Every metrics endpoint: (layer, app, port).
METRICS = [("ingestion", "kafka", 9404), ("ingestion", "kafka-connect", 9404), ("ingestion", "schema-registry", 9404),
           ("ingestion", "postgres", 9187), ("batch", "spark-history-server", 9404), ("batch", "spark-driver", 4040)]
OPERATOR_CONFIG = {layer: {"monitoring": {"prometheus": {"enabled": False}, "prometheusOperator": True}}
                   for layer in NAMESPACE}
# Ingestion without its Prometheus, and neither layer with a dashboard.
LEAN_CONFIG = {"ingestion": {"monitoring": {"prometheus": {"enabled": False}, "dashboards": False}},
               "batch": {"monitoring": {"dashboards": False}}}


# ---- the program under mocks, three ways ---------------------------------------------------------

@pytest.fixture(scope="module")
def default() -> Program:
    return run_program()


@pytest.fixture(scope="module")
def operator() -> Program:
    return run_program(OPERATOR_CONFIG)


@pytest.fixture(scope="module")
def lean() -> Program:
    return run_program(LEAN_CONFIG)


def stack_config(config: dict[str, Any]) -> StackConfig:
    """The config run_program() gives the program."""
    return parse_stack_config(merged(DEFAULT_CONFIG, config))


def in_layer(program: Program, kind: str, layer: str) -> list[dict[str, Any]]:
    return [r.inputs for r in program.of_kind(kind) if r.inputs["metadata"].get("namespace") == NAMESPACE[layer]]


def find(program: Program, kind: str, name: str, layer: str) -> Optional[dict[str, Any]]:
    found = [o for o in in_layer(program, kind, layer) if o["metadata"]["name"] == name]
    assert len(found) <= 1, f"{len(found)} {kind}s {name} in {layer}"
    return found[0] if found else None


def one(program: Program, kind: str, name: str, layer: str) -> dict[str, Any]:
    found = find(program, kind, name, layer)
    assert found is not None, f"no {kind} {name} in {layer}"
    return found


def workloads(program: Program, layer: str) -> list[dict[str, Any]]:
    return in_layer(program, "StatefulSet", layer) + in_layer(program, "Deployment", layer)


def pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mount_path(container: dict[str, Any], volume: str) -> str:
    (path,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume]
    return path


def volume_named(pod: dict[str, Any], name: str) -> dict[str, Any]:
    (volume,) = [v for v in pod["volumes"] if v["name"] == name]
    return volume


def ingress_rules(program: Program, layer: str, app: str) -> list[dict[str, Any]]:
    """Every ingress rule of the layer's NetworkPolicies that select `app`'s pods."""
    return [rule for policy in in_layer(program, "NetworkPolicy", layer)
            if policy["spec"]["podSelector"].get("matchLabels", {}).get(NAME_LABEL) == app
            for rule in policy["spec"].get("ingress", [])]


def admits(rules: list[dict[str, Any]], peer: dict[str, Any], port: int) -> bool:
    return any(peer in rule["from"] and {"protocol": "TCP", "port": port} in rule["ports"] for rule in rules)


def operator_peer(namespace: str = "monitoring") -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def mentions_prometheus_pods(policy: dict[str, Any]) -> bool:
    return PROMETHEUS_PEER["podSelector"] == policy["spec"]["podSelector"] or PROMETHEUS_PEER in [
        peer for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", [])
        for peer in rule.get("from", []) + rule.get("to", [])]


# ---- 1. the JMX agent -----------------------------------------------------------------------------

def test_agent_option_loads_the_jar_on_the_port_with_the_rules():
    assert jmx.agent_option() == \
        "-javaagent:/opt/jmx-exporter/jmx_prometheus_javaagent.jar=9404:/etc/jmx-exporter/rules.yaml"
    assert jmx.agent_option("/r/x.yaml", 1234, "/a/agent.jar") == "-javaagent:/a/agent.jar=1234:/r/x.yaml"


def test_instrument_appends_the_agent_to_the_first_container_only_and_copies_the_pod():
    main = {"name": "jvm", "ports": [{"name": "http", "containerPort": 8080}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    sidecar = {"name": "sidecar", "ports": [{"name": "x", "containerPort": 1}]}
    pod = {"serviceAccountName": "jvm", "initContainers": [{"name": "first"}], "containers": [main, sidecar],
           "volumes": [{"name": "data", "emptyDir": {}}]}
    before = copy.deepcopy(pod)
    config = JmxExporterConfig()

    out = jmx.instrument(pod, config, "jvm-rules", 1234)

    assert pod == before
    assert out["serviceAccountName"] == "jvm"
    assert [c["name"] for c in out["initContainers"]] == ["first", "jmx-exporter"]
    assert out["initContainers"][1] == jmx.init_container(config, 1234)
    assert out["volumes"] == [{"name": "data", "emptyDir": {}},
                              {"name": "jmx-exporter", "emptyDir": {"sizeLimit": "16Mi"}},
                              {"name": "jmx-exporter-rules", "configMap": {"name": "jvm-rules"}}]
    first, second = out["containers"]
    assert first["ports"] == [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9404}]
    assert first["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "jmx-exporter", "mountPath": "/opt/jmx-exporter", "readOnly": True},
        {"name": "jmx-exporter-rules", "mountPath": "/etc/jmx-exporter", "readOnly": True}]
    assert second == sidecar


def test_instrument_a_pod_without_init_containers_ports_or_volumes():
    out = jmx.instrument({"containers": [{"name": "jvm"}]}, JmxExporterConfig(), "rules", 1000)
    assert [c["name"] for c in out["initContainers"]] == ["jmx-exporter"]
    assert out["containers"][0]["ports"] == [{"name": "metrics", "containerPort": 9404}]
    assert [v["name"] for v in out["volumes"]] == ["jmx-exporter", "jmx-exporter-rules"]


def test_the_download_container_writes_the_agent_dir_as_the_pods_user():
    config = JmxExporterConfig(download_image="curlimages/curl:8.11.1")
    init = jmx.init_container(config, 4321)
    assert init["image"] == "curlimages/curl:8.11.1"
    assert init["securityContext"]["runAsUser"] == 4321 and init["securityContext"]["allowPrivilegeEscalation"] is False
    assert init["volumeMounts"] == [{"name": "jmx-exporter", "mountPath": posixpath.dirname(jmx.AGENT_JAR)}]
    assert init["command"][:2] == ["sh", "-c"] and init["command"][2] == jmx.download_script(config)
    limits = init["resources"]
    assert limits["requests"]["memory"] == limits["limits"]["memory"] == "64Mi"


@pytest.mark.parametrize("layer, kind, name, jvm_env, annotated", JVMS, ids=[j[2] for j in JVMS])
def test_every_jvm_serves_its_curated_metrics(default, layer, kind, name, jvm_env, annotated):
    workload = one(default, kind, name, layer)
    pod = pod_of(workload)
    container = pod["containers"][0]
    assert container["name"] == name
    assert {"name": "metrics", "containerPort": 9404} in container["ports"]
    assert [c["name"] for c in pod["initContainers"]][-1] == "jmx-exporter"

    # The JVM's flag names a jar the init container puts on a volume the JVM mounts, the port
    # declared as `metrics`, and a rules file of the ConfigMap the JVM mounts.
    option = env_of(container)[jvm_env]
    assert jmx.agent_option() in option.split()
    jar, port, rules_file = re.fullmatch(r"-javaagent:([^=]+)=(\d+):(\S+)", jmx.agent_option()).groups()
    assert int(port) == 9404
    assert posixpath.dirname(jar) == mount_path(container, jmx.AGENT_VOLUME)
    assert volume_named(pod, jmx.AGENT_VOLUME)["emptyDir"]
    rules_dir, rules_key = posixpath.split(rules_file)
    assert rules_dir == mount_path(container, jmx.RULES_VOLUME)
    rules_map = one(default, "ConfigMap", volume_named(pod, jmx.RULES_VOLUME)["configMap"]["name"], layer)
    assert rules_map["data"] == {rules_key: jmx.rules_text(name)}
    assert yaml.safe_load(rules_map["data"][rules_key]) == jmx.rules_document(name)

    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    if annotated:
        assert annotations["datapipe.io/metrics-rules-sha256"] == hashlib.sha256(
            jmx.rules_text(name).encode()).hexdigest()


def test_no_other_container_starts_the_agent(default):
    """The agent binds 9404: a second JVM in the pod with the same flag would fail to start."""
    for layer in NAMESPACE:
        for workload in workloads(default, layer):
            pod = pod_of(workload)
            for container in pod.get("initContainers", []) + pod["containers"][1:]:
                assert not any("-javaagent" in str(v) for v in env_of(container).values()), \
                    (workload["metadata"]["name"], container["name"])


def test_kafka_formats_its_storage_without_the_agent():
    from components.ingestion import kafka
    assert "KAFKA_OPTS= " in kafka.format_storage_command()
    assert kafka.START_SCRIPT.index("KAFKA_OPTS= ") < kafka.START_SCRIPT.index("kafka-server-start.sh")


# ---- 2. the download script refuses a wrong jar ---------------------------------------------------

FAKE_CURL = """#!/bin/sh
# curl -fsSL -o <path> <url>: writes $FAKE_PAYLOAD to <path>, logs the URL, exits $FAKE_EXIT.
out=""
url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
echo "$url" >> "$CURL_LOG"
cat "$FAKE_PAYLOAD" > "$out"
exit "${FAKE_EXIT:-0}"
"""


def run_download(tmp_path: Path, config: JmxExporterConfig, payload: bytes, curl_exit: int = 0):
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text(FAKE_CURL)
    curl.chmod(0o755)
    (tmp_path / "payload").write_bytes(payload)
    script = jmx.download_script(config)
    assert script.count(jmx.AGENT_DIR) >= 2  # the download and the final path are both in the agent dir
    script = script.replace(jmx.AGENT_DIR, str(agent_dir))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PAYLOAD": str(tmp_path / "payload"),
           "CURL_LOG": str(tmp_path / "curl.log"), "FAKE_EXIT": str(curl_exit)}
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    jar = agent_dir / posixpath.basename(jmx.AGENT_JAR)
    return result, jar, (tmp_path / "curl.log").read_text().split()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_installs_a_jar_with_the_pinned_digest(tmp_path):
    payload = b"PK\x03\x04 the agent, as pinned"
    config = JmxExporterConfig(version="1.0.1", sha256=digest(payload))
    result, jar, urls = run_download(tmp_path, config, payload)
    assert result.returncode == 0, result.stderr
    assert jar.read_bytes() == payload
    assert urls == [jmx.agent_url("1.0.1")]
    assert urls[0] == ("https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/1.0.1/"
                       "jmx_prometheus_javaagent-1.0.1.jar")


def test_download_of_another_version_fetches_that_version(tmp_path):
    payload = b"another release"
    config = JmxExporterConfig(version="1.1.0", sha256=digest(payload))
    result, jar, urls = run_download(tmp_path, config, payload)
    assert result.returncode == 0, result.stderr
    assert urls == [jmx.agent_url("1.1.0")] and "/1.1.0/jmx_prometheus_javaagent-1.1.0.jar" in urls[0]
    assert jar.read_bytes() == payload


def test_download_refuses_a_jar_with_another_digest(tmp_path):
    payload = b"a tampered jar"
    config = JmxExporterConfig(version="1.0.1", sha256=digest(b"the real jar"))
    result, jar, _ = run_download(tmp_path, config, payload)
    assert result.returncode != 0
    assert "monitoring.jmxExporter.sha256" in result.stderr
    assert digest(payload) in result.stderr and config.sha256 in result.stderr
    assert not jar.exists()


def test_download_fails_when_curl_fails(tmp_path):
    config = JmxExporterConfig(version="1.0.1", sha256=digest(b"partial"))
    result, jar, _ = run_download(tmp_path, config, b"partial", curl_exit=22)
    assert result.returncode != 0
    assert not jar.exists()


# ---- 3. config -----------------------------------------------------------------------------------

def config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    return str(caught.value)


@pytest.mark.parametrize("layer", NAMESPACE)
def test_another_jmx_exporter_version_needs_its_own_digest(layer):
    message = config_error({layer: {"monitoring": {"jmxExporter": {"version": "1.1.0"}}}})
    assert f"datapipe:{layer}.monitoring.jmxExporter" in message and "sha256" in message
    pinned = parse_stack_config({layer: {"monitoring": {"jmxExporter": {"version": "1.1.0", "sha256": "ab" * 32}}}})
    assert getattr(pinned, layer).monitoring.jmx_exporter.sha256 == "ab" * 32


def test_the_default_version_may_take_another_digest():
    assert JmxExporterConfig(sha256="cd" * 32).version == JMX_EXPORTER_VERSION
    assert JmxExporterConfig().sha256 == JMX_EXPORTER_SHA256


@pytest.mark.parametrize("key, value", [("retention", "3 days"), ("retention", "1.5d"), ("scrapeInterval", "15sec"),
                                        ("scrapeInterval", "0s"), ("scrapeInterval", "")])
def test_a_bad_duration_is_named(key, value):
    message = config_error({"ingestion": {"monitoring": {"prometheus": {key: value}}}})
    assert f"datapipe:ingestion.monitoring.prometheus.{key}" in message and "not a duration" in message


@pytest.mark.parametrize("value", ["Monitoring", "kube_prometheus", "-monitoring", "a" * 64])
def test_operator_namespace_must_be_a_dns_label(value):
    message = config_error({"batch": {"monitoring": {"operatorNamespace": value}}})
    assert "datapipe:batch.monitoring.operatorNamespace" in message


def test_monitoring_is_counted_in_the_ingestion_budget_and_prometheus_only_when_enabled():
    ingestion = parse_stack_config({}).ingestion
    allocation = ingestion.memory_allocation_mib()
    assert allocation["postgres-exporter"] == 64 and allocation["prometheus"] == 320
    assert sum(allocation.values()) == 6142 <= ingestion.memory_budget_mib == 6144
    lean = parse_stack_config({"ingestion": {"monitoring": {"prometheus": {"enabled": False}}}}).ingestion
    assert lean.memory_allocation_mib() == {k: v for k, v in allocation.items() if k != "prometheus"}


def test_the_allocation_matches_the_monitoring_containers(default):
    for layer in NAMESPACE:
        by_service = default.outputs[f"{layer}Memory"]["byServiceMib"]
        container = pod_of(one(default, "Deployment", "prometheus", layer))["containers"][0]
        assert parse_mib(container["resources"]["limits"]["memory"]) == by_service["prometheus"]
    exporter = pod_of(one(default, "StatefulSet", "postgres", "ingestion"))["containers"][1]
    assert parse_mib(exporter["resources"]["limits"]["memory"]) == \
        default.outputs["ingestionMemory"]["byServiceMib"]["postgres-exporter"]


def test_without_its_prometheus_the_ingestion_layer_renders_none_of_it(lean, default):
    for kind in ("Deployment", "ServiceAccount", "Role", "RoleBinding", "Service"):
        assert find(lean, kind, "prometheus", "ingestion") is None, kind
        assert find(default, kind, "prometheus", "ingestion") is not None, kind
    for name in ("prometheus-config", "prometheus-rules"):
        assert find(lean, "ConfigMap", name, "ingestion") is None
    assert not [p["metadata"]["name"] for p in in_layer(lean, "NetworkPolicy", "ingestion")
                if mentions_prometheus_pods(p)]
    assert [p for p in in_layer(default, "NetworkPolicy", "ingestion") if mentions_prometheus_pods(p)]
    assert "prometheus" not in lean.outputs["ingestionMemory"]["byServiceMib"]
    assert lean.outputs["ingestionEndpoints"]["prometheusInCluster"] is None
    assert lean.outputs["ingestionMemory"]["limitsMib"] == 6142 - 320
    # The other layer keeps its own.
    assert find(lean, "Deployment", "prometheus", "batch") is not None


# ---- 4. the network: who may scrape what ----------------------------------------------------------

@pytest.mark.parametrize("layer, app, port", METRICS, ids=[m[1] for m in METRICS])
def test_the_layers_prometheus_may_reach_every_metrics_port(default, layer, app, port):
    assert admits(ingress_rules(default, layer, app), PROMETHEUS_PEER, port)


@pytest.mark.parametrize("layer", NAMESPACE)
def test_every_declared_metrics_port_is_open_to_prometheus(default, layer):
    """Derived from the pods, not the constants: a new `metrics` port is scraped only if admitted."""
    for workload in workloads(default, layer):
        app = workload["spec"]["template"]["metadata"]["labels"][NAME_LABEL]
        for container in pod_of(workload)["containers"]:
            for port in container.get("ports", []):
                if port["name"] == "metrics":
                    assert admits(ingress_rules(default, layer, app), PROMETHEUS_PEER, port["containerPort"]), \
                        (app, container["name"])


@pytest.mark.parametrize("layer", NAMESPACE)
def test_prometheus_egress_is_the_metrics_ports_and_the_api_server(default, layer):
    policy = one(default, "NetworkPolicy", "allow-egress-from-prometheus", layer)
    assert policy["spec"]["podSelector"] == PROMETHEUS_PEER["podSelector"]
    to_pods, to_blocks = set(), set()
    for rule in policy["spec"]["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["to"]:
            if "podSelector" in peer:
                to_pods |= {(peer["podSelector"]["matchLabels"][NAME_LABEL], port) for port in ports}
            else:
                assert "except" not in peer["ipBlock"]
                to_blocks |= {(peer["ipBlock"]["cidr"], port) for port in ports}
    assert to_pods == {(app, port) for lay, app, port in METRICS if lay == layer}
    assert to_blocks == {(cidr, port) for cidr in PRIVATE_NETWORKS for port in (443, 6443)}


@pytest.mark.parametrize("layer, app, port", METRICS, ids=[m[1] for m in METRICS])
def test_with_an_operator_its_namespace_may_reach_every_metrics_port(operator, layer, app, port):
    rules = ingress_rules(operator, layer, app)
    assert admits(rules, operator_peer(), port)
    assert not admits(rules, PROMETHEUS_PEER, port)


def test_the_operator_namespace_follows_the_config():
    program = run_program({"ingestion": {"monitoring": {"prometheusOperator": True, "operatorNamespace": "obs"}}})
    assert admits(ingress_rules(program, "ingestion", "kafka"), operator_peer("obs"), 9404)
    assert not admits(ingress_rules(program, "ingestion", "kafka"), operator_peer(), 9404)
    # Both scrapers: the layer's own Prometheus stays on by default.
    assert admits(ingress_rules(program, "ingestion", "kafka"), PROMETHEUS_PEER, 9404)
    assert not admits(ingress_rules(program, "batch", "spark-history-server"), operator_peer("obs"), 9404)


@pytest.mark.parametrize("layer", NAMESPACE)
def test_with_an_operator_only_no_prometheus_of_the_layer_remains(operator, layer):
    assert find(operator, "Deployment", "prometheus", layer) is None
    assert find(operator, "ServiceAccount", "prometheus", layer) is None
    assert not [p for p in in_layer(operator, "NetworkPolicy", layer) if mentions_prometheus_pods(p)]


def expected_groups(config: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    stack = stack_config(config)
    if layer == "ingestion":
        return ingestion_layer.alert_groups(stack.ingestion)
    batch = stack.batch
    return alerts.batch_groups(batch.namespace, {"spark-history-server": batch.history_server.memory_mib},
                               sum(stack.batch_memory_allocation_mib().values()), batch.memory_budget_mib)


@pytest.mark.parametrize("layer", NAMESPACE)
def test_with_an_operator_each_layer_has_a_pod_monitor_and_its_rules(operator, default, layer):
    rule = one(operator, "PrometheusRule", f"datapipe-{layer}", layer)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == expected_groups(OPERATOR_CONFIG, layer)

    monitor = one(operator, "PodMonitor", f"datapipe-{layer}", layer)
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE[layer]]}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert {"targetLabel": "job", "replacement": "datapipe"} in endpoint["relabelings"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "targetLabel": "app"} in \
        endpoint["relabelings"]
    # It selects every pod that declares a metrics port.
    for workload in workloads(operator, layer):
        template = workload["spec"]["template"]
        if any(p["name"] == "metrics" for c in template["spec"]["containers"] for p in c.get("ports", [])):
            assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), \
                workload["metadata"]["name"]
    # None without the operator.
    assert find(default, "PodMonitor", f"datapipe-{layer}", layer) is None
    assert find(default, "PrometheusRule", f"datapipe-{layer}", layer) is None


def test_with_an_operator_the_two_layers_recording_rules_write_distinct_series(operator):
    """One Prometheus (the operator's) evaluates both layers' PrometheusRules: a recorded series
    both layers write (same name, same labels) would take either layer's value, turn by turn."""
    writers: dict[tuple[str, frozenset], list[str]] = {}
    for layer in NAMESPACE:
        for group in one(operator, "PrometheusRule", f"datapipe-{layer}", layer)["spec"]["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    key = (rule["record"], frozenset(rule.get("labels", {}).items()))
                    writers.setdefault(key, []).append(layer)
    shared = {f"{name}{dict(labels)}": layers for (name, labels), layers in writers.items() if len(layers) > 1}
    assert not shared, f"series recorded by both layers' rules: {shared}"


def test_with_an_operator_the_spark_drivers_are_scraped_too(operator):
    """The batch dashboard reads job="spark-driver" (PrometheusServlet on the driver's UI port), and
    the NetworkPolicies open that port to the operator's namespace: its PodMonitors must scrape it."""
    assert admits(ingress_rules(operator, "batch", "spark-driver"), operator_peer(), spark.UI_PORT)
    endpoints = [endpoint for monitor in in_layer(operator, "PodMonitor", "batch")
                 for endpoint in monitor["spec"]["podMetricsEndpoints"]]
    driver = [e for e in endpoints if e.get("path", "").rstrip("/") == "/metrics/prometheus"]
    assert driver, f"no PodMonitor endpoint scrapes the drivers' /metrics/prometheus/: {endpoints}"
    assert any({"targetLabel": "job", "replacement": prometheus.SPARK_DRIVER_JOB}.items() <= r.items()
               for e in driver for r in e.get("relabelings", []))


# ---- 5. the layer's Prometheus --------------------------------------------------------------------

def prometheus_yml(program: Program, layer: str) -> dict[str, Any]:
    return yaml.safe_load(one(program, "ConfigMap", "prometheus-config", layer)["data"]["prometheus.yml"])


def job(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [j for j in config["scrape_configs"] if j["job_name"] == name]
    return found


@pytest.mark.parametrize("layer", NAMESPACE)
def test_prometheus_discovers_the_layers_metrics_ports(default, layer):
    config = prometheus_yml(default, layer)
    datapipe = job(config, "datapipe")
    assert datapipe["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE[layer]]}}]
    assert datapipe["relabel_configs"][0] == {"source_labels": ["__meta_kubernetes_pod_container_port_name"],
                                              "regex": "metrics", "action": "keep"}
    assert {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "target_label": "app"} in \
        datapipe["relabel_configs"]
    assert config["global"]["external_labels"] == {"layer": layer}
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "15s"


@pytest.mark.parametrize("layer", NAMESPACE)
def test_prometheus_reads_its_config_and_rules_where_the_pod_mounts_them(default, layer):
    deployment = one(default, "Deployment", "prometheus", layer)
    pod = pod_of(deployment)
    (container,) = pod["containers"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])

    (config_mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert args["config.file"] == config_mount["mountPath"]
    config_map = one(default, "ConfigMap", volume_named(pod, "config")["configMap"]["name"], layer)
    assert config_mount["subPath"] in config_map["data"]

    rules_map = one(default, "ConfigMap", volume_named(pod, "rules")["configMap"]["name"], layer)
    assert rules_map["data"] == {f"datapipe-{layer}.yaml": alerts.rules_text(expected_groups({}, layer))}
    for pattern in prometheus_yml(default, layer)["rule_files"]:
        directory, name = posixpath.split(pattern)
        assert directory == mount_path(container, "rules")
        assert all(fnmatch.fnmatch(file, name) for file in rules_map["data"])

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["datapipe.io/config-sha256"] == digest(config_map["data"]["prometheus.yml"].encode())


@pytest.mark.parametrize("layer, memory", [("ingestion", "320Mi"), ("batch", "512Mi")])
def test_prometheus_storage_and_memory(default, layer, memory):
    pod = pod_of(one(default, "Deployment", "prometheus", layer))
    (container,) = pod["containers"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert args["storage.tsdb.path"] == mount_path(container, "data")
    assert volume_named(pod, "data") == {"name": "data", "emptyDir": {"sizeLimit": "1024Mi"}}
    assert args["storage.tsdb.retention.size"] == "768MB"
    assert args["storage.tsdb.retention.time"] == "3d"
    resources = container["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == memory


def test_prometheus_follows_its_config():
    config = PrometheusConfig.model_validate({"storage": "2Gi", "memory": "400Mi", "retention": "7d",
                                              "scrapeInterval": "30s", "image": "prom/prometheus:v3.0.0"})
    objects = prometheus.manifests(config, "ns", "ingestion", {"a.yaml": "groups: []\n"})
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    pod = pod_of(deployment)
    (container,) = pod["containers"]
    assert container["image"] == "prom/prometheus:v3.0.0"
    assert "--storage.tsdb.retention.size=1536MB" in container["args"]
    assert "--storage.tsdb.retention.time=7d" in container["args"]
    assert volume_named(pod, "data")["emptyDir"]["sizeLimit"] == "2048Mi"
    assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"] == "400Mi"
    (config_map,) = [o for o in objects if o["metadata"]["name"] == "prometheus-config"]
    assert yaml.safe_load(config_map["data"]["prometheus.yml"])["global"]["scrape_interval"] == "30s"
    # A changed config or rules file rolls the pod.
    other = prometheus.manifests(PrometheusConfig(), "ns", "ingestion", {"a.yaml": "groups: []\n"})
    changed = prometheus.manifests(config, "ns", "ingestion", {"a.yaml": "groups: [{name: x, rules: []}]\n"})
    annotations = lambda objs: next(o for o in objs if o["kind"] == "Deployment")[  # noqa: E731
        "spec"]["template"]["metadata"]["annotations"]
    assert annotations(other)["datapipe.io/config-sha256"] != annotations(objects)["datapipe.io/config-sha256"]
    assert annotations(changed)["datapipe.io/rules-sha256"] != annotations(objects)["datapipe.io/rules-sha256"]


@pytest.mark.parametrize("layer", NAMESPACE)
def test_prometheus_may_only_read_the_layers_pods(default, layer):
    pod = pod_of(one(default, "Deployment", "prometheus", layer))
    assert pod["serviceAccountName"] == "prometheus" and pod["automountServiceAccountToken"] is True
    assert one(default, "ServiceAccount", "prometheus", layer)["automountServiceAccountToken"] is True
    role = one(default, "Role", "prometheus", layer)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    binding = one(default, "RoleBinding", "prometheus", layer)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prometheus"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NAMESPACE[layer]}]
    # The one pod of the layer with an API token besides the Spark driver's.
    tokens = {r.inputs["metadata"]["name"] for r in default.of_kind("ServiceAccount")
              if r.inputs["metadata"]["namespace"] == NAMESPACE[layer] and r.inputs["automountServiceAccountToken"]}
    assert tokens == ({"prometheus"} if layer == "ingestion" else {"prometheus", "spark-driver"})


def test_the_endpoints_name_each_layers_prometheus(default):
    assert default.outputs["ingestionEndpoints"]["prometheusInCluster"] == \
        "http://prometheus.data-ingestion.svc.cluster.local:9090"
    assert default.outputs["batchEndpoints"]["prometheusInCluster"] == \
        "http://prometheus.batch-analytics.svc.cluster.local:9090"
    service = one(default, "Service", "prometheus", "ingestion")
    assert service["spec"]["ports"][0]["port"] == prometheus.PORT and service["spec"]["type"] == "ClusterIP"


# ---- 6. PostgreSQL's exporter ---------------------------------------------------------------------

def postgres_pod(config: PostgresConfig = PostgresConfig()) -> dict[str, Any]:
    objects = postgres.manifests(config, ("users",), "ns", "ingestion")
    (statefulset,) = [o for o in objects if o["kind"] == "StatefulSet"]
    return pod_of(statefulset)


def test_the_exporter_is_a_sidecar_logging_in_over_tls_on_loopback():
    pod = postgres_pod(PostgresConfig(database="shop"))
    main, exporter = pod["containers"]
    assert (main["name"], exporter["name"]) == ("postgres", "postgres-exporter")
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9187}]
    assert "--web.listen-address=:9187" in exporter["args"]
    env = env_of(exporter)
    assert env["DATA_SOURCE_URI"] == "localhost:5432/shop?sslmode=require"
    assert env["DATA_SOURCE_USER"] == postgres_exporter.MONITOR_USER
    password_file = env["DATA_SOURCE_PASS_FILE"]
    assert posixpath.dirname(password_file) == mount_path(exporter, postgres_exporter.VOLUME)
    volume = volume_named(pod, postgres_exporter.VOLUME)
    assert volume["secret"]["secretName"] == postgres.SECRET_NAME
    assert volume["secret"]["items"] == [{"key": "monitor-password", "path": posixpath.basename(password_file)}]
    # Only its own password: not the admin's or the CDC user's volume.
    assert [m["name"] for m in exporter["volumeMounts"]] == [postgres_exporter.VOLUME]
    assert exporter["resources"]["requests"]["memory"] == exporter["resources"]["limits"]["memory"] == "64Mi"
    assert exporter["securityContext"]["runAsNonRoot"] is True


def test_no_container_of_postgres_has_a_password_in_its_env():
    for container in postgres_pod()["containers"]:
        for name, value in env_of(container).items():
            if re.search("PASS", name):
                assert name.endswith("_FILE") and value.startswith("/run/secrets/"), (container["name"], name)


def test_init_sql_creates_the_monitoring_role_from_a_psql_variable():
    sql = postgres.init_sql(PostgresConfig(), ("users", "orders"))
    user = postgres_exporter.MONITOR_USER
    assert re.search(rf"CREATE ROLE {user} WITH LOGIN .*PASSWORD :'monitor_password';", sql)
    assert f"GRANT pg_monitor TO {user};" in sql
    assert not re.search(r"PASSWORD\s+'", sql)  # never a literal
    assert not re.search(rf"GRANT (?!pg_monitor)\S+ .*TO {user}", sql)


def test_init_script_passes_the_monitor_password_from_the_secret_file(tmp_path):
    """Run INIT_SCRIPT with a fake psql: it gets `-v monitor_password=<the file's content>`."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "cdc-password").write_text("cdc-secret")
    (secrets / "monitor-password").write_text("monitor-secret")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    psql = bin_dir / "psql"
    psql.write_text('#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done > "$PSQL_ARGS"\n')
    psql.chmod(0o755)
    script = postgres.INIT_SCRIPT.replace(postgres.SECRETS_DIR, str(secrets))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PSQL_ARGS": str(tmp_path / "args"),
           "POSTGRES_USER": "postgres", "POSTGRES_DB": "datapipe"}
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert "monitor_password=monitor-secret" in args and "cdc_password=cdc-secret" in args
    assert args[args.index("monitor_password=monitor-secret") - 1] == "-v"
    assert args[args.index("-f") + 1] == postgres.INIT_SQL_PATH
    assert "monitor-secret" not in postgres.INIT_SCRIPT


def test_the_server_container_mounts_the_file_the_init_script_reads():
    pod = postgres_pod()
    main = pod["containers"][0]
    assert mount_path(main, "credentials") == postgres.SECRETS_DIR
    items = {i["path"] for i in volume_named(pod, "credentials")["secret"]["items"]}
    assert f"{postgres.SECRETS_DIR}/monitor-password" in postgres.INIT_SCRIPT and "monitor-password" in items


def test_the_monitor_password_is_a_generated_secret(default):
    (secret,) = [r for r in default.of_kind("Secret") if r.k8s_name == "postgres-credentials"]
    assert secret.inputs["stringData"]["monitor-password"] == "generated-ingestion-postgres-monitor-password"
    assert secret.secret_paths & {"stringData", "stringData.monitor-password"}
    assert [r for r in default.by_type("random:index/randomPassword:RandomPassword")
            if r.name == "ingestion-postgres-monitor-password"]
    for resource in default.resources:
        if resource.kind != "Secret" and not resource.type.startswith("random:"):
            assert "generated-ingestion-postgres-monitor-password" not in json.dumps(resource.inputs), resource.name
    # The rendered pod is the builder's.
    exporter = pod_of(one(default, "StatefulSet", "postgres", "ingestion"))["containers"][1]
    database = stack_config({}).ingestion.postgres.database
    assert env_of(exporter)["DATA_SOURCE_URI"] == f"localhost:5432/{database}?sslmode=require"


# ---- 7. Spark drivers ----------------------------------------------------------------------------

def test_spark_jobs_serve_their_metrics_on_the_ui_port():
    conf = spark.spark_conf(SparkConfig(), "lake", S3Endpoint("eu-west-1"), "file:///spark-events")
    assert conf.items() >= spark.METRICS_CONF.items()
    assert conf["spark.metrics.conf.*.sink.prometheusServlet.class"] == \
        "org.apache.spark.metrics.sink.PrometheusServlet"
    assert conf["spark.ui.port"] == str(spark.UI_PORT) == "4040"
    # The dashboard's metric names start with the namespace set here.
    assert dashboards.SPARK_DRIVER == f"metrics_{conf['spark.metrics.namespace']}_driver"


def test_the_batch_prometheus_scrapes_the_drivers_servlet(default):
    config = prometheus_yml(default, "batch")
    driver = job(config, prometheus.SPARK_DRIVER_JOB)
    assert driver["metrics_path"] == "/metrics/prometheus/"
    path = spark.METRICS_CONF["spark.metrics.conf.*.sink.prometheusServlet.path"]
    assert driver["metrics_path"].rstrip("/") == path
    assert driver["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["batch-analytics"]}}]
    keeps = {tuple(r["source_labels"]): r["regex"] for r in driver["relabel_configs"] if r.get("action") == "keep"}
    assert keeps == {("__meta_kubernetes_pod_label_spark_role",): "driver",
                     ("__meta_kubernetes_pod_container_port_number",): str(spark.UI_PORT)}
    assert not [j for j in prometheus_yml(default, "ingestion")["scrape_configs"]
                if j["job_name"] == prometheus.SPARK_DRIVER_JOB]
    # spark-submit jobs get the same sink.
    defaults = one(default, "ConfigMap", spark.DEFAULTS_CONFIG_MAP, "batch")["data"]["spark-defaults.conf"]
    for key, value in spark.METRICS_CONF.items():
        assert f"{key} {value}" in defaults.splitlines()


# ---- 8. dashboards -------------------------------------------------------------------------------

def dashboard_maps(program: Program, layer: str) -> list[dict[str, Any]]:
    return [c for c in in_layer(program, "ConfigMap", layer)
            if c["metadata"].get("labels", {}).get(monitoring.DASHBOARD_LABEL) == "1"]


@pytest.mark.parametrize("layer", NAMESPACE)
def test_each_layer_ships_its_dashboard_once(default, layer):
    (config_map,) = dashboard_maps(default, layer)
    assert config_map["metadata"]["name"] == f"datapipe-{layer}-dashboard"
    (key,) = config_map["data"]
    assert json.loads(config_map["data"][key]) == monitoring.layer_dashboard(layer, NAMESPACE[layer])


@pytest.mark.parametrize("layer", NAMESPACE)
def test_dashboards_false_leaves_them_out(lean, layer):
    assert dashboard_maps(lean, layer) == []


def test_monitoring_manifests_follow_the_switches():
    """What monitoring.manifests() creates for each combination of the switches."""
    def kinds(**settings):
        from components.observability.config import MonitoringConfig
        config = MonitoringConfig.model_validate(settings)
        return sorted((o["kind"], o["metadata"]["name"]) for o in
                      monitoring.manifests(config, "ns", "batch", [{"name": "g", "rules": []}], {"panels": []}))
    own = [("ConfigMap", "prometheus-config"), ("ConfigMap", "prometheus-rules"), ("Deployment", "prometheus"),
           ("Service", "prometheus")]
    board = [("ConfigMap", "datapipe-batch-dashboard")]
    crs = [("PodMonitor", "datapipe-batch"), ("PodMonitor", "datapipe-spark-driver"),
           ("PrometheusRule", "datapipe-batch")]
    assert kinds() == sorted(own + board)
    assert kinds(dashboards=False) == sorted(own)
    assert kinds(prometheus={"enabled": False}, prometheusOperator=True) == sorted(board + crs)
    assert kinds(prometheus={"enabled": False}, dashboards=False) == []
    labelled = monitoring.manifests(MonitoringConfig.model_validate(
        {"prometheus": {"enabled": False}, "prometheusOperator": True, "operatorLabels": {"release": "kps"},
         "dashboards": False}), "ns", "batch", [], {})
    assert all(o["metadata"]["labels"]["release"] == "kps" for o in labelled) and len(labelled) == 3
