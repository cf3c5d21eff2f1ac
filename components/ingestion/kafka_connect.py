"""Kafka Connect in distributed mode running the declared connectors.

The pod does three things in order, without costing memory beyond its own limit (init containers
run before, not beside, the worker, so the layer's quota is unchanged):
  1. init `plugins`: install the pinned Debezium PostgreSQL and Confluent S3 sink plugins;
  2. init `topics`: create/update the declared topics (topics.py);
  3. the worker, which then PUTs every declared connector config to its own REST API and
     removes connectors that are no longer declared. The pod turns ready only after that, so a
     rejected connector config fails `pulumi up`. A changed config changes the pod annotation,
     which rolls the pod and re-applies it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.ingestion import access, connectors, topics as topic_decl
from components.cloud.access import S3Client
from components.ingestion.config import (KafkaConnectConfig, PostgresConfig, ResolvedS3Sink, S3SinkConfig,
                                        TopicsConfig, debezium_archive_url)
from components.ingestion.kafka import KafkaCluster
from components.ingestion.postgres import PostgresCdc
from components.ingestion.schema_registry import SchemaRegistry
from components.layer_component import Layer, LayerComponent
from components.observability import jmx
from components.observability.config import JmxExporterConfig
from components.quoting import shell_word, url_path_segment

APP = "kafka-connect"
METRICS_RULES = "kafka-connect-jmx-exporter"
PORT = 8083
UID = 1000
SECRETS_DIR = "/opt/connect-secrets"
TRUST_DIR = "/opt/connect-trust"  # the stack's CA: ca.crt (PEM, Kafka clients), truststore.p12 (Schema Registry client)
ADMIN_SECRETS_DIR = "/opt/kafka-admin"  # datapipe-admin's password: the `topics` init container only
SCRIPTS_DIR = "/datapipe/scripts"
TRUST_CONFIGMAP = "kafka-connect-trust"
ADMIN_SECRET = "kafka-connect-admin"
REST_USER = "connect-admin"
REST_USERS_FILE = "rest-users.properties"
REST_CURL_CONFIG = "rest-curl.conf"
PLUGINS_DIR = "/opt/connect-plugins"
CONNECTORS_DIR = "/etc/kafka-connect/connectors"
SECRET_NAME = "kafka-connect-secrets"
GROUP_ID = "datapipe-connect"
APPLIED_MARKER = "/tmp/datapipe-connectors-applied"
INIT_MEMORY_MIB = 512


# The producer codec for the topics' compression.type: the same codec, so a broker keeps each batch
# as it arrives instead of recompressing it ("producer" lets the producer choose: lz4).
PRODUCER_CODEC = {"producer": "lz4", "uncompressed": "none"}


def kafka_security(secrets_dir: str = SECRETS_DIR, trust_dir: str = TRUST_DIR) -> dict[str, str]:
    """The worker's Kafka security settings, for the worker's own clients and, prefixed, for the
    connectors' producers, consumers and admin clients: Connect passes none of the worker's own
    settings to those, so without the prefixes they would connect in plaintext."""
    client = access.client_properties(access.CONNECT, secrets_dir, f"{trust_dir}/ca.crt")
    return {f"{prefix}{key}": value for prefix in ("", "producer.", "consumer.", "admin.") for key, value in client.items()}


def worker_properties(bootstrap_servers: str, topics: TopicsConfig, secrets_dir: str = SECRETS_DIR,
                      trust_dir: str = TRUST_DIR) -> dict[str, str]:
    """The worker's properties. The `producer.*` settings are the source connectors' producers
    (Debezium's), each from the CDC benchmark's measurements (scripts/bench_cdc.py; README,
    "Throughput and latency")."""
    replication_factor = topics.replication_factor
    return {
        "bootstrap.servers": bootstrap_servers,
        **kafka_security(secrets_dir, trust_dir),
        "group.id": GROUP_ID,
        "config.storage.topic": topic_decl.CONNECT_CONFIG_TOPIC,
        "offset.storage.topic": topic_decl.CONNECT_OFFSET_TOPIC,
        "status.storage.topic": topic_decl.CONNECT_STATUS_TOPIC,
        "config.storage.replication.factor": str(replication_factor),
        "offset.storage.replication.factor": str(replication_factor),
        "status.storage.replication.factor": str(replication_factor),
        # Uncompressed batches into lz4 topics made every broker recompress them: lz4 here took the
        # sustained rate from 5,000 to 10,000 events/s and Connect from 86 to 57 us of CPU per event.
        "producer.compression.type": PRODUCER_CODEC.get(topics.compression, topics.compression),
        # Up to 20 ms to fill batches of up to 256 KiB: a third of the brokers' CPU per event at
        # 10,000-15,000 events/s, for about 20 ms more latency (p99 128 ms at 1,000 events/s).
        "producer.linger.ms": "20",
        "producer.batch.size": "262144",
        # Five produce requests in flight per broker instead of the one Connect sets: with one, the
        # single task waited on each acks=all round trip; 15,000 events/s sustained in every run
        # instead of in 1 of 2. Idempotence keeps each partition's order across retries with several in flight.
        "producer.max.in.flight.requests.per.connection": "5",
        "producer.enable.idempotence": "true",
        # Connectors cannot override their clients' settings: none of ours needs to, and an
        # override could point a producer or consumer elsewhere (Kafka's default policy is All).
        "connector.client.config.override.policy": "None",
        # Worker defaults only; each connector sets its Avro converters explicitly.
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "listeners": f"http://0.0.0.0:{PORT}",
        # Every REST request needs HTTP basic auth (JAAS: rest_jaas_config), but the workers' own
        # forwarded task-config requests, which Connect signs with its internal key.
        "rest.extension.classes": "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension",
        "plugin.path": f"/usr/share/java,/usr/share/confluent-hub-components,{PLUGINS_DIR}",
        # Connector and worker configs reference secrets as ${dir:...}; only the mounted Secret may be read.
        **access.provider_properties(secrets_dir),
        "offset.flush.interval.ms": "10000",
    }


def install_plugins_script(config: KafkaConnectConfig) -> str:
    """The versions, URLs and hashes are checked by the config model and quoted here too: as URL
    path segments, and each word for sh (components/quoting.py). Every archive with a pinned
    SHA-512 is checked against it before anything of it is unpacked."""
    plugins = config.plugins
    url = debezium_archive_url(url_path_segment(plugins.debezium_postgres))
    hub = "confluent-hub install --no-prompt --component-dir {dir} --worker-configs /dev/null".format(dir=PLUGINS_DIR)
    if plugins.confluent_s3_sink_archive:
        s3_sink = (f"fetch_verified {shell_word(plugins.confluent_s3_sink_archive)} "
                   f"{shell_word(plugins.confluent_s3_sink_sha512)} {PLUGINS_DIR}/.s3-sink.zip confluentS3SinkSha512\n"
                   f"{hub} {PLUGINS_DIR}/.s3-sink.zip\n"
                   f"rm -f {PLUGINS_DIR}/.s3-sink.zip")
    else:
        s3_sink = f"{hub} {shell_word(f'confluentinc/kafka-connect-s3:{plugins.confluent_s3_sink}')}"
    return f"""set -eu
fetch_verified() {{  # <url> <sha512> <file> <config key of the hash>
  curl -fsSL -o "$3" "$1"
  actual=$(sha512sum "$3" | cut -d' ' -f1)
  if [ "$actual" != "$2" ]; then
    echo "datapipe: the SHA-512 of $1 is $actual, not $2 (kafkaConnect.plugins.$4): not installed" >&2
    exit 1
  fi
}}
fetch_verified {shell_word(url)} {shell_word(plugins.debezium_archive_sha512)} {PLUGINS_DIR}/.debezium-plugin.tar.gz debeziumPostgresSha512
tar -xzf {PLUGINS_DIR}/.debezium-plugin.tar.gz -C {PLUGINS_DIR}
rm -f {PLUGINS_DIR}/.debezium-plugin.tar.gz
{s3_sink}
ls {PLUGINS_DIR}
"""


def rest_jaas_config(secrets_dir: str = SECRETS_DIR) -> str:
    """JAAS for the REST API's basic auth: the users file is in the Secret; this text only points
    at it, so it can live in a ConfigMap."""
    return ("KafkaConnect {\n"
            "  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n"
            f'  file="{secrets_dir}/{REST_USERS_FILE}";\n'
            "};\n")


def admin_client_properties(trust_dir: str = TRUST_DIR, secrets_dir: str = ADMIN_SECRETS_DIR) -> dict[str, str]:
    """The `topics` init container's --command-config: datapipe-admin over SASL_SSL."""
    return {**access.client_properties(access.ADMIN, secrets_dir, f"{trust_dir}/ca.crt"),
            **access.provider_properties(secrets_dir)}


WORKER_SCRIPT = f"""set -u
rm -f {APPLIED_MARKER}
/etc/confluent/docker/run &
worker=$!
rest=http://localhost:{PORT}
# The REST credentials as a curl config file from the Secret: never on a command line.
curl() {{ command curl -K {SECRETS_DIR}/{REST_CURL_CONFIG} "$@"; }}
apply_connectors() {{
  until curl -fsS "$rest/connectors" >/dev/null 2>&1; do
    kill -0 "$worker" 2>/dev/null || return 1
    sleep 5
  done
  ok=1
  for file in {CONNECTORS_DIR}/*.json; do
    name=$(basename "$file" .json)
    if curl -fsS -X PUT -H 'Content-Type: application/json' --data @"$file" "$rest/connectors/$name/config" >/dev/null; then
      echo "datapipe: connector $name applied"
    else
      echo "datapipe: connector $name was rejected by Kafka Connect" >&2; ok=0
    fi
  done
  for name in $(curl -fsS "$rest/connectors" | tr -d '[]"' | tr ',' ' '); do
    if [ ! -f "{CONNECTORS_DIR}/$name.json" ]; then
      curl -fsS -X DELETE "$rest/connectors/$name" && echo "datapipe: connector $name removed (no longer declared)"
    fi
  done
  [ "$ok" = 1 ] && touch {APPLIED_MARKER}
}}
apply_connectors &
wait "$worker"
"""


def connector_files(postgres: PostgresConfig, topics: TopicsConfig, sink: ResolvedS3Sink,
                    db_host: str, db_port: int, registry_url: str) -> dict[str, str]:
    """File name -> JSON body for PUT /connectors/<name>/config."""
    registry = connectors.RegistryEndpoint(url=registry_url, secrets_dir=SECRETS_DIR, trust_dir=TRUST_DIR)
    bodies = {
        connectors.SOURCE_NAME: connectors.debezium_source(postgres, topics, db_host, db_port, registry),
        connectors.SINK_NAME: connectors.s3_sink(sink, topics, registry),
    }
    return {f"{name}.json": json.dumps(body, indent=2, sort_keys=True) for name, body in bodies.items()}


def container_env(config: KafkaConnectConfig, bootstrap_servers: str, topics: TopicsConfig) -> list[dict[str, Any]]:
    return kube.confluent_env("CONNECT", worker_properties(bootstrap_servers, topics)) + [
        {"name": "CONNECT_REST_ADVERTISED_HOST_NAME", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        *jvm_env(config),
        {"name": "KAFKA_OPTS", "value": f"-Djava.security.auth.login.config={SCRIPTS_DIR}/rest-jaas.conf "
                                        + jmx.agent_option()},
    ]


def jvm_env(config: KafkaConnectConfig) -> list[dict[str, str]]:
    """The worker's JVM flags, as the image's kafka-run-class.sh reads them (the real-service tests
    start their worker with exactly these)."""
    return [{"name": "KAFKA_HEAP_OPTS", "value": kube.jvm_heap_opts(config.effective_heap_mib)},
            {"name": "KAFKA_JVM_PERFORMANCE_OPTS", "value": kube.G1_OPTS}]


def manifests(config: KafkaConnectConfig, topics: TopicsConfig, namespace: str, layer: str, env: Any,
              bootstrap_servers: Any, connector_data: Any, connectors_sha256: Any,
              trust_sha256: Any = "", jmx_exporter: JmxExporterConfig = JmxExporterConfig()) -> list[dict[str, Any]]:
    """`env`, `bootstrap_servers`, `connector_data` and the hashes may be Outputs (opaque here)."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    topics_script = (topic_decl.ensure_topics_script(topic_decl.declared_topics(topics))
                     + access.acls_script() + 'echo "ACLs declared"\n')
    scripts = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kafka-connect-scripts"),
               "data": {"install-plugins.sh": install_plugins_script(config), "ensure-topics.sh": topics_script,
                        "admin-client.properties": kube.properties_text(admin_client_properties()),
                        "rest-jaas.conf": rest_jaas_config()}}
    declared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kafka-connect-connectors"),
                "data": connector_data}
    init_resources = kube.memory_resources(INIT_MEMORY_MIB, "100m")
    security = kube.restricted_security_context(UID)
    scripts_mount = {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True}
    trust_mount = {"name": "trust", "mountPath": TRUST_DIR, "readOnly": True}
    pod = {
        **kube.service_account(APP),
        "enableServiceLinks": False,
        "securityContext": {"runAsUser": UID, "runAsNonRoot": True, "fsGroup": UID},
        "initContainers": [
            {
                "name": "plugins",
                "image": config.image,
                "command": ["sh", f"{SCRIPTS_DIR}/install-plugins.sh"],
                "resources": init_resources,
                "securityContext": security,
                "volumeMounts": [{"name": "plugins", "mountPath": PLUGINS_DIR}, scripts_mount],
            },
            {
                "name": "topics",
                "image": config.image,
                "command": ["sh", f"{SCRIPTS_DIR}/ensure-topics.sh"],
                "env": [{"name": "BOOTSTRAP_SERVERS", "value": bootstrap_servers},
                        {"name": "KAFKA_CLIENT_CONFIG", "value": f"{SCRIPTS_DIR}/admin-client.properties"},
                        {"name": "KAFKA_HEAP_OPTS", "value": kube.jvm_heap_opts(INIT_MEMORY_MIB // 2)}],
                "resources": init_resources,
                "securityContext": security,
                "volumeMounts": [scripts_mount, trust_mount,
                                 {"name": "admin", "mountPath": ADMIN_SECRETS_DIR, "readOnly": True}],
            },
        ],
        "containers": [{
            "name": APP,
            "image": config.image,
            "command": ["sh", "-c", WORKER_SCRIPT],
            "ports": [{"name": "rest", "containerPort": PORT}],
            "env": env,
            "resources": kube.memory_resources(config.memory_mib, "250m"),
            "securityContext": security,
            "readinessProbe": {"exec": {"command": ["test", "-f", APPLIED_MARKER]},
                               "initialDelaySeconds": 30, "periodSeconds": 10},
            # The REST API answers 401 to a probe (it carries no credentials): alive = accepts TCP.
            "livenessProbe": {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 120,
                              "periodSeconds": 15, "failureThreshold": 6},
            "volumeMounts": [
                {"name": "plugins", "mountPath": PLUGINS_DIR},
                {"name": "connectors", "mountPath": CONNECTORS_DIR, "readOnly": True},
                {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
                scripts_mount, trust_mount,
            ],
        }],
        "volumes": [
            {"name": "plugins", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "scripts", "configMap": {"name": "kafka-connect-scripts"}},
            {"name": "connectors", "configMap": {"name": "kafka-connect-connectors"}},
            {"name": "trust", "configMap": {"name": TRUST_CONFIGMAP}},
            {"name": "secrets", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o400}},
            {"name": "admin", "secret": {"secretName": ADMIN_SECRET, "defaultMode": 0o400}},
        ],
    }
    pod = jmx.instrument(pod, jmx_exporter, METRICS_RULES, UID)
    metrics_rules = jmx.rules_configmap(meta(METRICS_RULES), APP)
    annotations = {
        "datapipe.io/metrics-rules-sha256": kube.sha256(jmx.rules_text(APP)),
        "datapipe.io/connectors-sha256": connectors_sha256,
        "datapipe.io/scripts-sha256": kube.sha256(json.dumps(scripts["data"], sort_keys=True)),
        "datapipe.io/trust-sha256": trust_sha256,
    }
    # Recreate: a surge pod would not fit the layer's memory quota.
    deployment = kube.recreate_deployment(meta(APP), APP, layer, config.replicas, pod, annotations)
    if config.expose_rest:
        service = kube.node_port_service(meta(APP), kube.selector(APP), "rest", PORT, config.node_port)
    else:
        service = kube.cluster_ip_service(meta(APP), kube.selector(APP), "rest", PORT)
    return [scripts, declared, metrics_rules, deployment, service]


def trust_configmap(meta: dict[str, Any], ca: Any) -> dict[str, Any]:
    """The stack's CA, public: PEM for the Kafka clients and PostgreSQL's JDBC driver, a PKCS12
    trust store for the Schema Registry client."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"ca.crt": ca.cert_pem}, "binaryData": {"truststore.p12": ca.truststore_p12_b64}}


@dataclass
class KafkaConnectArgs:
    config: KafkaConnectConfig
    postgres: PostgresConfig
    topics: TopicsConfig
    sink: S3SinkConfig
    layer: Layer
    kafka: KafkaCluster
    registry: SchemaRegistry
    database: PostgresCdc
    # The raw bucket and the sink's own S3 key, from the cloud layer.
    raw_bucket: pulumi.Input[str]
    s3: S3Client
    ca: Any  # tls.CertificateAuthority
    jmx_exporter: JmxExporterConfig = JmxExporterConfig()


class KafkaConnect(LayerComponent):
    url: pulumi.Output[str]
    external_url: pulumi.Output[Optional[str]]  # None unless config.expose_rest
    connector_names: pulumi.Output[list[str]]
    rest_password: pulumi.Output[str]

    def __init__(self, name: str, args: KafkaConnectArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:ingestion:KafkaConnect", name, layer, opts)
        kafka, registry, database = args.kafka, args.registry, args.database
        self.rest_password = self._generated_secret("rest-password")
        secret = self._secret(SECRET_NAME, APP, {
            connectors.POSTGRES_PASSWORD: database.cdc_password,
            connectors.REGISTRY_USER_INFO: pulumi.Output.secret(
                pulumi.Output.concat(registry.client_user, ":", registry.client_password)),
            connectors.S3_ACCESS_KEY_ID: pulumi.Output.secret(args.s3.access_key_id),
            connectors.S3_SECRET_ACCESS_KEY: pulumi.Output.secret(args.s3.secret_access_key),
            access.CONNECT: kafka.passwords[access.CONNECT],
            REST_USERS_FILE: pulumi.Output.concat(REST_USER, "=", self.rest_password, "\n"),
            REST_CURL_CONFIG: pulumi.Output.concat('user = "', REST_USER, ":", self.rest_password, '"\n'),
        })
        admin = self._secret(ADMIN_SECRET, APP, {access.ADMIN: kafka.passwords[access.ADMIN]})
        trust = trust_configmap(layer.metadata(TRUST_CONFIGMAP, APP), args.ca)
        env = kafka.bootstrap_servers.apply(lambda b: container_env(args.config, b, args.topics))
        endpoint = args.s3.endpoint
        files = pulumi.Output.all(database.host, database.port, registry.url, args.raw_bucket).apply(
            lambda v: connector_files(args.postgres, args.topics,
                                      args.sink.resolve(v[3], endpoint.region, endpoint.url), v[0], v[1], v[2]))
        digest = files.apply(lambda f: kube.sha256(json.dumps(f, sort_keys=True)))
        trust_digest = pulumi.Output.from_input(args.ca.cert_pem).apply(kube.sha256)
        self._create([trust, *manifests(args.config, args.topics, layer.namespace, layer.name, env,
                                        kafka.bootstrap_servers, files, digest, trust_digest,
                                        args.jmx_exporter)],
                     depends_on=[secret, admin])
        self.url = pulumi.Output.from_input(layer.in_cluster_url(APP, PORT))
        self.external_url = pulumi.Output.from_input(
            layer.external_url(args.config.host_port) if args.config.expose_rest else None)
        self.connector_names = pulumi.Output.from_input([connectors.SOURCE_NAME, connectors.SINK_NAME])
        self.register_outputs({"url": self.url, "external_url": self.external_url,
                               "connector_names": self.connector_names})
