from components.ingestion import topics
from components.ingestion.config import TopicsConfig
from tests.shell import assert_valid_sh


def test_declares_cdc_dlq_heartbeat_and_connect_topics():
    specs = {s.name: s for s in topics.declared_topics(TopicsConfig())}
    assert set(specs) == {
        "postgres.public.users", "postgres.public.products", "postgres.public.orders", "postgres.public.order_items",
        "__debezium-heartbeat.postgres", "s3-sink-dlq", "connect-configs", "connect-offsets", "connect-status",
    }
    users = specs["postgres.public.users"]
    assert (users.partitions, users.replication_factor) == (6, 3)
    assert users.configs == {"compression.type": "lz4", "retention.ms": str(7 * 24 * 3600 * 1000),
                             "min.insync.replicas": "2"}
    assert specs["connect-configs"].partitions == 1  # Connect requires a single-partition config topic
    for name in ("connect-configs", "connect-offsets", "connect-status"):
        assert specs[name].configs["cleanup.policy"] == "compact"
    assert all(s.replication_factor == 3 for s in specs.values())


def test_script_creates_and_updates_every_topic():
    specs = topics.declared_topics(TopicsConfig(retention_hours=24))
    script = topics.ensure_topics_script(specs)
    assert_valid_sh(script)
    for spec in specs:
        assert f"--topic {spec.name}" in script or f"--topic '{spec.name}'" in script
    assert script.count("--create --if-not-exists") == len(specs)
    assert "retention.ms=86400000" in script
    assert script.count("--alter --entity-type topics") == len(specs)
