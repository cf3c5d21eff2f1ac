"""The real-service harness itself (no services started): its JVMs get exactly the flags the
program's pods get, and its brokers the builder's properties (only addresses, ports and paths
localized), also for a broker-only node added to a running cluster."""

from __future__ import annotations

from components.ingestion import kafka_connect
from components.ingestion.config import IngestionConfig
from components.observability import jmx
from tests.program import run_program
from tests.services.services import Kafka, KafkaConnect, Pki

JVM_VARIABLES = ("KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_OPTS")


def jvm_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in JVM_VARIABLES}


def pod_jvm_env(program, kind: str, name: str) -> dict[str, str]:
    container = program.one(kind, name).inputs["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if e["name"] in JVM_VARIABLES}


def test_brokers_and_worker_run_with_the_pods_jvm_flags(tmp_path, monkeypatch):
    for variable in JVM_VARIABLES:  # the caller's environment must not leak into the services
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATAPIPE_CONNECT_PLUGINS", str(tmp_path / "plugins"))  # only named in the worker's properties
    monkeypatch.setenv("DATAPIPE_JMX_AGENT", str(tmp_path / "agent.jar"))  # only named in the JVM options
    changed = {"kafka": {"memoryPerBroker": "512Mi"}, "kafkaConnect": {"memory": "1536Mi"}}  # not the defaults
    program = run_program({"ingestion": changed})
    config = IngestionConfig.model_validate(changed)
    kafka = Kafka(tmp_path, config, "ZGF0YXBpcGUtcnVuZzUtdA", Pki.create(tmp_path))
    connect = KafkaConnect(tmp_path, config, kafka)
    assert jvm_env(kafka.env) == pod_jvm_env(program, "StatefulSet", "kafka")
    # The worker's KAFKA_OPTS names the REST JAAS file and the metrics agent's jar, rules and port,
    # which are the harness's here.
    local_jaas = str(tmp_path / "connect" / "scripts" / "rest-jaas.conf")
    rules = tmp_path / "connect" / f"jmx-exporter-{connect.metrics_port}" / jmx.RULES_FILE
    local_agent = jmx.agent_option(str(rules), connect.metrics_port, str(tmp_path / "agent.jar"))
    assert rules.read_text() == jmx.rules_text(kafka_connect.APP)
    assert {k: v.replace(local_jaas, f"{kafka_connect.SCRIPTS_DIR}/rest-jaas.conf").replace(local_agent, jmx.agent_option())
            for k, v in jvm_env(connect.env).items()} == pod_jvm_env(program, "Deployment", "kafka-connect")
    assert "-Xmx256m" in kafka.env["KAFKA_HEAP_OPTS"] and "-Xmx1152m" in connect.env["KAFKA_HEAP_OPTS"]


def test_a_broker_added_at_run_time_is_broker_only_and_changes_no_running_broker(tmp_path, monkeypatch):
    kafka = Kafka(tmp_path, IngestionConfig(), "ZGF0YXBpcGUtcnVuZzUtdA", Pki.create(tmp_path))
    before = [dict(p) for p in kafka.properties]
    started = []
    monkeypatch.setattr(kafka, "start_broker", started.append)
    node = kafka.add_broker()
    assert (node, started, kafka.config.brokers) == (3, [3], 4)
    assert kafka.properties[:3] == before
    added = kafka.properties[3]
    assert added["process.roles"] == "broker" and "CONTROLLER" not in added["listeners"]
    assert added["controller.quorum.voters"] == before[0]["controller.quorum.voters"]
    assert added["listeners"] == f"INTERNAL://127.0.0.1:{kafka.internal[3]},EXTERNAL://127.0.0.1:{kafka.external[3]}"
    assert before[0]["listeners"].split(",")[1] == f"CONTROLLER://127.0.0.1:{kafka.controller[0]}"
