"""The Prometheus JMX exporter java agent: how a pod gets it (an init container fetches the jar from
Maven Central and checks its SHA-256), the JVM flag that loads it, and one curated rules file per
service. Curated, not "every MBean": a broker exports thousands of MBeans, and each series costs
Prometheus memory that the layer's budget pays for.

The agent always exports the JVM's own metrics (memory pools, GC, threads, process RSS), whatever
the rules say; the rules add the service's MBeans. Names are lower-cased (`lowercaseOutputName`),
and every name the alerts and dashboards use is checked against a real broker and Connect worker
in tests/services/test_observability.py."""

from __future__ import annotations

from typing import Any

import yaml

from components import kube
from components.observability.config import JmxExporterConfig
from components.quoting import shell_word

PORT = 9404
PORT_NAME = "metrics"
AGENT_DIR = "/opt/jmx-exporter"
AGENT_JAR = f"{AGENT_DIR}/jmx_prometheus_javaagent.jar"
RULES_DIR = "/etc/jmx-exporter"
RULES_FILE = "rules.yaml"
AGENT_VOLUME = "jmx-exporter"
RULES_VOLUME = "jmx-exporter-rules"
DOWNLOAD_MEMORY_MIB = 64


def agent_url(version: str) -> str:
    return (f"https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/{version}/"
            f"jmx_prometheus_javaagent-{version}.jar")


def agent_option(rules_file: str = f"{RULES_DIR}/{RULES_FILE}", port: int = PORT, jar: str = AGENT_JAR) -> str:
    """The JVM flag: the agent serves /metrics on `port` (all interfaces) with the given rules."""
    return f"-javaagent:{jar}={port}:{rules_file}"


def download_script(config: JmxExporterConfig) -> str:
    jar = f"{AGENT_DIR}/.download.jar"
    return (f"set -eu\ncurl -fsSL -o {jar} {shell_word(agent_url(config.version))}\n"
            f'actual=$(sha256sum {jar} | cut -d" " -f1)\n'
            f'if [ "$actual" != {shell_word(config.sha256)} ]; then\n'
            f'  echo "datapipe: the SHA-256 of the JMX exporter agent {config.version} is $actual, not '
            f'{config.sha256} (monitoring.jmxExporter.sha256): not installed" >&2\n  exit 1\nfi\n'
            f"mv {jar} {AGENT_JAR}\n")


def init_container(config: JmxExporterConfig, uid: int) -> dict[str, Any]:
    return {
        "name": "jmx-exporter",
        "image": config.download_image,
        "command": ["sh", "-c", download_script(config)],
        "resources": kube.memory_resources(DOWNLOAD_MEMORY_MIB, "50m"),
        "securityContext": kube.restricted_security_context(uid),
        "volumeMounts": [{"name": AGENT_VOLUME, "mountPath": AGENT_DIR}],
    }


def volumes(rules_configmap: str) -> list[dict[str, Any]]:
    return [{"name": AGENT_VOLUME, "emptyDir": {"sizeLimit": "16Mi"}},
            {"name": RULES_VOLUME, "configMap": {"name": rules_configmap}}]


def mounts() -> list[dict[str, Any]]:
    return [{"name": AGENT_VOLUME, "mountPath": AGENT_DIR, "readOnly": True},
            {"name": RULES_VOLUME, "mountPath": RULES_DIR, "readOnly": True}]


def container_port() -> dict[str, Any]:
    return {"name": PORT_NAME, "containerPort": PORT}


def rules_configmap(meta: dict[str, Any], service: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {RULES_FILE: rules_text(service)}}


def _rule(pattern: str, name: str, labels: dict[str, str] | None = None, type_: str = "GAUGE",
          value: Any = None, help_: str | None = None) -> dict[str, Any]:
    # The exporter matches "domain<keys><>attribute: value" and anchors nothing: the ':' ends the
    # attribute's name, or Debezium's MilliSecondsBehindSourceP99 would match MilliSecondsBehindSource.
    rule: dict[str, Any] = {"pattern": pattern if ": " in pattern else pattern + ":", "name": name, "type": type_}
    if labels:
        rule["labels"] = labels
    if value is not None:
        rule["value"] = value
    if help_:
        rule["help"] = help_
    return rule


# Kafka brokers (KRaft, combined broker + controller nodes).
KAFKA_RULES = [
    _rule(r"kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|UnderMinIsrPartitionCount|"
          r"AtMinIsrPartitionCount|OfflineReplicaCount|PartitionCount|LeaderCount)><>Value",
          "kafka_server_replicamanager_$1"),
    _rule(r"kafka.server<type=ReplicaManager, name=(IsrShrinksPerSec|IsrExpandsPerSec)><>Count",
          "kafka_server_replicamanager_$1_total", type_="COUNTER"),
    # On the active controller only; the others report 0.
    _rule(r"kafka.controller<type=KafkaController, name=(ActiveControllerCount|OfflinePartitionsCount|"
          r"GlobalPartitionCount|GlobalTopicCount)><>Value", "kafka_controller_kafkacontroller_$1"),
    _rule(r"kafka.server<type=BrokerTopicMetrics, name=(BytesInPerSec|BytesOutPerSec|MessagesInPerSec|"
          r"FailedProduceRequestsPerSec|FailedFetchRequestsPerSec), topic=(.+)><>Count",
          "kafka_server_brokertopicmetrics_$1_total", {"topic": "$2"}, "COUNTER"),
    _rule(r"kafka.network<type=RequestMetrics, name=RequestsPerSec, request=(Produce|FetchConsumer|FetchFollower|"
          r"Metadata|OffsetCommit), version=([0-9]+)><>Count",
          "kafka_network_requestmetrics_requests_total", {"request": "$1", "version": "$2"}, "COUNTER"),
    _rule(r"kafka.network<type=RequestMetrics, name=TotalTimeMs, request=(Produce|FetchConsumer|FetchFollower)>"
          r"<>(50thPercentile|99thPercentile|Mean)", "kafka_network_requestmetrics_totaltimems",
          {"request": "$1", "quantile": "$2"}),
    _rule(r"kafka.server<type=KafkaRequestHandlerPool, name=RequestHandlerAvgIdlePercent><>OneMinuteRate",
          "kafka_server_requesthandler_avg_idle_ratio"),
    _rule(r"kafka.network<type=SocketServer, name=NetworkProcessorAvgIdlePercent><>Value",
          "kafka_network_processor_avg_idle_ratio"),
    _rule(r"kafka.log<type=LogFlushStats, name=LogFlushRateAndTimeMs><>99thPercentile",
          "kafka_log_flush_time_ms_p99"),
    _rule(r"kafka.server<type=raft-metrics><>(current-leader|current-epoch|high-watermark|commit-latency-avg)",
          "kafka_server_raft_$1"),
]

# Kafka Connect workers with Debezium and the sinks. String attributes (a connector's status) are
# matched as "attr: value" and exported as 1 with the value as a label.
CONNECT_RULES = [
    _rule(r"kafka.connect<type=connector-metrics, connector=([^,>]+)><>status: ([a-z-]+)",
          "kafka_connect_connector_status", {"connector": "$1", "status": "$2"}, value=1),
    _rule(r"kafka.connect<type=connector-task-metrics, connector=([^,>]+), task=([^,>]+)><>status: ([a-z-]+)",
          "kafka_connect_task_status", {"connector": "$1", "task": "$2", "status": "$3"}, value=1),
    _rule(r"kafka.connect<type=task-error-metrics, connector=([^,>]+), task=([^,>]+)><>(total-record-errors|"
          r"total-record-failures|total-records-skipped|total-errors-logged|deadletterqueue-produce-requests|"
          r"deadletterqueue-produce-failures)", "kafka_connect_task_error_$3_total",
          {"connector": "$1", "task": "$2"}, "COUNTER"),
    _rule(r"kafka.connect<type=source-task-metrics, connector=([^,>]+), task=([^,>]+)><>(source-record-poll-total|"
          r"source-record-write-total)", "kafka_connect_$3", {"connector": "$1", "task": "$2"}, "COUNTER"),
    _rule(r"kafka.connect<type=sink-task-metrics, connector=([^,>]+), task=([^,>]+)><>(sink-record-read-total|"
          r"sink-record-send-total|offset-commit-completion-total)", "kafka_connect_$3",
          {"connector": "$1", "task": "$2"}, "COUNTER"),
    _rule(r"kafka.connect<type=connect-worker-metrics><>(connector-count|task-count)", "kafka_connect_worker_$1"),
    _rule(r"kafka.connect<type=connect-worker-metrics><>(connector-startup-failure-total|task-startup-failure-total)",
          "kafka_connect_worker_$1", type_="COUNTER"),
    # A sink's consumer (client id connector-consumer-<connector>-<task>): how far it is behind.
    _rule(r"kafka.consumer<type=consumer-fetch-manager-metrics, client-id=connector-consumer-([^,>]+)>"
          r"<>records-lag-max", "kafka_connect_sink_records_lag_max", {"client": "$1"}),
    # A source's producer (connector-producer-<connector>-<task>): time from send() to the broker's ack.
    _rule(r"kafka.producer<type=producer-metrics, client-id=connector-producer-([^,>]+)><>(record-queue-time-avg|"
          r"request-latency-avg)", "kafka_connect_producer_$2", {"client": "$1"}),
    _rule(r"kafka.producer<type=producer-metrics, client-id=connector-producer-([^,>]+)><>(record-error-total|"
          r"record-send-total)", "kafka_connect_producer_$2", {"client": "$1"}, "COUNTER"),
    # Debezium (the MBean's keys after `server` vary by version: task, database).
    _rule(r"debezium.([a-z]+)<type=connector-metrics, context=(streaming|snapshot), server=([^,>]+)(?:, [^>]*)?>"
          r"<>(MilliSecondsBehindSource|MilliSecondsSinceLastEvent|QueueRemainingCapacity|QueueTotalCapacity|"
          r"TotalNumberOfEventsSeen|NumberOfErroneousEvents|Connected|SnapshotRunning|SnapshotCompleted|"
          r"SnapshotAborted)", "debezium_$2_$4", {"plugin": "$1", "server": "$3"}),
    # Debezium 3's distribution of the same lag over its recent events.
    _rule(r"debezium.([a-z]+)<type=connector-metrics, context=(streaming), server=([^,>]+)(?:, [^>]*)?>"
          r"<>MilliSecondsBehindSource(P50|P95|P99)", "debezium_$2_millisecondsbehindsource_quantile",
          {"plugin": "$1", "server": "$3", "quantile": "$4"}),
]

# Schema Registry (Confluent's MBeans, kafka.schema.registry domain).
SCHEMA_REGISTRY_RULES = [
    _rule(r"kafka.schema.registry<type=jetty-metrics><>(connections-active|request-rate|request-latency-99)",
          "schema_registry_jetty_$1"),
    _rule(r"kafka.schema.registry<type=jersey-metrics><>(request-rate|request-error-rate|request-latency-99)",
          "schema_registry_jersey_$1"),
    _rule(r"kafka.schema.registry<type=master-slave-role><>master-slave-role", "schema_registry_is_leader"),
    _rule(r"kafka.schema.registry<type=registered-count><>(.+)", "schema_registry_registered_$1"),
]

# The MBeans each agent reads on a scrape: every one is read and matched against the rules, so a
# broker's thousands (per request type and version, per topic, per partition) would cost CPU on each
# scrape for series the rules drop anyway. ObjectName patterns: a key list without ",*" must match
# exactly (a client's own MBean, not its per-topic and per-partition ones).
_TOPIC_METRICS = ("BytesInPerSec", "BytesOutPerSec", "MessagesInPerSec", "FailedProduceRequestsPerSec",
                  "FailedFetchRequestsPerSec")
_TIMED_REQUESTS = ("Produce", "FetchConsumer", "FetchFollower")
INCLUDE = {
    "kafka": ["kafka.server:type=ReplicaManager,*", "kafka.controller:type=KafkaController,*",
              *(f"kafka.server:type=BrokerTopicMetrics,name={name},*" for name in _TOPIC_METRICS),
              *(f"kafka.network:type=RequestMetrics,name=RequestsPerSec,request={request},*"
                for request in (*_TIMED_REQUESTS, "Metadata", "OffsetCommit")),
              *(f"kafka.network:type=RequestMetrics,name=TotalTimeMs,request={request}" for request in _TIMED_REQUESTS),
              "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
              "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent",
              "kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs", "kafka.server:type=raft-metrics"],
    "kafka-connect": [*(f"kafka.connect:type={kind},*" for kind in (
                          "connector-metrics", "connector-task-metrics", "task-error-metrics", "source-task-metrics",
                          "sink-task-metrics")),
                      "kafka.connect:type=connect-worker-metrics",
                      "kafka.consumer:type=consumer-fetch-manager-metrics,client-id=connector-consumer-*",
                      "kafka.producer:type=producer-metrics,client-id=connector-producer-*", "debezium.*:*"],
    "schema-registry": ["kafka.schema.registry:*"],
}

RULES = {"kafka": KAFKA_RULES, "kafka-connect": CONNECT_RULES, "schema-registry": SCHEMA_REGISTRY_RULES,
         # JVM metrics only (memory, GC, threads): its own MBeans say nothing an alert needs.
         "spark-history-server": []}


def rules_document(service: str) -> dict[str, Any]:
    rules = RULES[service]
    document: dict[str, Any] = {"lowercaseOutputName": True, "lowercaseOutputLabelNames": True}
    if rules:
        document["includeObjectNames"] = INCLUDE[service]
        document["rules"] = rules
    else:
        # No rules would export every MBean; exclude them all, the JVM collectors stay.
        document["excludeObjectNames"] = ["*:*"]
    return document


def rules_text(service: str) -> str:
    return yaml.safe_dump(rules_document(service), sort_keys=False, width=200)


def instrument(pod: dict[str, Any], config: JmxExporterConfig, rules_configmap: str, uid: int) -> dict[str, Any]:
    """The pod with the agent's jar fetched by an init container, its rules mounted and the metrics
    port declared on the first container (the JVM; its env must already carry agent_option())."""
    main, *others = pod["containers"]
    main = {**main, "ports": [*main.get("ports", []), container_port()],
            "volumeMounts": [*main.get("volumeMounts", []), *mounts()]}
    return {**pod, "initContainers": [*pod.get("initContainers", []), init_container(config, uid)],
            "containers": [main, *others], "volumes": [*pod.get("volumes", []), *volumes(rules_configmap)]}
