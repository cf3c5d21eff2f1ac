"""A Kafka cluster in KRaft mode: the first three brokers are also the controllers (3 voters tolerate
one loss), further brokers are brokers only; brokers reach each other on a headless Service, the
host reaches them through NodePorts.

The voter set is fixed at the first `CONTROLLERS` nodes on purpose: a static
`controller.quorum.voters` list is written into every node's storage-formatted cluster, and a
formatted KRaft cluster cannot change it. Adding a broker therefore adds a broker-only node and
leaves every existing node's properties untouched."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.ingestion import access
from components.ingestion.config import KafkaConfig, TopicsConfig
from components.layer_component import Issuer, Layer, LayerComponent
from components.observability import jmx
from components.observability.config import JmxExporterConfig

APP = "kafka"
HEADLESS = "kafka-headless"
METRICS_RULES = "kafka-jmx-exporter"
BOOTSTRAP = "kafka-bootstrap"
INTERNAL_PORT = 9092
CONTROLLER_PORT = 9093
EXTERNAL_PORT = 9094
UID = 1000  # appuser in the apache/kafka image
DATA_DIR = "/var/lib/kafka/data"
LOG_DIR = f"{DATA_DIR}/kraft"  # a subdirectory: the volume root may hold lost+found
CONTROLLERS = 3  # KRaft voters: a majority of 3 survives the loss of one
TLS_DIR = "/etc/kafka/tls"  # keystore.pem (key + certificate chain) and ca.crt, from the Secret kafka-tls
SECRETS_DIR = "/etc/kafka/secrets"  # one password file per principal (access.PRINCIPALS)
TLS_SECRET = "kafka-tls"
CREDENTIALS_SECRET = "kafka-credentials"


def controller_count(brokers: int) -> int:
    return min(CONTROLLERS, brokers)


def default_cluster_id(project: str, stack: str) -> str:
    """A KRaft cluster id that is stable for a stack: storage is formatted with it once, and a
    changed id would make every broker refuse its own data."""
    raw = uuid.uuid5(uuid.NAMESPACE_URL, f"datapipe/{project}/{stack}/kafka").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class BrokerEndpoints:
    """Where each broker is reached: `internal_hosts[node_id]` inside the cluster,
    `external_host:external_ports[node_id]` from the host."""

    internal_hosts: tuple[str, ...]
    external_host: str
    external_ports: tuple[int, ...]


def in_cluster_endpoints(config: KafkaConfig, namespace: str, external_host: str) -> BrokerEndpoints:
    return BrokerEndpoints(
        internal_hosts=tuple(f"{APP}-{i}.{HEADLESS}.{namespace}.svc.cluster.local" for i in range(config.brokers)),
        external_host=external_host,
        external_ports=tuple(config.broker_node_ports),
    )


def broker_properties(node_id: int, config: KafkaConfig, topics: TopicsConfig,
                      endpoints: BrokerEndpoints, log_dir: str = LOG_DIR,
                      tls_dir: str = TLS_DIR, secrets_dir: str = SECRETS_DIR) -> dict[str, str]:
    """server.properties of one broker: nodes below controller_count() are broker and controller,
    the others broker only (Kafka refuses a CONTROLLER listener on a broker-only node).

    Every listener is TLS: INTERNAL (clients and inter-broker) and EXTERNAL (the host) take
    SASL/SCRAM-SHA-512; CONTROLLER takes only brokers, by their certificate (mTLS). Every request
    is authorized by KRaft's StandardAuthorizer against the ACLs of access.py."""
    controllers = controller_count(config.brokers)
    voters = ",".join(f"{i}@{endpoints.internal_hosts[i]}:{CONTROLLER_PORT}" for i in range(controllers))
    internal_rf = min(3, config.brokers)
    is_controller = node_id < controllers
    listeners = [f"INTERNAL://:{INTERNAL_PORT}", f"EXTERNAL://:{EXTERNAL_PORT}"]
    if is_controller:
        listeners.insert(1, f"CONTROLLER://:{CONTROLLER_PORT}")
    scram = access.SCRAM.lower()
    return {
        "process.roles": "broker,controller" if is_controller else "broker",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "listeners": ",".join(listeners),
        "advertised.listeners": (
            f"INTERNAL://{endpoints.internal_hosts[node_id]}:{INTERNAL_PORT},"
            f"EXTERNAL://{endpoints.external_host}:{endpoints.external_ports[node_id]}"
        ),
        "listener.security.protocol.map": "INTERNAL:SASL_SSL,CONTROLLER:SSL,EXTERNAL:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.enabled.mechanisms": access.SCRAM,
        "sasl.mechanism.inter.broker.protocol": access.SCRAM,
        # The broker logs in to INTERNAL as kafka-broker; EXTERNAL only verifies clients.
        f"listener.name.internal.{scram}.sasl.jaas.config": access.scram_jaas(
            access.BROKER, access.secret_ref(secrets_dir, access.BROKER)),
        f"listener.name.external.{scram}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        # One key and certificate per broker set (SANs: every broker's name and the external host);
        # the stack's CA is the only trust anchor. Clients verify the broker's host name (Kafka's default).
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": f"{tls_dir}/keystore.pem",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": f"{tls_dir}/ca.crt",
        "listener.name.controller.ssl.client.auth": "required",
        # The certificate's CN (kafka-broker) is the principal on the controller listener.
        "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9.-]+)(,.*)?$/$1/,DEFAULT",
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(f"User:{user}" for user in access.SUPER_USERS),
        **access.provider_properties(secrets_dir),
        "log.dirs": log_dir,
        # Durability: a write is acknowledged by two of three replicas, and a lagging replica
        # never becomes leader (that would silently drop acknowledged CDC events).
        "default.replication.factor": str(topics.replication_factor),
        "min.insync.replicas": str(topics.min_insync_replicas),
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": str(internal_rf),
        "transaction.state.log.replication.factor": str(internal_rf),
        "transaction.state.log.min.isr": str(min(2, internal_rf)),
        # Topics are declared by the program (topics.py); a typo must not create a topic.
        "auto.create.topics.enable": "false",
        "num.partitions": str(topics.partitions),
        "log.retention.hours": str(topics.retention_hours),
        "group.initial.rebalance.delay.ms": "3000",
    }


def broker_dns_names(config: KafkaConfig, namespace: str) -> list[str]:
    """The names in the brokers' certificate: each broker's headless-Service name and the bootstrap Service."""
    hosts = in_cluster_endpoints(config, namespace, "").internal_hosts
    return [*hosts, f"{BOOTSTRAP}.{namespace}.svc.cluster.local", f"{BOOTSTRAP}.{namespace}.svc"]


def jvm_env(config: KafkaConfig) -> list[dict[str, str]]:
    """The JVM flags of a broker, as the image's kafka-run-class.sh reads them (the real-service
    tests start their brokers with exactly these)."""
    return [{"name": "KAFKA_HEAP_OPTS", "value": kube.jvm_heap_opts(config.effective_heap_mib)},
            {"name": "KAFKA_JVM_PERFORMANCE_OPTS", "value": kube.G1_OPTS},
            {"name": "KAFKA_OPTS", "value": jmx.agent_option()}]


def format_storage_command(secrets_dir: str = SECRETS_DIR, storage_cmd: str = "/opt/kafka/bin/kafka-storage.sh") -> str:
    """Formats a node's storage (reads $KAFKA_CLUSTER_ID and $props) once, with the stack's cluster
    id and every principal's SCRAM credential; on formatted storage it does nothing."""
    # KAFKA_OPTS emptied: the format step's short JVM must not start the metrics agent (its port).
    return (f'KAFKA_OPTS= {storage_cmd} format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" --config "$props" '
            + access.scram_format_args(secrets_dir))


START_SCRIPT = f"""set -eu
id="${{HOSTNAME##*-}}"
props="/etc/kafka/brokers/broker-$id.properties"
{format_storage_command()}
exec /opt/kafka/bin/kafka-server-start.sh "$props"
"""


def manifests(config: KafkaConfig, topics: TopicsConfig, namespace: str, layer: str,
              external_host: str, cluster_id: str, certificate_sha256: Any = "",
              jmx_exporter: JmxExporterConfig = JmxExporterConfig()) -> list[dict[str, Any]]:
    """`certificate_sha256` (may be an Output): a new certificate rolls the brokers."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    endpoints = in_cluster_endpoints(config, namespace, external_host)
    brokers = {
        f"broker-{i}.properties": kube.properties_text(broker_properties(i, config, topics, endpoints))
        for i in range(config.brokers)
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kafka-brokers"), "data": brokers}
    metrics_rules = jmx.rules_configmap(meta(METRICS_RULES), APP)
    tcp = lambda port: {"tcpSocket": {"port": port}}  # noqa: E731
    container = {
        "name": APP,
        "image": config.image,
        "command": ["sh", "-c", START_SCRIPT],
        "ports": [
            {"name": "internal", "containerPort": INTERNAL_PORT},
            {"name": "controller", "containerPort": CONTROLLER_PORT},
            {"name": "external", "containerPort": EXTERNAL_PORT},
        ],
        "env": [
            {"name": "KAFKA_CLUSTER_ID", "value": cluster_id},
            *jvm_env(config),
        ],
        "resources": kube.memory_resources(config.memory_mib, "250m"),
        "securityContext": kube.restricted_security_context(UID),
        "readinessProbe": {**tcp(INTERNAL_PORT), "initialDelaySeconds": 10, "periodSeconds": 5},
        # Every node, broker-only ones included, listens on EXTERNAL; not every node on CONTROLLER.
        "livenessProbe": {**tcp(EXTERNAL_PORT), "initialDelaySeconds": 60, "periodSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "brokers", "mountPath": "/etc/kafka/brokers"},
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            {"name": "credentials", "mountPath": SECRETS_DIR, "readOnly": True},
        ],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(APP),
        "spec": {
            "serviceName": HEADLESS,
            "replicas": config.brokers,
            # All voters must be up for the quorum to form, so start them together.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": kube.selector(APP)},
            "template": {
                "metadata": {
                    "labels": kube.labels(APP, layer),
                    # Broker 0's file carries every setting shared by all brokers (and the voters): a
                    # change there rolls the brokers, while adding a broker-only node does not.
                    "annotations": {"datapipe.io/brokers-sha256": kube.sha256(brokers["broker-0.properties"]),
                                    "datapipe.io/certificate-sha256": certificate_sha256,
                                    "datapipe.io/metrics-rules-sha256": kube.sha256(jmx.rules_text(APP))},
                },
                "spec": jmx.instrument({
                    **kube.service_account(APP),
                    "enableServiceLinks": False,
                    "securityContext": {"fsGroup": UID, "runAsUser": UID, "runAsNonRoot": True},
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": kube.selector(APP)}}
                    ],
                    "containers": [container],
                    "volumes": [
                        {"name": "brokers", "configMap": {"name": "kafka-brokers"}},
                        # Readable by the kafka group only (fsGroup), never world-readable.
                        {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
                        {"name": "credentials", "secret": {"secretName": CREDENTIALS_SECRET, "defaultMode": 0o440}},
                    ],
                }, jmx_exporter, METRICS_RULES, UID),
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": kube.labels(APP, layer)},
                 "spec": kube.claim_spec(config.storage_per_broker_mib)}
            ],
        },
    }
    service = lambda name, spec: {"apiVersion": "v1", "kind": "Service", "metadata": meta(name), "spec": spec}  # noqa: E731
    services = [
        # Headless, and publishing unready pods: the controllers must find each other before any is ready.
        service(HEADLESS, {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": kube.selector(APP),
                           "ports": [{"name": "internal", "port": INTERNAL_PORT},
                                     {"name": "controller", "port": CONTROLLER_PORT}]}),
        service(BOOTSTRAP, {"selector": kube.selector(APP), "ports": [{"name": "internal", "port": INTERNAL_PORT}]}),
        kube.node_port_service(meta("kafka-external-bootstrap"), kube.selector(APP), "external", EXTERNAL_PORT,
                               config.bootstrap_node_port),
    ]
    for i, node_port in enumerate(config.broker_node_ports):
        broker = {**kube.selector(APP), "statefulset.kubernetes.io/pod-name": f"{APP}-{i}"}
        services.append(
            kube.node_port_service(meta(f"kafka-{i}-external"), broker, "external", EXTERNAL_PORT, node_port))
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(APP),
        # A drain may take one broker at a time: min.insync.replicas stays satisfiable.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": kube.selector(APP)}},
    }
    return [configmap, metrics_rules, *services, statefulset, pdb]


def bootstrap_servers(namespace: str) -> str:
    return f"{BOOTSTRAP}.{namespace}.svc.cluster.local:{INTERNAL_PORT}"


def tls_secret_data(certificate: Any, ca_cert_pem: Any) -> dict[str, Any]:
    """The brokers' PEM keystore (private key, then the certificate chain) and the CA."""
    keystore = pulumi.Output.secret(pulumi.Output.concat(certificate.key_pem, certificate.cert_pem, ca_cert_pem))
    return {"keystore.pem": keystore, "ca.crt": ca_cert_pem}


@dataclass
class KafkaClusterArgs:
    config: KafkaConfig
    topics: TopicsConfig
    layer: Layer
    cluster_id: str
    issuer: Issuer
    jmx_exporter: JmxExporterConfig = JmxExporterConfig()


class KafkaCluster(LayerComponent):
    bootstrap_servers: pulumi.Output[str]
    external_bootstrap_servers: pulumi.Output[str]
    # access.PRINCIPALS -> generated SCRAM password (secret)
    passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: KafkaClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:ingestion:KafkaCluster", name, layer, opts)
        # Alphanumeric: they go into SCRAM bootstrap arguments and JAAS strings unquoted.
        self.passwords = {user: self._generated_secret(f"{user}-password") for user in access.PRINCIPALS}
        certificate = self._certificate(args.issuer, access.BROKER, broker_dns_names(args.config, layer.namespace))
        secrets = [self._secret(CREDENTIALS_SECRET, APP, self.passwords),
                   self._secret(TLS_SECRET, APP, tls_secret_data(certificate, args.issuer.ca.cert_pem))]
        digest = certificate.cert_pem.apply(kube.sha256)
        self._create(manifests(args.config, args.topics, layer.namespace, layer.name, layer.external_host,
                               args.cluster_id, digest, args.jmx_exporter), depends_on=secrets)
        self.bootstrap_servers = pulumi.Output.from_input(bootstrap_servers(layer.namespace))
        self.external_bootstrap_servers = pulumi.Output.from_input(
            f"{layer.external_host}:{args.config.bootstrap_host_port}")
        self.register_outputs({"bootstrap_servers": self.bootstrap_servers,
                               "external_bootstrap_servers": self.external_bootstrap_servers})
