import json

import pytest

from components import kube
from components.ingestion import kafka_connect
from components.ingestion.config import KafkaConnectConfig, PostgresConfig, S3SinkConfig, TopicsConfig
from tests.shell import assert_valid_sh

CONNECTOR_ARGS = (PostgresConfig(), TopicsConfig(), S3SinkConfig().resolve("datapipe-raw-test", "eu-west-1", None),
                  "pg", 5432, "http://sr:8081")


def test_worker_properties_distributed_mode_with_config_provider():
    props = kafka_connect.worker_properties("kafka:9092", TopicsConfig())
    assert props["group.id"] == "datapipe-connect"
    for kind in ("config", "offset", "status"):
        assert props[f"{kind}.storage.replication.factor"] == "3"
    assert props["config.providers"] == "dir"
    assert props["config.providers.dir.class"].endswith("DirectoryConfigProvider")
    assert props["config.providers.dir.param.allowed.paths"] == kafka_connect.SECRETS_DIR


@pytest.mark.parametrize("topic_codec, producer_codec", [("lz4", "lz4"), ("zstd", "zstd"), ("producer", "lz4"),
                                                          ("uncompressed", "none")])
def test_source_producers_compress_with_the_topics_codec(topic_codec, producer_codec):
    props = kafka_connect.worker_properties("kafka:9092", TopicsConfig(compression=topic_codec))
    assert props["producer.compression.type"] == producer_codec
    assert (props["producer.linger.ms"], props["producer.batch.size"]) == ("20", "262144")
    assert (props["producer.max.in.flight.requests.per.connection"], props["producer.enable.idempotence"]) == \
        ("5", "true")  # idempotence: per-partition order holds with 5 in flight


def test_connectors_cannot_override_their_client_settings():
    assert kafka_connect.worker_properties("kafka:9092", TopicsConfig())["connector.client.config.override.policy"] \
        == "None"
    for body in kafka_connect.connector_files(*CONNECTOR_ARGS).values():
        assert not [k for k in json.loads(body) if k.startswith(("producer.override.", "consumer.override.",
                                                                  "admin.override."))]


def test_env_uses_confluent_mapping_and_heap_from_config():
    env = {e["name"]: e.get("value") for e in kafka_connect.container_env(KafkaConnectConfig(), "kafka:9092", TopicsConfig())}
    assert env["CONNECT_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR"] == "3"
    assert env["CONNECT_CONFIG_PROVIDERS_DIR_PARAM_ALLOWED_PATHS"] == kafka_connect.SECRETS_DIR
    assert env["KAFKA_HEAP_OPTS"] == "-Xms1536m -Xmx1536m"
    assert "-XX:+UseG1GC" in env["KAFKA_JVM_PERFORMANCE_OPTS"]


def test_confluent_env_mapping_rules():
    env = kube.confluent_env("CONNECT", {"a.b_c-d": "1"})
    assert env == [{"name": "CONNECT_A_B__C___D", "value": "1"}]


def test_pod_shape_init_containers_fit_inside_the_worker_limit():
    manifests = kafka_connect.manifests(KafkaConnectConfig(), TopicsConfig(), "ns", "ingestion", [], "kafka:9092",
                                        {"x.json": "{}"}, "digest")
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert [c["name"] for c in pod["initContainers"]] == ["plugins", "topics"]
    worker_limit = pod["containers"][0]["resources"]["limits"]["memory"]
    assert worker_limit == "2Gi"
    for init in pod["initContainers"]:
        assert init["resources"]["limits"]["memory"] == "512Mi"
    assert pod["enableServiceLinks"] is False
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["datapipe.io/connectors-sha256"] == "digest"
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
    assert secret_volume["secret"]["secretName"] == kafka_connect.SECRET_NAME


def test_a_topic_change_rolls_the_pod_so_its_topics_init_container_applies_it():
    def scripts_hash(topics):
        manifests = kafka_connect.manifests(KafkaConnectConfig(), topics, "ns", "ingestion", [], "kafka:9092",
                                            {"x.json": "{}"}, "digest")
        deployment = next(m for m in manifests if m["kind"] == "Deployment")
        return deployment["spec"]["template"]["metadata"]["annotations"]["datapipe.io/scripts-sha256"]

    assert scripts_hash(TopicsConfig()) == scripts_hash(TopicsConfig())
    assert scripts_hash(TopicsConfig(partitions=12)) != scripts_hash(TopicsConfig())
    assert scripts_hash(TopicsConfig(retention_hours=24)) != scripts_hash(TopicsConfig())


def test_scripts_are_valid_shell_and_pin_plugin_versions():
    assert_valid_sh(kafka_connect.WORKER_SCRIPT)
    script = kafka_connect.install_plugins_script(KafkaConnectConfig())
    assert_valid_sh(script)
    assert "debezium-connector-postgres/3.6.1.Final/" in script
    assert "confluentinc/kafka-connect-s3:10.6.7" in script
