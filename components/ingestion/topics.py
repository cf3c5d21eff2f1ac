"""The topics the pipeline uses, declared as code, and the script that makes a cluster match them.

The brokers refuse to auto-create topics, so everything a producer writes to is listed here:
the CDC topics, Debezium's heartbeat topic, the S3 sink's dead-letter topic and Kafka Connect's
internal topics (compacted, as Connect requires)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from components.ingestion.config import TopicsConfig

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
    """POSIX sh: wait for the cluster, create missing topics, then set each topic's configs so a
    changed retention or compression reaches existing topics too. Reads $BOOTSTRAP_SERVERS."""
    lines = [
        "set -eu",
        'until %s --bootstrap-server "$BOOTSTRAP_SERVERS" --list >/dev/null 2>&1; do' % topics_cmd,
        '  echo "waiting for Kafka at $BOOTSTRAP_SERVERS"; sleep 5',
        "done",
    ]
    for spec in specs:
        name = shlex.quote(spec.name)
        create = [topics_cmd, '--bootstrap-server "$BOOTSTRAP_SERVERS"', "--create", "--if-not-exists",
                  f"--topic {name}", f"--partitions {spec.partitions}", f"--replication-factor {spec.replication_factor}"]
        create += [f"--config {shlex.quote(f'{k}={v}')}" for k, v in spec.configs.items()]
        lines.append(" ".join(create))
        if spec.configs:
            pairs = shlex.quote(",".join(f"{k}={v}" for k, v in spec.configs.items()))
            lines.append(f'{configs_cmd} --bootstrap-server "$BOOTSTRAP_SERVERS" --alter --entity-type topics '
                         f"--entity-name {name} --add-config {pairs}")
    lines.append('echo "topics ready"')
    return "\n".join(lines) + "\n"
