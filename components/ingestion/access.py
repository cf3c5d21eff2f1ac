"""Who may do what on Kafka: the principals, their SCRAM credentials and ACLs, and the client
settings every Kafka client of the layer uses (TLS + SASL/SCRAM-SHA-512).

- `kafka-broker`: the brokers themselves (inter-broker SCRAM on INTERNAL, and the certificate's
  CN on the mTLS CONTROLLER listener); a super user, as Kafka requires of brokers.
- `datapipe-admin`: the `topics` init container, which declares the topics and the ACLs below.
  Whoever may create ACLs may grant itself anything, so it is a super user too; its password is
  mounted only into that init container.
- `kafka-connect`, `schema-registry`: each only what it needs (ACLS).
- `datapipe-reader`: read-only, for users and Spark: the CDC topics, in consumer groups named
  `datapipe-reader-*`.
No ACL, no access (`allow.everyone.if.no.acl.found=false`).

Every principal's SCRAM credential is written into the cluster's metadata when the brokers format
their storage (`kafka-storage format --add-scram`, KIP-900), so it exists before any client
connects, with no plaintext bootstrap step. Passwords are files of a mounted Secret, referenced
from properties as `${dir:<dir>:<principal>}` (Kafka's DirectoryConfigProvider), never inlined."""

from __future__ import annotations

from dataclasses import dataclass

from components.ingestion import topics as topic_decl
from components.ingestion.connectors import SINK_NAME, secret_ref
from components.quoting import shell_word

SCRAM = "SCRAM-SHA-512"
BROKER = "kafka-broker"
ADMIN = "datapipe-admin"
CONNECT = "kafka-connect"
REGISTRY = "schema-registry"
READER = "datapipe-reader"
PRINCIPALS = (BROKER, ADMIN, CONNECT, REGISTRY, READER)
SUPER_USERS = (BROKER, ADMIN)
READER_GROUP_PREFIX = "datapipe-reader-"
CONNECT_GROUP = "datapipe-connect"
REGISTRY_GROUP = "schema-registry"  # Schema Registry's default schema.registry.group.id
REGISTRY_TOPIC = "_schemas"
DIRECTORY_PROVIDER = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"


def provider_properties(secrets_dir: str) -> dict[str, str]:
    """Lets a Kafka config resolve `${dir:<secrets_dir>:<file>}` (and nothing outside that directory)."""
    return {"config.providers": "dir", "config.providers.dir.class": DIRECTORY_PROVIDER,
            "config.providers.dir.param.allowed.paths": secrets_dir}


def scram_jaas(user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def client_properties(user: str, secrets_dir: str, truststore: str) -> dict[str, str]:
    """A Kafka client's security settings: SASL/SCRAM over TLS, the stack's CA as the only trust
    anchor (PEM), the password read from `<secrets_dir>/<user>` by the config's `dir` provider."""
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": SCRAM,
        "sasl.jaas.config": scram_jaas(user, secret_ref(secrets_dir, user)),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": truststore,
    }


def scram_format_args(secrets_dir: str) -> str:
    """`--add-scram` arguments for `kafka-storage format`, one per principal, the password read
    from its file when the script runs (passwords are alphanumeric: see KafkaCluster)."""
    return " ".join(f'--add-scram "{SCRAM}=[name={p},password=$(cat {secrets_dir}/{p})]"' for p in PRINCIPALS)


@dataclass(frozen=True)
class Acl:
    principal: str
    operations: tuple[str, ...]
    resource: str  # --topic, --group or --cluster
    names: tuple[str, ...] = ()
    prefixed: bool = False

    def args(self) -> list[str]:
        words = ["--add", f"--allow-principal {shell_word('User:' + self.principal)}"]
        words += [f"--operation {op}" for op in self.operations]
        words += ["--cluster"] if self.resource == "cluster" else [f"--{self.resource} {shell_word(n)}" for n in self.names]
        if self.prefixed:
            words.append("--resource-pattern-type prefixed")
        return words


def acls() -> list[Acl]:
    cdc_prefix = f"{topic_decl.TOPIC_PREFIX}."
    connect_topics = (topic_decl.CONNECT_CONFIG_TOPIC, topic_decl.CONNECT_OFFSET_TOPIC,
                      topic_decl.CONNECT_STATUS_TOPIC)
    return [
        # Connect: its three internal topics; Debezium writes the CDC and heartbeat topics, the S3
        # sink reads the CDC topics (group connect-<connector>) and writes its dead-letter topic.
        Acl(CONNECT, ("Read", "Write", "Describe", "DescribeConfigs"), "topic", connect_topics),
        Acl(CONNECT, ("Read", "Write", "Describe", "DescribeConfigs"), "topic", (cdc_prefix,), prefixed=True),
        Acl(CONNECT, ("Write", "Describe"), "topic", (topic_decl.HEARTBEAT_TOPIC, topic_decl.DLQ_TOPIC)),
        Acl(CONNECT, ("Read",), "group", (CONNECT_GROUP, f"connect-{SINK_NAME}")),
        # The worker looks up the cluster id (DescribeCluster) at start.
        Acl(CONNECT, ("Describe",), "cluster"),
        # Schema Registry: its compacted store topic, which it creates itself, and its group.
        Acl(REGISTRY, ("Create", "Read", "Write", "Describe", "DescribeConfigs"), "topic", (REGISTRY_TOPIC,)),
        Acl(REGISTRY, ("Read", "Describe"), "group", (REGISTRY_GROUP,)),
        Acl(REGISTRY, ("Describe",), "cluster"),
        # Users and Spark: read the CDC topics, in their own consumer groups.
        Acl(READER, ("Read", "Describe"), "topic", (cdc_prefix,), prefixed=True),
        Acl(READER, ("Read",), "group", (READER_GROUP_PREFIX,), prefixed=True),
    ]


def acls_script(acl_cmd: str = "kafka-acls") -> str:
    """Lines for the `topics` init container (POSIX sh; reads $BOOTSTRAP_SERVERS and
    $KAFKA_CLIENT_CONFIG): adds every ACL. Adding an existing ACL changes nothing."""
    connection = '--bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$KAFKA_CLIENT_CONFIG"'
    return "\n".join(f"{acl_cmd} {connection} " + " ".join(acl.args()) + " >/dev/null" for acl in acls()) + "\n"
