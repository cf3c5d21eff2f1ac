"""Alerting and recording rules of each layer, in Prometheus's rules-file format (the same groups go
into the layer's own Prometheus and, opt-in, a PrometheusRule). Thresholds come from the stack's
config where one exists: the slot-lag alerts from `postgres.maxSlotWalKeepSize`, the memory alerts
from each container's limit, the latency alert from the product description's 500 ms target.

Every alert carries a `runbook` annotation: the first thing to look at. Each is unit-tested with
`promtool test rules` (tests/observability/test_alert_rules.py) and the connector, slot-lag and
dead-letter alerts fire against the real services (tests/services/test_observability.py)."""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from components import quantities

# The product description's end-to-end target.
LATENCY_TARGET_MS = 500
# Share of max_slot_wal_keep_size at which slot lag warns, and at which it is critical: past 100%
# PostgreSQL invalidates the slot and Debezium must re-snapshot.
SLOT_LAG_WARNING = 0.5
SLOT_LAG_CRITICAL = 0.8
HEAP_RATIO = 0.9
MEMORY_RATIO = 0.9
LIMIT_RECORD = "datapipe:container_memory_limit_bytes"
# The layer's total of memory limits (every container, replicas included) and its budget (the quota).
LAYER_LIMITS_RECORD = "datapipe:layer_memory_limits_bytes"
BUDGET_RECORD = "datapipe:layer_memory_budget_bytes"
LATENCY_RECORD = "datapipe:cdc_capture_latency_ms"


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, runbook: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration != "0s":
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "runbook": runbook}
    return rule


def _with_labels(rule: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {**rule, "labels": {**rule["labels"], **labels}}


def memory_limit_records(layer: str, limits_mib: Mapping[str, int], layer_limits_mib: int,
                         budget_mib: int) -> list[dict[str, Any]]:
    """What the program knows of memory, as series: each JVM app's container limit (app -> limit),
    so the JVM alerts can compare a process's resident memory with it without cAdvisor; and the
    layer's total of limits and its budget, for the dashboard. Labelled with the layer: one
    operator-run Prometheus evaluates both layers' rules."""
    return [*({"record": LIMIT_RECORD, "expr": f"vector({mib * quantities.MIB})", "labels": {"app": app}}
              for app, mib in limits_mib.items()),
            {"record": LAYER_LIMITS_RECORD, "expr": f"vector({layer_limits_mib * quantities.MIB})",
             "labels": {"layer": layer}},
            {"record": BUDGET_RECORD, "expr": f"vector({budget_mib * quantities.MIB})", "labels": {"layer": layer}}]


def jvm_alerts(namespace: str) -> list[dict[str, Any]]:
    return [
        _alert("ScrapeTargetDown", 'up{job="datapipe"} == 0', "2m", "critical",
               "{{ $labels.pod }} ({{ $labels.app }}) does not answer its metrics endpoint",
               "The pod is down or restarting: kubectl -n " + namespace + " describe pod {{ $labels.pod }}; "
               "its logs (--previous after a restart) say why"),
        _alert("JvmHeapHigh",
               'max by (app, pod) (jvm_memory_used_bytes{area="heap"} / jvm_memory_max_bytes{area="heap"}) '
               f"> {HEAP_RATIO}", "10m", "warning",
               "{{ $labels.pod }} has used over 90% of its heap for 10 minutes",
               "Look for GC time in the dashboard; raise the service's memory (its heap follows the limit) "
               "or lower its load"),
        _alert("JvmProcessMemoryNearLimit",
               f"max by (app, pod) (process_resident_memory_bytes) / on (app) group_left {LIMIT_RECORD} "
               f"> {MEMORY_RATIO}", "5m", "warning",
               "{{ $labels.pod }} uses over 90% of its container's memory limit (resident)",
               "Near the limit the kernel OOM-kills the JVM; raise the service's memory within the layer's "
               "budget, or lower its heap share"),
        # cAdvisor's series: present where the kubelet is scraped (kube-prometheus-stack does).
        _alert("ContainerMemoryNearLimit",
               f'max by (pod, container) (container_memory_working_set_bytes{{namespace="{namespace}",'
               f'container!=""}}) / max by (pod, container) (container_spec_memory_limit_bytes{{'
               f'namespace="{namespace}",container!=""}} > 0) > {MEMORY_RATIO}', "5m", "warning",
               "{{ $labels.pod }}/{{ $labels.container }} uses over 90% of its memory limit",
               "Near the limit the container is OOM-killed; raise its memory within the layer's budget"),
    ]


def ingestion_groups(namespace: str, slot_name: str, max_slot_wal_keep_size_mib: int,
                     connectors: tuple[str, ...], dlq_topic: str, limits_mib: Mapping[str, int],
                     layer_limits_mib: int, budget_mib: int) -> list[dict[str, Any]]:
    keep = max_slot_wal_keep_size_mib * quantities.MIB
    slot = f'slot_name="{slot_name}"'
    connector_alerts = [
        # absent(): also fires when the connector is gone or its worker is not scraped. absent() of
        # a comparison returns a series without labels, so the rule names its connector itself:
        # without it the alerts of the two connectors would carry the same labels (one alert in
        # Alertmanager, routed and silenced together).
        _with_labels(_alert("ConnectorNotRunning",
                            f'absent(kafka_connect_connector_status{{connector="{name}",status="running"}} == 1)',
                            "2m", "critical", f"Connector {name} is not RUNNING",
                            "GET /connectors/" + name + "/status on the Connect REST API (credentials: the stack "
                            "output kafkaConnectRestUser/Password) shows the state and the trace; fix the cause, "
                            "then POST /connectors/" + name + "/restart?includeTasks=true"),
                     connector=name)
        for name in connectors
    ]
    return [
        {"name": "datapipe-ingestion-records", "rules": [
            *memory_limit_records("ingestion", limits_mib, layer_limits_mib, budget_mib),
            # Commit in PostgreSQL -> Debezium's event, plus the producer's queue time and the brokers'
            # ack: the capture path's latency as the services see it (the benchmark measures it end
            # to end, commit -> consumer).
            {"record": LATENCY_RECORD,
             # The producer's averages are NaN (or absent) while it has sent nothing in its window:
             # then they add nothing, instead of making the sum NaN.
             "expr": "max(debezium_streaming_millisecondsbehindsource) + ((max(kafka_connect_producer_record_queue_time_avg"
                     " + kafka_connect_producer_request_latency_avg) >= 0) or vector(0))"},
        ]},
        {"name": "datapipe-ingestion", "rules": [
            *connector_alerts,
            _alert("ConnectorTaskNotRunning", 'kafka_connect_task_status{status!="running"} == 1', "2m", "critical",
                   "Task {{ $labels.task }} of {{ $labels.connector }} is {{ $labels.status }}",
                   "GET /connectors/{{ $labels.connector }}/status shows the task's trace; POST "
                   "/connectors/{{ $labels.connector }}/tasks/{{ $labels.task }}/restart once the cause is fixed"),
            _alert("ReplicationSlotLagHigh", f"pg_replication_slots_pg_wal_lsn_diff{{{slot}}} > {int(keep * SLOT_LAG_WARNING)}",
                   "5m", "warning",
                   f"Slot {slot_name} retains over {int(SLOT_LAG_WARNING * 100)}% of max_slot_wal_keep_size "
                   f"({quantities.format_mib(max_slot_wal_keep_size_mib)})",
                   "Debezium is behind or stopped: check ConnectorNotRunning and the connector's status; WAL "
                   "beyond max_slot_wal_keep_size invalidates the slot and forces a new snapshot"),
            _alert("ReplicationSlotLagCritical", f"pg_replication_slots_pg_wal_lsn_diff{{{slot}}} > {int(keep * SLOT_LAG_CRITICAL)}",
                   "1m", "critical",
                   f"Slot {slot_name} retains over {int(SLOT_LAG_CRITICAL * 100)}% of max_slot_wal_keep_size",
                   "Restore the connector now; if it cannot catch up, raise postgres.maxSlotWalKeepSize "
                   "(within the volume) before the slot is lost"),
            _alert("ReplicationSlotInactive", f"pg_replication_slots_active{{{slot}}} == 0", "5m", "warning",
                   f"Nothing streams from slot {slot_name}",
                   "Debezium's task is down or not connected: see the connector's status"),
            _alert("ReplicationSlotLost", f'pg_replication_slots_wal_status{{{slot},wal_status=~"unreserved|lost"}} == 1',
                   "0s", "critical", f"Slot {slot_name} lost (or is losing) the WAL it needs",
                   "The slot passed max_slot_wal_keep_size; Debezium must re-snapshot: drop the slot and restart "
                   "the connector with snapshot.mode=initial"),
            _alert("PostgresExporterDown", "pg_up == 0", "2m", "critical",
                   "The exporter cannot log in to PostgreSQL",
                   "Check the datapipe_monitor role exists (it is created on a new data directory only) and the "
                   "postgres-exporter container's log"),
            _alert("KafkaUnderReplicatedPartitions", "sum(kafka_server_replicamanager_underreplicatedpartitions) > 0",
                   "5m", "warning", "{{ $value }} partitions are under-replicated",
                   "A broker is down or slow to follow: check ScrapeTargetDown and the brokers' logs"),
            _alert("KafkaUnderMinIsr", "sum(kafka_server_replicamanager_underminisrpartitioncount) > 0", "1m",
                   "critical", "{{ $value }} partitions have fewer in-sync replicas than min.insync.replicas",
                   "Producers with acks=all (Debezium's) fail on these partitions: bring the brokers back "
                   "(kubectl get pods -l app.kubernetes.io/name=kafka)"),
            _alert("KafkaOfflinePartitions", "sum(kafka_controller_kafkacontroller_offlinepartitionscount) > 0", "1m",
                   "critical", "{{ $value }} partitions have no leader",
                   "No replica of these partitions is alive: restore the brokers; never enable unclean "
                   "leader election on the CDC topics"),
            _alert("KafkaNoActiveController", "sum(kafka_controller_kafkacontroller_activecontrollercount) != 1",
                   "2m", "critical", "The KRaft quorum has {{ $value }} active controllers",
                   "A majority of the controllers must run: check the brokers' pods and logs"),
            _alert("SinkLagGrowing",
                   "min_over_time(kafka_connect_sink_records_lag_max[15m]) > 0 "
                   "and deriv(kafka_connect_sink_records_lag_max[15m]) > 0", "15m", "warning",
                   "Sink {{ $labels.client }} is falling behind (lag {{ $value }} records and growing)",
                   "The sink cannot keep up or fails to write: check its task status and the S3 endpoint"),
            _alert("DeadLetterQueueNotEmpty",
                   "sum by (connector) (kafka_connect_task_error_deadletterqueue_produce_requests_total) > 0",
                   "0s", "warning",
                   "{{ $labels.connector }} sent {{ $value }} records to the dead-letter queue",
                   f"Read {dlq_topic} with its headers (__connect.errors.*: the exception, the source topic, "
                   "partition and offset); fix the producer of the malformed data, then replay"),
            _alert("CdcLatencyAboveTarget", f"{LATENCY_RECORD} > {LATENCY_TARGET_MS}", "5m", "warning",
                   f"Capture latency {{{{ $value }}}} ms is above the {LATENCY_TARGET_MS} ms target",
                   "Compare Debezium's MilliSecondsBehindSource with the producer's queue time on the "
                   "dashboard: the first points at PostgreSQL or the connector, the second at Kafka"),
            *jvm_alerts(namespace),
        ]},
    ]


def batch_groups(namespace: str, limits_mib: Mapping[str, int], layer_limits_mib: int,
                 budget_mib: int) -> list[dict[str, Any]]:
    return [
        {"name": "datapipe-batch-records", "rules": memory_limit_records("batch", limits_mib, layer_limits_mib, budget_mib)},
        {"name": "datapipe-batch", "rules": [
            _alert("SparkHistoryServerDown", 'absent(up{job="datapipe",app="spark-history-server"} == 1)', "5m",
                   "warning", "The Spark History Server is not scraped",
                   "kubectl -n " + namespace + " get pods -l app.kubernetes.io/name=spark-history-server"),
            *jvm_alerts(namespace),
        ]},
    ]


def rules_text(groups: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"groups": groups}, sort_keys=False, width=200)
