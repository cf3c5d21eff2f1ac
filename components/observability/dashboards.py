"""The Grafana dashboard of each layer, as the JSON model Grafana imports (monitoring.py wraps it in
a ConfigMap labelled for Grafana's dashboard sidecar).

Every metric named here is produced by something the program deploys: the JMX agent's rules
(jmx.py) and its JVM collectors, postgres_exporter, the layers' recording rules (alerts.py) and
Spark's PrometheusServlet on the drivers; tests/observability/test_dashboards.py checks each name
against those sources."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from components.observability import alerts, prometheus

GIB = 2**30
# The layers' default memory budgets (ingestion.memoryBudget, batch.memoryBudget). Drawn as a
# threshold only: a stack with another budget still sees its limits, against the wrong line.
INGESTION_BUDGET_BYTES = 6 * GIB
BATCH_BUDGET_BYTES = 18 * GIB
# The product's throughput targets: sustained at < 500 ms, and the headline.
SUSTAINED_EVENTS_PER_S = 1_000
HEADLINE_EVENTS_PER_S = 10_000

# The datasource is a variable so the same dashboard works against the layer's own Prometheus or a
# kube-prometheus-stack's.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Spark's PrometheusServlet names a gauge `metrics_<registry key, non-alphanumerics as _>_Value`, and
# the key starts with spark.metrics.namespace (components/batch/spark.py: "datapipe") and "driver".
SPARK_DRIVER = "metrics_datapipe_driver"
GRID_WIDTH = 24

Target = tuple[str, str]  # (PromQL, legendFormat)


def _panel(title: str, targets: Sequence[Target], unit: str, *, kind: str = "timeseries", w: int = 12,
           h: int = 8, thresholds: Sequence[tuple[float, str]] = (), base: str = "green",
           description: Optional[str] = None) -> dict[str, Any]:
    """A panel with its size; its place and id are the dashboard's. `thresholds`: (value, color)
    above the `base` color; a time series draws them as lines, a stat colours its background."""
    steps = [{"color": base, "value": None}, *({"color": color, "value": value} for value, color in thresholds)]
    defaults: dict[str, Any] = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line" if thresholds else "off"}}
        options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom"},
                                   "tooltip": {"mode": "multi", "sort": "desc"}}
    else:
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}
    panel: dict[str, Any] = {
        "type": kind, "title": title, "datasource": DATASOURCE, "gridPos": {"w": w, "h": h},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
    if description:
        panel["description"] = description
    return panel


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": GRID_WIDTH, "h": 1}}


def _dashboard(uid: str, title: str, layer: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    """Places the panels left to right, a row always on a line of its own."""
    placed, x, y, line_height = [], 0, 0, 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_WIDTH or (panel["type"] == "row" and x > 0):
            x, y, line_height = 0, y + line_height, 0
        placed.append({**panel, "id": number, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, line_height = x + w, max(line_height, h)
    return {
        "uid": uid, "title": title, "tags": ["datapipe", layer], "schemaVersion": 39, "version": 1,
        "editable": True, "graphTooltip": 1, "refresh": "30s", "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
                                 "includeAll": False, "multi": False, "options": []}]},
        "panels": placed,
    }


def _jvm_and_memory(ns: str, layer: str, budget_bytes: int, apps: str) -> list[dict[str, Any]]:
    """What both layers show of their JVMs and memory. The limit record holds one container's limit
    per JVM app (alerts.memory_limit_records); the layer records hold the stack's own totals."""
    limit = alerts.LIMIT_RECORD
    return [
        _row(f"Memory and JVMs ({apps})"),
        _panel("Memory limits vs layer budget", [
            (f'{alerts.LAYER_LIMITS_RECORD}{{layer="{layer}"}}', "limits (every container)"),
            (f'{alerts.BUDGET_RECORD}{{layer="{layer}"}}', "budget (the quota)"),
            (f'sum(process_resident_memory_bytes{{job="datapipe",{ns}}})', "resident (scraped processes)"),
        ], "bytes", kind="stat", w=6, thresholds=[(budget_bytes * 0.9, "orange"), (budget_bytes, "red")],
            description=f"The stack's memory limits and budget as the program computed them, and what the "
                        f"scraped processes hold. Colours: the layer's default budget ({budget_bytes // GIB} "
                        f"GiB); the budget value shown is the stack's."),
        _panel("Resident memory vs container limit", [
            # Only the apps with a limit: postgres_exporter (a Go process) reports its own RSS too.
            (f"max by (app, pod) (process_resident_memory_bytes{{{ns}}}) and on (app) {limit}", "{{pod}} resident"),
            (f'{limit} and on (app) up{{job="datapipe",{ns}}}', "{{app}} limit (per pod)"),
        ], "bytes", w=18,
            description="Past the limit the kernel OOM-kills the JVM: the JvmProcessMemoryNearLimit alert "
                        "fires at 90%."),
        _panel("JVM heap used / max", [
            (f'sum by (app, pod) (jvm_memory_used_bytes{{area="heap",{ns}}})', "{{pod}} used"),
            (f'sum by (app, pod) (jvm_memory_max_bytes{{area="heap",{ns}}})', "{{pod}} max"),
        ], "bytes", w=9),
        _panel("GC time (share of wall time)", [
            (f"sum by (app, pod) (rate(jvm_gc_collection_seconds_sum{{{ns}}}[5m]))", "{{pod}}"),
        ], "percentunit", w=9, thresholds=[(0.1, "orange")],
            description="Seconds spent in GC per second. A heap near its max with rising GC time is "
                        "memory pressure long before an OutOfMemoryError."),
        _panel("Scrape targets up", [
            (f'sum by (app) (up{{job="datapipe",{ns}}})', "{{app}}"),
        ], "none", kind="stat", w=6, thresholds=[(1, "green")], base="red",
            description="Pods answering their metrics endpoint, per app."),
    ]


def ingestion(namespace: str) -> dict[str, Any]:
    ns = f'namespace="{namespace}"'
    latency = alerts.LATENCY_RECORD
    panels = [
        _row("Change data capture"),
        _panel("CDC events/s", [
            (f"sum(rate(debezium_streaming_totalnumberofeventsseen{{{ns}}}[1m]))", "Debezium events seen"),
            (f"sum by (connector) (rate(kafka_connect_source_record_write_total{{{ns}}}[1m]))",
             "{{connector}} records written"),
        ], "eps", thresholds=[(SUSTAINED_EVENTS_PER_S, "blue"), (HEADLINE_EVENTS_PER_S, "purple")],
            description="Events read from the WAL and records the source task handed to Kafka. Lines: the "
                        "1,000 events/s sustained target and the 10,000 events/s headline."),
        _panel("Capture latency (commit to Kafka ack)", [
            (latency, "total"),
            ("max(debezium_streaming_millisecondsbehindsource)", "Debezium behind source"),
            ("max(kafka_connect_producer_record_queue_time_avg)", "producer queue time"),
            ("max(kafka_connect_producer_request_latency_avg)", "produce request latency"),
        ], "ms", thresholds=[(alerts.LATENCY_TARGET_MS, "red")],
            description="The recording rule and its parts: when the total passes 500 ms, a large Debezium "
                        "share points at PostgreSQL or the connector, a large producer share at Kafka."),
        # The status is a label; its value becomes 1 (running) or 0 so the stat can colour it.
        _panel("Connectors", [
            (f'sum by (connector, status) (kafka_connect_connector_status{{status="running",{ns}}}) or '
             f'sum by (connector, status) (kafka_connect_connector_status{{status!="running",{ns}}}) * 0',
             "{{connector}}: {{status}}"),
        ], "none", kind="stat", w=6, thresholds=[(1, "green")], base="red"),
        _panel("Tasks not running", [
            (f'count(kafka_connect_task_status{{status!="running",{ns}}} == 1) or vector(0)', "tasks"),
        ], "none", kind="stat", w=3, thresholds=[(1, "red")]),
        _panel("Sink lag (records)", [
            (f"max by (client) (kafka_connect_sink_records_lag_max{{{ns}}})", "{{client}}"),
        ], "short", w=7,
            description="How far each sink's consumer is behind its topics; SinkLagGrowing fires when it "
                        "keeps growing for 15 minutes."),
        _panel("Dead-letter queue and record errors", [
            (f"sum by (connector) (kafka_connect_task_error_deadletterqueue_produce_requests_total{{{ns}}})",
             "{{connector}} sent to the DLQ (since start)"),
            (f"sum by (connector) (increase(kafka_connect_task_error_total_record_errors_total{{{ns}}}[5m]))",
             "{{connector}} record errors (5m)"),
        ], "short", w=8, thresholds=[(1, "red")]),
        _row("PostgreSQL (source)"),
        _panel("Replication slot WAL retained", [
            (f"max by (slot_name) (pg_replication_slots_pg_wal_lsn_diff{{{ns}}})", "{{slot_name}} retained"),
            (f"max by (slot_name) (pg_replication_slots_safe_wal_size_bytes{{{ns}}})",
             "{{slot_name}} left before invalidation"),
        ], "bytes", w=8,
            description="WAL the slot holds back. When nothing is left before invalidation PostgreSQL "
                        "drops the WAL and Debezium must re-snapshot."),
        _panel("Slot active", [
            (f"max by (slot_name) (pg_replication_slots_active{{{ns}}})", "{{slot_name}}"),
        ], "bool_yes_no", kind="stat", w=3, thresholds=[(1, "green")], base="red"),
        _panel("Exporter logged in", [(f"max(pg_up{{{ns}}})", "pg_up")], "bool_yes_no", kind="stat", w=3,
               thresholds=[(1, "green")], base="red"),
        _panel("Commits/s", [
            (f'sum by (datname) (rate(pg_stat_database_xact_commit{{datname!="",{ns}}}[1m]))', "{{datname}}"),
        ], "ops", w=5),
        _panel("Connections", [
            (f'sum by (datname) (pg_stat_database_numbackends{{datname!="",{ns}}})', "{{datname}}"),
        ], "short", w=5),
        _row("Kafka"),
        _panel("Partitions at risk", [
            (f"sum(kafka_server_replicamanager_underreplicatedpartitions{{{ns}}})", "under-replicated"),
            (f"sum(kafka_server_replicamanager_underminisrpartitioncount{{{ns}}})", "under min ISR"),
            (f"sum(kafka_controller_kafkacontroller_offlinepartitionscount{{{ns}}})", "offline"),
        ], "none", kind="stat", w=9, thresholds=[(1, "red")],
            description="Under min ISR and offline partitions refuse Debezium's acks=all writes."),
        _panel("Active controllers", [
            (f"sum(kafka_controller_kafkacontroller_activecontrollercount{{{ns}}})", "active"),
        ], "none", kind="stat", w=3, thresholds=[(1, "green"), (2, "red")], base="red",
            description="Exactly one: the KRaft quorum has a leader."),
        _panel("ISR shrinks / expands", [
            (f"sum(rate(kafka_server_replicamanager_isrshrinkspersec_total{{{ns}}}[5m]))", "shrinks"),
            (f"sum(rate(kafka_server_replicamanager_isrexpandspersec_total{{{ns}}}[5m]))", "expands"),
        ], "cps", description="Shrinks without matching expands: a broker keeps falling out of sync."),
        _panel("Bytes in per topic", [
            (f"sum by (topic) (rate(kafka_server_brokertopicmetrics_bytesinpersec_total{{{ns}}}[1m]))",
             "{{topic}}"),
        ], "Bps", w=8),
        _panel("Bytes out per topic", [
            (f"sum by (topic) (rate(kafka_server_brokertopicmetrics_bytesoutpersec_total{{{ns}}}[1m]))",
             "{{topic}}"),
        ], "Bps", w=8),
        _panel("Produce request time (p99)", [
            (f'max by (pod) (kafka_network_requestmetrics_totaltimems{{request="Produce",quantile="99thPercentile",'
             f'{ns}}})', "{{pod}}"),
        ], "ms", w=8, description="The brokers' share of the capture latency, with acks=all replication."),
        *_jvm_and_memory(ns, "ingestion", INGESTION_BUDGET_BYTES, "Kafka, Kafka Connect, Schema Registry"),
    ]
    return _dashboard("datapipe-ingestion", "DataPipe / Ingestion", "ingestion", panels)


def batch(namespace: str) -> dict[str, Any]:
    ns = f'namespace="{namespace}"'
    driver = f'job="{prometheus.SPARK_DRIVER_JOB}",type="gauges",{ns}'
    panels = [
        # Drivers are scraped only while they run: empty panels between jobs are expected.
        _row("Spark drivers"),
        _panel("Driver heap used / max", [
            (f"max by (app, pod) ({SPARK_DRIVER}_jvm_heap_used_Value{{{driver}}})", "{{app}} used"),
            (f"max by (app, pod) ({SPARK_DRIVER}_jvm_heap_max_Value{{{driver}}})", "{{app}} max"),
        ], "bytes"),
        _panel("Active jobs and stages", [
            (f"sum by (app) ({SPARK_DRIVER}_DAGScheduler_job_activeJobs_Value{{{driver}}})", "{{app}} active jobs"),
            (f"sum by (app) ({SPARK_DRIVER}_DAGScheduler_stage_runningStages_Value{{{driver}}})",
             "{{app}} running stages"),
            (f"sum by (app) ({SPARK_DRIVER}_DAGScheduler_stage_failedStages_Value{{{driver}}})",
             "{{app}} failed stages"),
        ], "short"),
        *_jvm_and_memory(ns, "batch", BATCH_BUDGET_BYTES, "Spark History Server"),
    ]
    return _dashboard("datapipe-batch", "DataPipe / Batch", "batch", panels)
