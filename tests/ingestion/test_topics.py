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


# The script against a stand-in Kafka CLI that records its calls and answers --describe in the
# format of Kafka 3.9 (a summary line per topic, indented per-partition lines); the real CLI runs it
# by the real-service tests (tests/services).
FAKE_CLI = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
case "$*" in *--describe*) cat "$DESCRIBE" ;; esac
"""


def describe_line(topic: str, partitions: int, replicas: int) -> str:
    summary = f"Topic: {topic}\tTopicId: q1w2e3\tPartitionCount: {partitions}\tReplicationFactor: {replicas}\t" \
              "Configs: min.insync.replicas=2,cleanup.policy=compact\n"
    return summary + "".join(f"\tTopic: {topic}\tPartition: {p}\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3\n"
                             for p in range(partitions))


def run_script(tmp_path, specs, described: str):
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for cli in ("kafka-topics", "kafka-configs"):
        (bin_dir / cli).write_text(FAKE_CLI)
        (bin_dir / cli).chmod(0o755)
    (tmp_path / "describe.txt").write_text(described)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BOOTSTRAP_SERVERS": "k:9092",
           "KAFKA_CLIENT_CONFIG": "/etc/admin.properties", "CALLS": str(calls), "DESCRIBE": str(tmp_path / "describe.txt")}
    script = topics.ensure_topics_script(specs)
    assert_valid_sh(script)
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    return result, calls.read_text().splitlines()


def alters(calls):
    return [c for c in calls if c.startswith("kafka-topics") and "--alter" in c]


def test_partitions_below_the_declared_count_are_raised(tmp_path):
    specs = [topics.TopicSpec("postgres.public.users", 6, 3), topics.TopicSpec("connect-configs", 1, 3)]
    # A name that differs only where the dot is: the dot must not match any character.
    described = describe_line("postgresXpublicXusers", 12, 3) + describe_line("postgres.public.users", 2, 3) \
        + describe_line("connect-configs", 1, 3)
    result, calls = run_script(tmp_path, specs, described)
    assert result.returncode == 0, result.stderr
    assert alters(calls) == ['kafka-topics --bootstrap-server k:9092 --command-config /etc/admin.properties --alter --topic postgres.public.users --partitions 6']
    assert "raising partitions from 2 to 6" in result.stdout
    assert result.stdout.rstrip().endswith("topics ready")
    assert sum("--describe" in c for c in calls) == 1  # one JVM start for all topics
    assert result.stderr == ""


def test_matching_topics_are_left_alone(tmp_path):
    specs = topics.declared_topics(TopicsConfig())
    described = "".join(describe_line(s.name, s.partitions, s.replication_factor) for s in specs)
    result, calls = run_script(tmp_path, specs, described)
    assert result.returncode == 0, result.stderr
    assert alters(calls) == []
    assert result.stderr == ""


def test_fewer_partitions_or_another_replication_factor_warn_and_change_nothing(tmp_path):
    specs = [topics.TopicSpec("orders", 3, 3)]
    result, calls = run_script(tmp_path, specs, describe_line("orders", 8, 2))
    assert result.returncode == 0, result.stderr
    assert alters(calls) == []
    assert "keeps its 8 partitions: Kafka cannot reduce them to the declared 3" in result.stderr
    assert "replication factor 2, not the declared 3" in result.stderr
    assert "kafka-reassign-partitions" in result.stderr


def test_a_topic_missing_from_describe_fails_the_script(tmp_path):
    result, _ = run_script(tmp_path, [topics.TopicSpec("orders", 3, 3)], describe_line("other", 3, 3))
    assert result.returncode != 0
    assert "topic orders is missing from kafka-topics --describe" in result.stderr
    assert "topics ready" not in result.stdout
