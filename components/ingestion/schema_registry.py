"""Confluent Schema Registry: Avro schemas of the CDC topics, BACKWARD compatible, over HTTPS
behind HTTP basic authentication (Jetty JAAS property-file login) with generated credentials.
Its store is Kafka, reached over SASL_SSL as the principal `schema-registry` (access.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.ingestion.config import SchemaRegistryConfig
from components.ingestion import access
from components.ingestion.kafka import KafkaCluster
from components.layer_component import Issuer, Layer, LayerComponent
from components.observability import jmx
from components.observability.config import JmxExporterConfig

APP = "schema-registry"
METRICS_RULES = "schema-registry-jmx-exporter"
PORT = 8081
UID = 1000  # appuser in Confluent images
REALM = "SchemaRegistry"
JAAS_DIR = "/etc/schema-registry/jaas"
USERS_DIR = "/etc/schema-registry/users"
SECRET_NAME = "schema-registry-users"
ADMIN_USER = "admin"
CLIENT_USER = "connect"
# keystore.p12 (its Jetty reads no PEM keys), its password, ca.crt and the Kafka password
SECRETS_DIR = "/etc/schema-registry/secrets"
TLS_SECRET = "schema-registry-tls"
KEYSTORE_PASSWORD = "keystore-password"


def registry_properties(config: SchemaRegistryConfig, bootstrap_servers: str, replication_factor: int) -> dict[str, str]:
    store = access.client_properties(access.REGISTRY, SECRETS_DIR, f"{SECRETS_DIR}/ca.crt")
    return {
        "listeners": f"https://0.0.0.0:{PORT}",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": f"{SECRETS_DIR}/keystore.p12",
        "ssl.keystore.password": access.secret_ref(SECRETS_DIR, KEYSTORE_PASSWORD),
        "ssl.key.password": access.secret_ref(SECRETS_DIR, KEYSTORE_PASSWORD),
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        **access.provider_properties(SECRETS_DIR),
        "kafkastore.bootstrap.servers": f"SASL_SSL://{bootstrap_servers}",
        **{f"kafkastore.{key}": value for key, value in store.items()},
        "kafkastore.topic": "_schemas",
        "kafkastore.topic.replication.factor": str(replication_factor),
        "schema.compatibility.level": config.compatibility.lower(),
        "authentication.method": "BASIC",
        "authentication.realm": REALM,
        "authentication.roles": "admin,developer",
    }


def jaas_config() -> str:
    # The password file is a Secret; this file only says where it is, so it can be a ConfigMap.
    return (
        f"{REALM} {{\n"
        "  org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required\n"
        f'  file="{USERS_DIR}/passwords.properties"\n'
        '  debug="false";\n'
        "};\n"
    )


def password_line(user: str, password: str, roles: str) -> str:
    """One line of Jetty's property-file realm: `user: password,role…`."""
    return f"{user}: {password},{roles}\n"


def dns_names(namespace: str) -> list[str]:
    """The certificate's names: the Service (as Connect reaches it) and localhost (the probe)."""
    return [f"{APP}.{namespace}.svc.cluster.local", f"{APP}.{namespace}.svc", "localhost"]


def url(namespace: str) -> str:
    return f"https://{APP}.{namespace}.svc.cluster.local:{PORT}"


def container_env(config: SchemaRegistryConfig, bootstrap_servers: str, replication_factor: int) -> list[dict[str, Any]]:
    env = kube.confluent_env("SCHEMA_REGISTRY", registry_properties(config, bootstrap_servers, replication_factor))
    return env + [
        {"name": "SCHEMA_REGISTRY_HOST_NAME", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SCHEMA_REGISTRY_HEAP_OPTS", "value": kube.jvm_heap_opts(config.effective_heap_mib)},
        {"name": "SCHEMA_REGISTRY_JVM_PERFORMANCE_OPTS", "value": kube.G1_OPTS},
        {"name": "SCHEMA_REGISTRY_OPTS", "value": f"-Djava.security.auth.login.config={JAAS_DIR}/jaas.conf "
                                                  + jmx.agent_option()},
    ]


def manifests(config: SchemaRegistryConfig, namespace: str, layer: str, env: Any,
              certificate_sha256: Any = "", jmx_exporter: JmxExporterConfig = JmxExporterConfig()) -> list[dict[str, Any]]:
    """`env` is container_env's result, or an Output of it when the bootstrap address is one;
    `certificate_sha256` (may be an Output): a new certificate rolls the pod."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    jaas = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("schema-registry-jaas"),
            "data": {"jaas.conf": jaas_config()}}
    # Ready: the REST API answers (401 without credentials, which a probe must not carry).
    # Alive: the JVM accepts connections on its port.
    ready = ["sh", "-c", f"code=$(curl -s --cacert {SECRETS_DIR}/ca.crt -o /dev/null -w '%{{http_code}}' "
                         f"https://localhost:{PORT}/subjects); "
                         '[ "$code" = 200 ] || [ "$code" = 401 ]']
    pod = {
        **kube.service_account(APP),
        # A Service named schema-registry would inject SCHEMA_REGISTRY_PORT, which the image rejects.
        "enableServiceLinks": False,
        "securityContext": {"runAsUser": UID, "runAsNonRoot": True},
        "containers": [{
            "name": APP,
            "image": config.image,
            "ports": [{"name": "http", "containerPort": PORT}],
            "env": env,
            "resources": kube.memory_resources(config.memory_mib, "100m"),
            "securityContext": kube.restricted_security_context(UID),
            "readinessProbe": {"exec": {"command": ready}, "initialDelaySeconds": 15, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 60, "periodSeconds": 10,
                              "failureThreshold": 6},
            "volumeMounts": [
                {"name": "jaas", "mountPath": JAAS_DIR, "readOnly": True},
                {"name": "users", "mountPath": USERS_DIR, "readOnly": True},
                {"name": "tls", "mountPath": SECRETS_DIR, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "jaas", "configMap": {"name": "schema-registry-jaas"}},
            {"name": "users", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o400}},
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o400}},
        ],
    }
    pod = jmx.instrument(pod, jmx_exporter, METRICS_RULES, UID)
    # Recreate: a surge pod would not fit the layer's memory quota.
    deployment = kube.recreate_deployment(meta(APP), APP, layer, 1, pod,
                                          {"datapipe.io/certificate-sha256": certificate_sha256,
                                           "datapipe.io/metrics-rules-sha256": kube.sha256(jmx.rules_text(APP))})
    service = kube.node_port_service(meta(APP), kube.selector(APP), "http", PORT, config.node_port)
    return [jaas, jmx.rules_configmap(meta(METRICS_RULES), APP), deployment, service]


@dataclass
class SchemaRegistryArgs:
    config: SchemaRegistryConfig
    layer: Layer
    kafka: KafkaCluster
    replication_factor: int
    issuer: Issuer
    jmx_exporter: JmxExporterConfig = JmxExporterConfig()


class SchemaRegistry(LayerComponent):
    url: pulumi.Output[str]
    external_url: pulumi.Output[str]
    admin_user: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    client_user: pulumi.Output[str]
    client_password: pulumi.Output[str]

    def __init__(self, name: str, args: SchemaRegistryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:ingestion:SchemaRegistry", name, layer, opts)
        self.admin_password = self._generated_secret("admin-password")
        self.client_password = self._generated_secret("client-password")
        passwords = pulumi.Output.all(self.admin_password, self.client_password).apply(
            lambda p: password_line(ADMIN_USER, p[0], "admin") + password_line(CLIENT_USER, p[1], "developer")
        )
        secret = self._secret(SECRET_NAME, APP, {"passwords.properties": passwords})
        certificate = self._certificate(args.issuer, APP, dns_names(layer.namespace))
        tls = self._secret(TLS_SECRET, APP, {
            "ca.crt": args.issuer.ca.cert_pem,
            KEYSTORE_PASSWORD: certificate.keystore_password,
            access.REGISTRY: args.kafka.passwords[access.REGISTRY],
        }, binary_b64={"keystore.p12": certificate.keystore_p12_b64})
        env = args.kafka.bootstrap_servers.apply(
            lambda bootstrap: container_env(args.config, bootstrap, args.replication_factor))
        self._create(manifests(args.config, layer.namespace, layer.name, env, certificate.cert_pem.apply(kube.sha256),
                               args.jmx_exporter),
                     depends_on=[secret, tls])
        self.url = pulumi.Output.from_input(url(layer.namespace))
        self.external_url = pulumi.Output.from_input(f"https://{layer.external_host}:{args.config.host_port}")
        self.admin_user = pulumi.Output.from_input(ADMIN_USER)
        self.client_user = pulumi.Output.from_input(CLIENT_USER)
        self.register_outputs({"url": self.url, "external_url": self.external_url, "admin_user": self.admin_user,
                               "admin_password": self.admin_password, "client_user": self.client_user,
                               "client_password": self.client_password})
