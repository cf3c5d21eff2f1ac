import json
import re

from components.ingestion import connectors, kafka_connect
from components.ingestion.config import PostgresConfig, S3SinkConfig, TopicsConfig

REGISTRY = connectors.RegistryEndpoint("https://schema-registry:8081", "/opt/connect-secrets", "/opt/connect-trust")
# The bucket and region come from the cloud layer at deploy time.
ON_AWS = S3SinkConfig().resolve("datapipe-raw-test", "eu-west-1", None)
SECRET_KEYS = re.compile(r"password|secret|user\.info", re.I)


def test_debezium_source_settings():
    config = connectors.debezium_source(PostgresConfig(), TopicsConfig(), "pg.host", 5432, REGISTRY)
    assert config["plugin.name"] == "pgoutput"
    assert config["publication.name"] == "dbz_publication"
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["topic.prefix"] == "postgres"
    assert config["table.include.list"] == "public.users,public.products,public.orders,public.order_items"
    assert config["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    assert config["transforms.unwrap.delete.tombstone.handling.mode"] == "rewrite"
    assert "drop.tombstones" not in json.dumps(config)  # removed in Debezium 3
    assert int(config["heartbeat.interval.ms"]) > 0 and "debezium_heartbeat" in config["heartbeat.action.query"]
    assert not any(k.startswith("errors.deadletterqueue") for k in config)  # sources have no DLQ
    assert config["database.hostname"] == "pg.host"


def test_s3_sink_settings():
    config = connectors.s3_sink(ON_AWS, TopicsConfig(), REGISTRY)
    assert (config["s3.bucket.name"], config["s3.region"]) == ("datapipe-raw-test", "eu-west-1")
    assert config["topics.dir"] == "cdc"
    assert config["format.class"].endswith("ParquetFormat") and config["parquet.codec"] == "snappy"
    assert config["path.format"] == "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"
    assert config["partition.duration.ms"] == "3600000"
    assert (config["flush.size"], config["rotate.schedule.interval.ms"]) == ("1000", "60000")
    assert config["timezone"] == "UTC" and config["locale"]
    assert config["errors.deadletterqueue.topic.name"] == "s3-sink-dlq"
    assert config["behavior.on.null.values"] == "ignore"
    assert config["topics"].split(",") == [f"postgres.public.{t}" for t in TopicsConfig().tables]
    assert "store.url" not in config


def test_s3_sink_custom_endpoint_uses_path_style():
    store = "http://batch-analytics-control-plane:30045"
    in_cluster = S3SinkConfig().resolve("datapipe-raw", "us-east-1", store)
    config = connectors.s3_sink(in_cluster, TopicsConfig(), REGISTRY)
    assert config["store.url"] == store and config["s3.path.style.access.enabled"] == "true"


def test_every_secret_setting_is_a_config_provider_reference():
    for config in (connectors.debezium_source(PostgresConfig(), TopicsConfig(), "h", 5432, REGISTRY),
                   connectors.s3_sink(ON_AWS, TopicsConfig(), REGISTRY)):
        secret_settings = {k: v for k, v in config.items() if SECRET_KEYS.search(k) or "access.key" in k}
        assert secret_settings, "expected credentials in the connector"
        for key, value in secret_settings.items():
            assert re.fullmatch(r"\$\{dir:/opt/connect-secrets:[a-z0-9-]+\}", value), (key, value)
    assert config["value.converter.basic.auth.credentials.source"] == "USER_INFO"


def test_connector_files_are_json_bodies_named_after_connectors():
    files = kafka_connect.connector_files(PostgresConfig(), TopicsConfig(), ON_AWS, "pg", 5432, "http://sr:8081")
    assert sorted(files) == ["postgres-cdc-source.json", "s3-archive-sink.json"]
    body = json.loads(files["s3-archive-sink.json"])
    assert body["value.converter.schema.registry.url"] == "http://sr:8081"


def test_resolving_keeps_the_sink_settings_and_adds_the_destination():
    resolved = S3SinkConfig(prefix="archive", flush_size=10).resolve("b-1", "us-east-1", None)
    assert (resolved.prefix, resolved.flush_size, resolved.rotate_interval_seconds) == ("archive", 10, 60)
    assert isinstance(resolved, S3SinkConfig) and resolved.bucket == "b-1" and resolved.endpoint_url is None
