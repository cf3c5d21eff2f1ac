"""The topics the pipeline uses, declared as code, and the script that makes a cluster match them.

The brokers refuse to auto-create topics, so everything a producer writes to is listed here:
the CDC topics, Debezium's heartbeat topic, the S3 sink's dead-letter topic and Kafka Connect's
internal topics (compacted, as Connect requires)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from components.ingestion.config import TopicsConfig
from components.quoting import shell_word

TOPIC_PREFIX = "postgres"  # Debezium topic.prefix: topics are postgres.public.<table>
DLQ_TOPIC = "s3-sink-dlq"
CONNECT_CONFIG_TOPIC = "connect-configs"
CONNECT_OFFSET_TOPIC = "connect-offsets"
CONNECT_STATUS_TOPIC = "connect-status"
HEARTBEAT_TOPIC = f"__debezium-heartbeat.{TOPIC_PREFIX}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def cdc_topic(table: str) -> str:
    return f"{TOPIC_PREFIX}.public.{table}"


def declared_topics(topics: TopicsConfig) -> list[TopicSpec]:
    retention_ms = str(topics.retention_hours * 3600 * 1000)
    rf = topics.replication_factor
    durable = {"min.insync.replicas": str(topics.min_insync_replicas)}
    data = {"compression.type": topics.compression, "retention.ms": retention_ms, **durable}
    compacted = {"cleanup.policy": "compact", **durable}
    return [
        *(TopicSpec(cdc_topic(t), topics.partitions, rf, dict(data)) for t in topics.tables),
        TopicSpec(HEARTBEAT_TOPIC, 1, rf, dict(data)),
        TopicSpec(DLQ_TOPIC, 1, rf, dict(data)),
        TopicSpec(CONNECT_CONFIG_TOPIC, 1, rf, dict(compacted)),
        TopicSpec(CONNECT_OFFSET_TOPIC, 25, rf, dict(compacted)),
        TopicSpec(CONNECT_STATUS_TOPIC, 5, rf, dict(compacted)),
    ]


def ensure_topics_script(specs: list[TopicSpec], topics_cmd: str = "kafka-topics",
                         configs_cmd: str = "kafka-configs") -> str:
    """POSIX sh: wait for the cluster, create missing topics, set each topic's configs so a changed
    retention or compression reaches existing topics too, then raise partition counts that are
    below the declared ones. Reads $BOOTSTRAP_SERVERS and $KAFKA_CLIENT_CONFIG (the client's
    security settings: kafka_connect.admin_client_properties).

    Kafka can add partitions but never remove them, and a replication-factor change is a
    reassignment; both are reported on stderr and left alone rather than failing the pod."""
    bootstrap = '--bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$KAFKA_CLIENT_CONFIG"'
    lines = [
        "set -eu",
        f"until {topics_cmd} {bootstrap} --list >/dev/null 2>&1; do",
        '  echo "waiting for Kafka at $BOOTSTRAP_SERVERS"; sleep 5',
        "done",
    ]
    for spec in specs:
        name = shell_word(spec.name)
        create = [topics_cmd, bootstrap, "--create", "--if-not-exists",
                  f"--topic {name}", f"--partitions {shell_word(spec.partitions)}",
                  f"--replication-factor {shell_word(spec.replication_factor)}"]
        create += [f"--config {shell_word(f'{k}={v}')}" for k, v in spec.configs.items()]
        lines.append(" ".join(create))
        if spec.configs:
            pairs = shell_word(",".join(f"{k}={v}" for k, v in spec.configs.items()))
            lines.append(f"{configs_cmd} {bootstrap} --alter --entity-type topics "
                         f"--entity-name {name} --add-config {pairs}")
    # One --describe for all topics (each CLI call is a JVM start). Its summary line per topic is
    # "Topic: <name><TAB>TopicId: ..<TAB>PartitionCount: N<TAB>ReplicationFactor: R<TAB>Configs: ..";
    # the per-partition lines are indented. sed only: it is all the Kafka images are sure to have.
    lines += [
        f"described=$({topics_cmd} {bootstrap} --describe)",
        "field_of() {  # <topic as a sed pattern> <field>",
        '  printf "%s\\n" "$described" | sed -n "s/^Topic: $1[[:space:]].*[[:space:]]$2: *\\([0-9][0-9]*\\).*/\\1/p"',
        "}",
        "ensure_partitions() {  # <topic> <topic as a sed pattern> <partitions> <replication factor>",
        '  partitions=$(field_of "$2" PartitionCount); replicas=$(field_of "$2" ReplicationFactor)',
        '  if [ -z "$partitions" ]; then echo "topic $1 is missing from kafka-topics --describe" >&2; exit 1; fi',
        '  if [ "$partitions" -lt "$3" ]; then',
        '    echo "topic $1: raising partitions from $partitions to $3 (keys hash to other partitions from now on:'
        ' per-key order holds among records written after the change)"',
        f'    {topics_cmd} {bootstrap} --alter --topic "$1" --partitions "$3"',
        '  elif [ "$partitions" -gt "$3" ]; then',
        '    echo "WARNING: topic $1 keeps its $partitions partitions: Kafka cannot reduce them to the declared $3" >&2',
        "  fi",
        '  if [ "$replicas" != "$4" ]; then',
        '    echo "WARNING: topic $1 has replication factor $replicas, not the declared $4: changing it takes'
        ' a partition reassignment (kafka-reassign-partitions), which this script does not do" >&2',
        "  fi",
        "}",
    ]
    for spec in specs:
        lines.append(f"ensure_partitions {shell_word(spec.name)} {shell_word(_sed_literal(spec.name))} "
                     f"{shell_word(spec.partitions)} {shell_word(spec.replication_factor)}")
    lines.append('echo "topics ready"')
    return "\n".join(lines) + "\n"


def _sed_literal(text: str) -> str:
    """`text` as a basic regular expression matching only itself (topic names are [a-zA-Z0-9._-])."""
    return re.sub(r"([.\[\]*^$\\/])", r"\\\1", text)
