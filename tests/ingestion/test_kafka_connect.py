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
    assert [c["name"] for c in pod["initContainers"]] == ["plugins", "topics", "jmx-exporter"]
    worker_limit = pod["containers"][0]["resources"]["limits"]["memory"]
    assert worker_limit == "2Gi"
    for init in pod["initContainers"][:2]:
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


def run_install_script(tmp_path, config, archive):
    """The `plugins` init container's script with sh, tar and sha512sum, and stand-ins for curl
    (serves `archive`) and confluent-hub (records its call); the plugin directory is in tmp_path."""
    import subprocess

    plugins, bin_dir = tmp_path / "plugins", tmp_path / "bin"
    plugins.mkdir()
    bin_dir.mkdir()
    (bin_dir / "curl").write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\ncp "$FAKE_ARCHIVE" "$2"\n')
    (bin_dir / "confluent-hub").write_text('#!/bin/sh\necho "$@" > "$FAKE_HUB_LOG"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = kafka_connect.install_plugins_script(config).replace(kafka_connect.PLUGINS_DIR, str(plugins))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_ARCHIVE": str(archive), "FAKE_HUB_LOG": str(tmp_path / "hub")}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True), plugins


def plugin_archive(tmp_path, content: bytes):
    import hashlib
    import io
    import tarfile

    path = tmp_path / "plugin.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("debezium-connector-postgres/connector.jar")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return path, hashlib.sha512(path.read_bytes()).hexdigest()


def test_plugin_archive_is_unpacked_only_when_its_sha512_matches(tmp_path):
    archive, sha512 = plugin_archive(tmp_path, b"the connector")
    config = KafkaConnectConfig.model_validate({"plugins": {"debeziumPostgresSha512": sha512}})
    result, plugins = run_install_script(tmp_path, config, archive)
    assert result.returncode == 0, result.stderr
    assert (plugins / "debezium-connector-postgres" / "connector.jar").read_bytes() == b"the connector"
    assert not (plugins / ".debezium-plugin.tar.gz").exists()
    assert "confluentinc/kafka-connect-s3:10.6.7" in (tmp_path / "hub").read_text()


def test_a_tampered_plugin_archive_is_refused_before_anything_is_unpacked(tmp_path):
    archive, _ = plugin_archive(tmp_path, b"something else")
    result, plugins = run_install_script(tmp_path, KafkaConnectConfig(), archive)  # the pinned 3.6.1.Final hash
    assert result.returncode == 1
    assert "kafkaConnect.plugins.debeziumPostgresSha512" in result.stderr and "not installed" in result.stderr
    assert [p.name for p in plugins.iterdir()] == [".debezium-plugin.tar.gz"]  # nothing unpacked
    assert not (tmp_path / "hub").exists()


def test_another_debezium_version_needs_its_archive_sha512():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="plugins.debeziumPostgres\n.*Debezium 3.7.0.Final has no pinned archive "
                                              "hash: set debeziumPostgresSha512.*3.7.0.Final-plugin.tar.gz.sha512"):
        KafkaConnectConfig.model_validate({"plugins": {"debeziumPostgres": "3.7.0.Final"}})
    pinned = KafkaConnectConfig.model_validate({"plugins": {"debeziumPostgres": "3.7.0.Final",
                                                            "debeziumPostgresSha512": "a" * 128}}).plugins
    assert pinned.debezium_archive_sha512 == "a" * 128
    with pytest.raises(ValidationError, match="debeziumPostgresSha512"):
        KafkaConnectConfig.model_validate({"plugins": {"debeziumPostgresSha512": "A" * 128}})


def test_a_pinned_s3_sink_archive_is_installed_from_the_checked_file(tmp_path):
    archive, sha512 = plugin_archive(tmp_path, b"the connector")  # the stand-in curl serves it for both URLs
    url = "https://mirror.example.com/confluentinc-kafka-connect-s3-10.6.7.zip"
    plugins = {"debeziumPostgresSha512": sha512, "confluentS3SinkArchive": url, "confluentS3SinkSha512": sha512}
    result, directory = run_install_script(tmp_path, KafkaConnectConfig.model_validate({"plugins": plugins}), archive)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hub").read_text().split()[-1] == f"{directory}/.s3-sink.zip"


def test_a_tampered_s3_sink_archive_is_refused_before_confluent_hub_runs(tmp_path):
    archive, sha512 = plugin_archive(tmp_path, b"the connector")
    plugins = {"debeziumPostgresSha512": sha512, "confluentS3SinkArchive": "https://mirror.example.com/s3-sink.zip",
               "confluentS3SinkSha512": "0" * 128}
    result, _ = run_install_script(tmp_path, KafkaConnectConfig.model_validate({"plugins": plugins}), archive)
    assert result.returncode == 1
    assert "kafkaConnect.plugins.confluentS3SinkSha512" in result.stderr and "not installed" in result.stderr
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize("plugins", [{"confluentS3SinkArchive": "https://mirror.example.com/s3-sink.zip"},
                                     {"confluentS3SinkSha512": "0" * 128}])
def test_the_s3_sink_archive_and_its_hash_go_together(plugins):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="confluentS3SinkArchive and confluentS3SinkSha512 go together"):
        KafkaConnectConfig.model_validate({"plugins": plugins})
