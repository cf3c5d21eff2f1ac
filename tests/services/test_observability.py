"""Metrics and alerts on the real services: the brokers and the Connect worker run with the JMX
exporter agent and the rules files the builders put in their ConfigMaps; a real Prometheus scrapes
them with the scrape job the program renders (its relabelling verbatim; only Kubernetes pod
discovery is replaced by the targets it would find, with the same `__meta_kubernetes_*` labels)
and evaluates the alert rules the program renders.

The rules' `for:` durations are dropped here so that an alert fires within seconds: what is under
test is each expression against real series (the durations are covered by `promtool test rules`,
tests/observability/test_alert_rules.py). PostgreSQL's series come from a stand-in for the
exporter sidecar (tests/services/pg_metrics.py says why and what that leaves unproven)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse

import pytest
import yaml

from components.ingestion import connectors, topics as topic_names
from components.ingestion.config import IngestionConfig
from components.ingestion.layer import alert_groups
from components.observability import prometheus
from components.observability.config import PrometheusConfig
from tests.services.pg_metrics import PgMetrics
from tests.services.services import (HOST, MONITOR_PASSWORD, Pipeline, Process, free_ports, http_json, wait_for)

pytestmark = pytest.mark.services

# Small enough to fill from a test: the slot-lag alert warns at half of it.
CONFIG = IngestionConfig.model_validate({"postgres": {"maxSlotWalKeepSize": "64Mi"}})
NAMESPACE = CONFIG.namespace
SCRAPE = "2s"


def discovered(app: str, pod: str, address: str) -> dict:
    """A target as Kubernetes pod discovery reports a container's `metrics` port."""
    return {"targets": [address], "labels": {
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_container_name": "postgres-exporter" if app == "postgres" else app,
        "__meta_kubernetes_namespace": NAMESPACE}}


def without_for(groups: list[dict]) -> list[dict]:
    return [{**group, "rules": [{k: v for k, v in rule.items() if k != "for"} for rule in group["rules"]]}
            for group in groups]


class Observed:
    def __init__(self, pipeline: Pipeline, pg_metrics: PgMetrics):
        self.pipeline, self.pg_metrics = pipeline, pg_metrics
        self.dir = pipeline.workdir / "prometheus"
        self.dir.mkdir()
        self.port = free_ports(1)[0]
        rules = self.dir / "datapipe-ingestion.yaml"
        rules.write_text(yaml.safe_dump({"groups": without_for(alert_groups(CONFIG))}, sort_keys=False))
        config = prometheus.scrape_config(PrometheusConfig(scrape_interval=SCRAPE), NAMESPACE, "ingestion")
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "datapipe"]
        del job["kubernetes_sd_configs"]
        kafka = pipeline.kafka
        job["static_configs"] = [
            *(discovered("kafka", f"kafka-{i}", f"{HOST}:{port}") for i, port in enumerate(kafka.metrics_ports)),
            discovered("kafka-connect", "kafka-connect-0", f"{HOST}:{pipeline.connect.metrics_port}"),
            discovered("postgres", "postgres-0", f"{HOST}:{pg_metrics.port}"),
            # A pod's other ports are not targets: the job keeps only those named `metrics`.
            {**discovered("kafka", "kafka-0", f"{HOST}:{kafka.internal[0]}"),
             "labels": {**discovered("kafka", "kafka-0", "")["labels"],
                        "__meta_kubernetes_pod_container_port_name": "internal"}},
        ]
        config["rule_files"] = [str(rules)]
        for other in config["scrape_configs"]:
            if other["job_name"] == "prometheus":
                other["static_configs"] = [{"targets": [f"{HOST}:{self.port}"]}]
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = Process("prometheus", [os.environ["DATAPIPE_PROMETHEUS"],
                                              f"--config.file={self.dir / 'prometheus.yml'}",
                                              f"--storage.tsdb.path={self.dir / 'data'}",
                                              f"--web.listen-address={HOST}:{self.port}"],
                               self.dir / "prometheus.log")
        wait_for(lambda: self._get("/-/ready", raw=True) is not None, 60, "Prometheus", self.process.log)

    def _get(self, path: str, raw: bool = False):
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=5) as response:
                body = response.read()
        except OSError:
            return None
        return body if raw else json.loads(body)

    def query(self, expr: str) -> list[dict]:
        return self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def firing(self, alert: str, **labels: str) -> list[dict]:
        alerts = self._get("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alert and a["state"] == "firing"
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait_firing(self, alert: str, timeout: float = 90, **labels: str) -> float:
        return wait_for(lambda: bool(self.firing(alert, **labels)), timeout, f"alert {alert} {labels} firing",
                        self.process.log)

    def wait_resolved(self, alert: str, timeout: float = 90, **labels: str) -> float:
        return wait_for(lambda: not self.firing(alert, **labels), timeout, f"alert {alert} {labels} resolved",
                        self.process.log)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def observed():
    if not os.environ.get("DATAPIPE_PROMETHEUS") or not os.environ.get("DATAPIPE_JMX_AGENT"):
        raise RuntimeError("Prometheus and the JMX exporter agent are not provisioned: run the suite with "
                           "`make test` (scripts/services.sh)")
    pipeline = Pipeline(CONFIG).start()
    pg_metrics = PgMetrics(pipeline.postgres.bin / "psql", pipeline.postgres.port, CONFIG.postgres.database,
                           MONITOR_PASSWORD, pipeline.pki.ca)
    result = None
    try:
        result = Observed(pipeline, pg_metrics)
        yield result
    finally:
        if result:
            result.stop()
        pg_metrics.stop()
        pipeline.stop()


def insert_users(pipeline: Pipeline, count: int, tag: str) -> None:
    pipeline.postgres.run_script("".join(
        f"INSERT INTO public.users (email, full_name) VALUES ('{tag}-{i}@example.com', 'User {i}');\n"
        for i in range(count)))


def test_every_service_is_scraped_and_the_series_the_alerts_use_exist(observed):
    pipeline = observed.pipeline
    insert_users(pipeline, 50, "scraped")
    brokers = pipeline.kafka.config.brokers
    wait_for(lambda: observed.value('count(up{job="datapipe"} == 1)') == brokers + 2, 60,
             "every target up", observed.process.log)
    # Only the `metrics` ports became targets, each labelled with its app and pod.
    targets = observed._get("/api/v1/targets")["data"]["activeTargets"]
    assert sorted((t["labels"]["app"], t["labels"]["pod"]) for t in targets if t["labels"]["job"] == "datapipe") \
        == sorted([*((("kafka", f"kafka-{i}")) for i in range(brokers)), ("kafka-connect", "kafka-connect-0"),
                   ("postgres", "postgres-0")])
    wait_for(lambda: (observed.value("sum(debezium_streaming_totalnumberofeventsseen)") or 0) >= 50, 60,
             "Debezium's event count", observed.process.log)
    expected = {
        "kafka_server_replicamanager_underreplicatedpartitions": brokers,
        "kafka_server_replicamanager_underminisrpartitioncount": brokers,
        "kafka_controller_kafkacontroller_offlinepartitionscount": brokers,
        "kafka_controller_kafkacontroller_activecontrollercount": brokers,
        "kafka_server_brokertopicmetrics_messagesinpersec_total": None,
        'kafka_network_requestmetrics_totaltimems{request="Produce"}': None,
        f'kafka_connect_connector_status{{connector="{connectors.SOURCE_NAME}",status="running"}}': 1,
        f'kafka_connect_task_status{{connector="{connectors.SOURCE_NAME}",status="running"}}': 1,
        "kafka_connect_source_record_write_total": 1,
        "debezium_streaming_millisecondsbehindsource": 1,
        "debezium_streaming_queueremainingcapacity": 1,
        "kafka_connect_producer_record_queue_time_avg": 1,
        'jvm_memory_used_bytes{area="heap"}': brokers + 1,
        'process_resident_memory_bytes{job="datapipe"}': brokers + 1,
        f'pg_replication_slots_active{{slot_name="{CONFIG.postgres.slot_name}"}}': 1,
        f'pg_replication_slots_pg_wal_lsn_diff{{slot_name="{CONFIG.postgres.slot_name}"}}': 1,
        "pg_up": 1,
        "datapipe:container_memory_limit_bytes": 3,
    }
    counts = {series: len(observed.query(series)) for series in expected}
    missing = {s: n for s, n in counts.items() if n == 0 or (expected[s] is not None and n != expected[s])}
    assert not missing, f"series (found, expected): {[(s, n, expected[s], observed.query(s)) for s, n in missing.items()]}"
    # Healthy: all partitions replicated, exactly one active controller, the source streaming.
    assert observed.value("sum(kafka_server_replicamanager_underreplicatedpartitions)") == 0
    assert observed.value("sum(kafka_controller_kafkacontroller_activecontrollercount)") == 1
    assert observed.value(f'pg_replication_slots_active{{slot_name="{CONFIG.postgres.slot_name}"}}') == 1
    # The capture latency the latency alert watches: a number of milliseconds (cold JVMs and 50
    # single-row commits: not a measurement, see `make bench`).
    wait_for(lambda: observed.value("datapipe:cdc_capture_latency_ms") is not None, 30, "the latency record",
             observed.process.log)
    latency = observed.value("datapipe:cdc_capture_latency_ms")
    rss = {r["metric"]["app"]: round(float(r["value"][1]) / 2**20)
           for r in observed.query('sum by (app) (process_resident_memory_bytes{job="datapipe"})')}
    print(f"\ncapture latency (recording rule): {latency} ms; resident memory by app: {rss} MiB")
    assert 0 < latency < 60_000
    # The broker's own view of the JVM agrees with its container's heap setting (G1 rounds it up
    # to whole regions).
    heap_max = observed.value('max(jvm_memory_max_bytes{area="heap",app="kafka"})')
    assert 0 <= heap_max - CONFIG.kafka.effective_heap_mib * 2**20 < 4 * 2**20
    durations = {r["metric"]["app"]: round(1000 * float(r["value"][1])) for r in
                 observed.query('max by (app) (max_over_time(scrape_duration_seconds{job="datapipe"}[1m]))')}
    print(f"longest scrape in the last minute, by app: {durations} ms")
    # The layer's Prometheus fits its container: its own memory, for the series this layer makes.
    series = observed.value("prometheus_tsdb_head_series")
    resident = observed.value('process_resident_memory_bytes{job="prometheus"}')
    limit = CONFIG.monitoring.prometheus.memory_mib * 2**20
    print(f"Prometheus: {series:.0f} series in its head, resident {resident / 2**20:.0f} MiB of the "
          f"{limit / 2**20:.0f} MiB the layer gives it")
    assert resident < 0.5 * limit
    for alert in ("ScrapeTargetDown", "KafkaUnderReplicatedPartitions", "KafkaOfflinePartitions",
                  "KafkaNoActiveController", "ReplicationSlotLagHigh", "JvmHeapHigh", "PostgresExporterDown"):
        assert not observed.firing(alert), f"{alert} fires on a healthy pipeline"


def test_connector_not_running_alert_fires_when_the_source_is_paused_and_resolves(observed):
    connect = observed.pipeline.connect
    source = connectors.SOURCE_NAME
    observed.wait_resolved("ConnectorNotRunning", connector=source)
    http_json("PUT", f"{connect.url}/connectors/{source}/pause", auth=connect.auth)
    try:
        seconds = observed.wait_firing("ConnectorNotRunning", connector=source)
        print(f"\nConnectorNotRunning fired {seconds:.1f}s after the pause")
        assert observed.value(f'kafka_connect_connector_status{{connector="{source}",status="paused"}}') == 1
        (alert,) = observed.firing("ConnectorNotRunning", connector=source)
        assert alert["labels"]["severity"] == "critical" and "runbook" in alert["annotations"]
    finally:
        http_json("PUT", f"{connect.url}/connectors/{source}/resume", auth=connect.auth)
    observed.wait_resolved("ConnectorNotRunning", connector=source)


def test_slot_lag_alert_fires_when_the_slot_falls_behind(observed):
    pipeline = observed.pipeline
    connect, source, slot = pipeline.connect, connectors.SOURCE_NAME, CONFIG.postgres.slot_name
    threshold = CONFIG.postgres.max_slot_wal_keep_size_mib * 2**20 // 2
    http_json("PUT", f"{connect.url}/connectors/{source}/pause", auth=connect.auth)
    try:
        # WAL nobody consumes: 1 MiB logical messages, to just above half of maxSlotWalKeepSize.
        for _ in range(threshold // 2**20 + 8):
            pipeline.postgres.psql("SELECT pg_logical_emit_message(false, 'datapipe-test', repeat('x', 1048576))")
        seconds = observed.wait_firing("ReplicationSlotLagHigh", slot_name=slot)
        lag = observed.value(f'pg_replication_slots_pg_wal_lsn_diff{{slot_name="{slot}"}}')
        print(f"\nReplicationSlotLagHigh fired {seconds:.1f}s after the WAL was written; lag {lag / 2**20:.0f} MiB, "
              f"threshold {threshold / 2**20:.0f} MiB")
        assert lag > threshold
        assert not observed.firing("ReplicationSlotLost")
    finally:
        http_json("PUT", f"{connect.url}/connectors/{source}/resume", auth=connect.auth)
    pipeline.connect.wait_running(source)


def test_malformed_records_reach_the_dead_letter_queue_with_context_and_alert(observed):
    """The S3 sink cannot run here (its jars are not on Maven Central), and its error handling is
    Kafka Connect's own: so the builder's S3 sink settings run on Kafka's file sink, minus what
    only the S3 connector reads, with JSON in place of Avro (no Schema Registry here). A record
    that is not JSON fails conversion; `errors.*` must send it on to the dead-letter topic with
    the context headers, and the metric and alert must show it."""
    from confluent_kafka import Consumer, Producer

    pipeline = observed.pipeline
    connect, kafka = pipeline.connect, pipeline.kafka
    registry = connectors.RegistryEndpoint("https://schema-registry.invalid:8081", "/unused", "/unused")
    s3 = connectors.s3_sink(CONFIG.s3_sink.resolve("datapipe-raw-test", "eu-west-1", None), CONFIG.topics, registry)
    errors = {k: v for k, v in s3.items() if k.startswith("errors.")}
    assert errors["errors.deadletterqueue.topic.name"] == topic_names.DLQ_TOPIC
    topic = s3["topics"].split(",")[0]
    sink = {**errors, "topics": topic, "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "file": str(pipeline.workdir / "sink.out"), "tasks.max": "1",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}
    connect.put_connector(connectors.SINK_NAME, sink)
    connect.wait_running(connectors.SINK_NAME)
    producer = Producer(kafka.client_config())
    producer.produce(topic, key=b"malformed-1", value=b"{not json")
    producer.flush(30)

    consumer = Consumer({**kafka.client_config(), "group.id": f"datapipe-reader-dlq-{time.time_ns()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic_names.DLQ_TOPIC])
    deadline, message = time.monotonic() + 60, None
    while message is None and time.monotonic() < deadline:
        candidate = consumer.poll(1.0)
        if candidate is not None and not candidate.error() and candidate.key() == b"malformed-1":
            message = candidate
    consumer.close()
    assert message is not None, "the malformed record did not reach the dead-letter topic"
    headers = {k: v.decode() for k, v in message.headers()}
    assert message.value() == b"{not json"
    assert headers["__connect.errors.topic"] == topic
    assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert "DataException" in headers["__connect.errors.exception.class.name"]
    print(f"\ndead-letter record headers: {sorted(headers)}")
    # The sink keeps running: errors.tolerance=all skips the record instead of failing the task.
    assert connect.status(connectors.SINK_NAME)["tasks"][0]["state"] == "RUNNING"

    seconds = observed.wait_firing("DeadLetterQueueNotEmpty", connector=connectors.SINK_NAME)
    assert observed.value(f'sum(kafka_connect_task_error_deadletterqueue_produce_requests_total'
                          f'{{connector="{connectors.SINK_NAME}"}})') == 1
    assert observed.value(f'sum(kafka_connect_task_error_total_record_errors_total'
                          f'{{connector="{connectors.SINK_NAME}"}})') >= 1
    print(f"DeadLetterQueueNotEmpty fired {seconds:.1f}s after the record was produced")
