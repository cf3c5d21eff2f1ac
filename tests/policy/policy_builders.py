"""Builders for policy tests: resources shaped as pulumi-policy hands them to rules.

Props are wrapped with the SDK's own `unknown_checking_proxy`, exactly as the analyzer
does, so a rule that reads an unknown value unguarded fails these tests as it would fail
`pulumi preview`.
"""

from __future__ import annotations

import copy
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

UNKNOWN_STR = UNKNOWN_STRING_VALUE
UNKNOWN_NUM = UNKNOWN_NUMBER_VALUE
# A secret as the engine/mocks put it on the wire (pulumi.runtime.rpc's signature keys).
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}

INGESTION = "data-ingestion"
BATCH = "batch-analytics"


def wire_secret(value: Any) -> dict[str, Any]:
    return {**SECRET_SIG, "value": value}


class Violations(list):
    """A recording report_violation."""

    def __call__(self, message: str, urn: str | None = None) -> None:
        assert isinstance(message, str) and message
        self.append((message, urn))

    @property
    def messages(self) -> list[str]:
        return [m for m, _ in self]

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


def options(secret_outputs: list[str] | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), secret_outputs or [], None)


def resource(
    type_token: str,
    name: str,
    props: dict[str, Any],
    *,
    parent: PolicyResource | None = None,
    dependencies: list[PolicyResource] | None = None,
    property_dependencies: dict[str, list[PolicyResource]] | None = None,
    provider: PolicyProviderResource | None = None,
    secret_outputs: list[str] | None = None,
) -> PolicyResource:
    urn = f"urn:pulumi:dev::datapipe::{type_token}::{name}"
    return PolicyResource(
        type_token,
        unknown_checking_proxy(copy.deepcopy(props)),
        urn,
        name,
        options(secret_outputs),
        provider,
        parent,
        dependencies or [],
        property_dependencies or {},
    )


def resource_args(res: PolicyResource, config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    return ResourceValidationArgs(res.resource_type, res.props, res.urn, res.name, res.opts, res.provider, config)


def run_resource(policy: Any, res: PolicyResource, config: dict[str, Any] | None = None) -> Violations:
    found = Violations()
    policy.validate(resource_args(res, config), found)
    return found


def run_stack(policy: Any, resources: list[PolicyResource], config: dict[str, Any] | None = None) -> Violations:
    found = Violations()
    policy.validate(StackValidationArgs(resources, config), found)
    return found


# --- Kubernetes objects -------------------------------------------------------------------


def container(
    name: str,
    memory: str | None,
    *,
    request: str | None = None,
    image: str = "registry.example/datapipe/app:1.0.0",
    env: list[dict[str, Any]] | None = None,
    args: list[str] | None = None,
    command: list[str] | None = None,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "image": image}
    if memory is not None:
        spec["resources"] = {"limits": {"memory": memory}, "requests": {"memory": request or memory}}
    if env:
        spec["env"] = env
    if args:
        spec["args"] = args
    if command:
        spec["command"] = command
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec


def pod_spec(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return spec


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def deployment(name: str, namespace: str | None, containers: list[dict], *, replicas: Any = 1,
               init: list[dict] | None = None, **kw: Any) -> PolicyResource:
    props = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace),
        "spec": {"replicas": replicas, "template": {"spec": pod_spec(containers, init)}},
    }
    if replicas is None:
        del props["spec"]["replicas"]
    return resource("kubernetes:apps/v1:Deployment", name, props, **kw)


def statefulset(name: str, namespace: str | None, containers: list[dict], *, replicas: Any = 1,
                init: list[dict] | None = None, storage: dict[str, str] | None = None, **kw: Any) -> PolicyResource:
    spec: dict[str, Any] = {"replicas": replicas, "template": {"spec": pod_spec(containers, init)}}
    if storage:
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": claim}, "spec": {"resources": {"requests": {"storage": size}}}}
            for claim, size in storage.items()
        ]
    props = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _metadata(name, namespace), "spec": spec}
    return resource("kubernetes:apps/v1:StatefulSet", name, props, **kw)


def daemonset(name: str, namespace: str, containers: list[dict]) -> PolicyResource:
    props = {"metadata": _metadata(name, namespace), "spec": {"template": {"spec": pod_spec(containers)}}}
    return resource("kubernetes:apps/v1:DaemonSet", name, props)


def job(name: str, namespace: str, containers: list[dict], *, parallelism: Any = None,
        completions: Any = None) -> PolicyResource:
    spec: dict[str, Any] = {"template": {"spec": pod_spec(containers)}}
    if parallelism is not None:
        spec["parallelism"] = parallelism
    if completions is not None:
        spec["completions"] = completions
    return resource("kubernetes:batch/v1:Job", name, {"metadata": _metadata(name, namespace), "spec": spec})


def cronjob(name: str, namespace: str, containers: list[dict], *, parallelism: Any = None) -> PolicyResource:
    job_spec: dict[str, Any] = {"template": {"spec": pod_spec(containers)}}
    if parallelism is not None:
        job_spec["parallelism"] = parallelism
    props = {"metadata": _metadata(name, namespace), "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": job_spec}}}
    return resource("kubernetes:batch/v1:CronJob", name, props)


def pod(name: str, namespace: str, containers: list[dict]) -> PolicyResource:
    return resource("kubernetes:core/v1:Pod", name, {"metadata": _metadata(name, namespace), "spec": pod_spec(containers)})


def namespace(name: str) -> PolicyResource:
    return resource("kubernetes:core/v1:Namespace", name, {"metadata": {"name": name}})


def quota(name: str, namespace_name: Any, hard: dict[str, Any], **kw: Any) -> PolicyResource:
    props = {"metadata": _metadata(name, namespace_name), "spec": {"hard": hard}}
    return resource("kubernetes:core/v1:ResourceQuota", name, props, **kw)


def pvc(name: str, namespace_name: str, size: Any) -> PolicyResource:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    return resource("kubernetes:core/v1:PersistentVolumeClaim", name, {"metadata": _metadata(name, namespace_name), "spec": spec})


def config_map(name: str, namespace_name: str, data: dict[str, Any], **kw: Any) -> PolicyResource:
    props = {"metadata": _metadata(name, namespace_name), "data": data}
    return resource("kubernetes:core/v1:ConfigMap", name, props, **kw)


def spark_app(
    name: str,
    namespace_name: str = BATCH,
    *,
    app_type: str = "Scala",
    driver_memory: str | None = "3g",
    executor_memory: str | None = "4g",
    instances: Any = 2,
    image: str = "apache/spark:3.5.3",
    spark_conf: dict[str, str] | None = None,
    driver: dict[str, Any] | None = None,
    executor: dict[str, Any] | None = None,
) -> PolicyResource:
    driver_spec: dict[str, Any] = {"cores": 1, **(driver or {})}
    executor_spec: dict[str, Any] = {"cores": 1, **(executor or {})}
    if driver_memory is not None:
        driver_spec["memory"] = driver_memory
    if executor_memory is not None:
        executor_spec["memory"] = executor_memory
    if instances is not None:
        executor_spec["instances"] = instances
    spec: dict[str, Any] = {
        "type": app_type,
        "mode": "cluster",
        "image": image,
        "sparkVersion": "3.5.3",
        "mainApplicationFile": "local:///opt/jobs/compaction.jar",
        "driver": driver_spec,
        "executor": executor_spec,
    }
    if spark_conf:
        spec["sparkConf"] = spark_conf
    props = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": _metadata(name, namespace_name),
        "spec": spec,
    }
    return resource("kubernetes:sparkoperator.k8s.io/v1beta2:SparkApplication", name, props)


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# --- The two layers as the design sizes them ----------------------------------------------


def kafka(replicas: int = 3, heap: str = "-Xms384m -Xmx384m", memory: str = "682Mi") -> PolicyResource:
    broker = container(
        "kafka",
        memory,
        image="apache/kafka:3.9.1",
        env=[{"name": "KAFKA_HEAP_OPTS", "value": heap}, {"name": "KAFKA_PROCESS_ROLES", "value": "broker,controller"}],
    )
    return statefulset("kafka", INGESTION, [broker], replicas=replicas, storage={"data": "4Gi"})


BOOTSTRAP = "kafka-bootstrap.data-ingestion.svc.cluster.local:9092"


def broker_properties(node_id: int = 0, protocol_map: str = "INTERNAL:SASL_SSL,CONTROLLER:SSL,EXTERNAL:SASL_SSL") -> str:
    """A KRaft broker's server.properties, every listener on TLS unless `protocol_map` says otherwise."""
    return (
        "process.roles=broker,controller\n"
        f"node.id={node_id}\n"
        "controller.listener.names=CONTROLLER\n"
        "listeners=INTERNAL://:9092,CONTROLLER://:9093,EXTERNAL://:9094\n"
        f"listener.security.protocol.map={protocol_map}\n"
        "inter.broker.listener.name=INTERNAL\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "ssl.keystore.type=PEM\n"
    )


def connect_tls_env(bootstrap: str = BOOTSTRAP, protocol: str = "SASL_SSL") -> list[dict[str, Any]]:
    """A Kafka Connect worker's Kafka settings: its own clients and the connectors' on TLS."""
    env = [{"name": "CONNECT_BOOTSTRAP_SERVERS", "value": bootstrap}]
    for prefix in ("", "PRODUCER_", "CONSUMER_", "ADMIN_"):
        env.append({"name": f"CONNECT_{prefix}SECURITY_PROTOCOL", "value": protocol})
    return env


def ingestion_layer(kafka_replicas: int = 3) -> list[PolicyResource]:
    """Postgres 1Gi + Kafka 3 x 682Mi + Schema Registry 1Gi + Connect 2Gi = 6142Mi of 6144Mi."""
    postgres = statefulset(
        "postgres",
        INGESTION,
        [
            container(
                "postgres",
                "1Gi",
                image="postgres:17.2",
                env=[secret_env("POSTGRES_PASSWORD", "postgres-admin", "password"), {"name": "POSTGRES_USER", "value": "admin"}],
            )
        ],
        storage={"pgdata": "2Gi"},
    )
    registry = deployment(
        "schema-registry",
        INGESTION,
        [
            container(
                "schema-registry",
                "1Gi",
                image="confluentinc/cp-schema-registry:7.9.0",
                env=[
                    {"name": "SCHEMA_REGISTRY_HEAP_OPTS", "value": "-Xmx512m"},
                    {"name": "SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL", "value": "BACKWARD"},
                    {"name": "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "value": f"SASL_SSL://{BOOTSTRAP}"},
                    {"name": "SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL", "value": "SASL_SSL"},
                ],
            )
        ],
    )
    connect = deployment(
        "kafka-connect",
        INGESTION,
        [
            container(
                "connect",
                "2Gi",
                image="quay.io/debezium/connect:3.1.1.Final",
                env=[
                    {"name": "KAFKA_HEAP_OPTS", "value": "-Xms1g -Xmx1g"},
                    {"name": "CONNECT_VALUE_CONVERTER_BASIC_AUTH_CREDENTIALS_SOURCE", "value": "USER_INFO"},
                    secret_env("CONNECT_VALUE_CONVERTER_BASIC_AUTH_USER_INFO", "registry-client", "user-info"),
                    *connect_tls_env(),
                ],
            )
        ],
    )
    connectors = config_map(
        "connectors",
        INGESTION,
        {
            "postgres-source.json": (
                '{"name": "postgres-source", "config": {"connector.class": '
                '"io.debezium.connector.postgresql.PostgresConnector", "plugin.name": "pgoutput", '
                '"database.user": "cdc", "database.password": "${file:/opt/secrets/cdc.properties:password}"}}'
            )
        },
    )
    return [
        namespace(INGESTION),
        quota("memory", INGESTION, {"limits.memory": "6Gi", "requests.memory": "6Gi"}),
        config_map("kafka-brokers", INGESTION, {f"broker-{i}.properties": broker_properties(i) for i in range(3)}),
        postgres,
        kafka(kafka_replicas),
        registry,
        connect,
        connectors,
    ]


def batch_layer(executors: int = 2) -> list[PolicyResource]:
    """Spark driver 3g + executors x 4g (with overhead), history server, dbt, operator."""
    chart = resource("kubernetes:helm.sh/v4:Chart", "spark-operator", {"chart": "spark-operator"})
    controller = deployment(
        "spark-operator-controller", BATCH, [container("controller", "512Mi", image="kubeflow/spark-operator:2.1.1")],
        parent=chart,
    )
    webhook = deployment(
        "spark-operator-webhook", BATCH, [container("webhook", "256Mi", image="kubeflow/spark-operator:2.1.1")],
        parent=chart,
    )
    history = deployment(
        "spark-history",
        BATCH,
        [
            container(
                "history",
                "1Gi",
                image="apache/spark:3.5.3",
                env=[{"name": "SPARK_DAEMON_MEMORY", "value": "512m"}, {"name": "SPARK_NO_DAEMONIZE", "value": "true"}],
            )
        ],
    )
    dbt = cronjob("dbt-run", BATCH, [container("dbt", "1Gi", image="ghcr.io/dbt-labs/dbt-snowflake:1.9.0")])
    return [
        namespace(BATCH),
        quota("memory", BATCH, {"limits.memory": "18Gi"}),
        chart,
        controller,
        webhook,
        history,
        dbt,
        spark_app("nightly-compaction", instances=executors),
        pvc("spark-events", BATCH, "10Gi"),
    ]
