"""The whole program under Pulumi mocks: what the ingestion layer registers and exports.

Most tests look at the ingestion layer's resources only (`program`); the batch and cloud layers
have their own tests in tests/batch and tests/cloud."""

import json
import re
from collections import Counter

import pytest

from components.quantities import parse_mib
from tests.program import DEFAULT_SECRETS, Program, run_program

WORKLOADS = ("StatefulSet", "Deployment")
LAYER_TYPE = "datapipe:ingestion:IngestionLayer"


def ingestion_only(program: Program) -> Program:
    """The ingestion layer's resources (the layer and everything under it), all outputs."""
    return Program(program.under(LAYER_TYPE), program.outputs, program.secret_outputs)


@pytest.fixture(scope="module")
def full():
    return run_program()


@pytest.fixture(scope="module")
def program(full):
    return ingestion_only(full)


def pod_specs(program):
    for resource in program.resources:
        if resource.kind in WORKLOADS:
            spec = resource.inputs["spec"]
            yield resource, spec.get("replicas", 1), spec["template"]["spec"]


def test_registers_the_ingestion_services(program):
    workloads = Counter((r.kind, r.k8s_name) for r in program.resources if r.kind in WORKLOADS)
    assert workloads == Counter({("StatefulSet", "postgres"): 1, ("StatefulSet", "kafka"): 1,
                                 ("Deployment", "schema-registry"): 1, ("Deployment", "kafka-connect"): 1,
                                 ("Deployment", "prometheus"): 1})
    components = Counter(r.type for r in program.resources if r.type.startswith("datapipe:"))
    assert components == Counter({
        "datapipe:ingestion:IngestionLayer": 1, "datapipe:platform:LayerNamespace": 1,
        "datapipe:ingestion:PostgresCdc": 1, "datapipe:ingestion:KafkaCluster": 1,
        "datapipe:ingestion:SchemaRegistry": 1, "datapipe:ingestion:KafkaConnect": 1,
        "datapipe:observability:LayerMonitoring": 1})
    assert program.one("StatefulSet", "kafka").inputs["spec"]["replicas"] == 3
    assert len(program.of_kind("NetworkPolicy")) >= 3
    assert program.one("ResourceQuota", "ingestion-budget").inputs["spec"]["hard"]["limits.memory"] == "6Gi"
    assert program.one("PodDisruptionBudget", "kafka")


def test_every_child_is_parented_inside_a_datapipe_component(program):
    for resource in program.resources:
        if resource.type == LAYER_TYPE:
            continue
        assert "datapipe:" in resource.parent, resource.name
        assert resource.name.startswith("ingestion"), resource.name


def test_everything_namespaced_lives_in_the_layer_namespace(program):
    for resource in program.resources:
        if resource.kind and resource.kind != "Namespace":
            assert resource.inputs["metadata"]["namespace"] == "data-ingestion", resource.name


def test_every_container_has_memory_requests_equal_to_limits(program):
    checked = 0
    for resource, _, pod in pod_specs(program):
        for container in pod.get("initContainers", []) + pod["containers"]:
            resources = container["resources"]
            assert resources["limits"]["memory"] == resources["requests"]["memory"], (resource.name, container["name"])
            assert ":" in container["image"] and not container["image"].endswith(":latest")
            checked += 1
    # Six containers (the four services, PostgreSQL's exporter, Prometheus), Connect's two init
    # containers and the JMX agent's download in each of the three JVM pods.
    assert checked == 11


def total_memory_mib(program) -> int:
    total = 0
    for _, replicas, pod in pod_specs(program):
        app = sum(parse_mib(c["resources"]["limits"]["memory"]) for c in pod["containers"])
        init = max((parse_mib(c["resources"]["limits"]["memory"]) for c in pod.get("initContainers", [])), default=0)
        total += replicas * max(app, init)  # how Kubernetes sizes a pod with init containers
    return total


def test_memory_limits_sum_to_the_allocation_and_fit_6gi(program):
    total = total_memory_mib(program)
    assert total == 6142 == program.outputs["ingestionMemory"]["limitsMib"]
    assert total <= 6 * 1024 == program.outputs["ingestionMemory"]["budgetMib"]


def test_memory_sum_tracks_config():
    program = ingestion_only(run_program({"ingestion": {"kafka": {"memoryPerBroker": "512Mi"}, "kafkaConnect": {"replicas": 2},
                                         "memoryBudget": "8Gi"}}))
    assert total_memory_mib(program) == 1024 + 3 * 512 + 1024 + 2 * 2048
    assert program.outputs["ingestionMemory"]["limitsMib"] == total_memory_mib(program)


def test_secrets_are_pulumi_secrets_and_never_plain_text(program):
    secrets = program.of_kind("Secret")
    assert {s.k8s_name for s in secrets} == {"postgres-credentials", "schema-registry-users", "kafka-connect-secrets",
                                             "kafka-credentials", "kafka-connect-admin", "kafka-tls", "postgres-tls",
                                             "schema-registry-tls"}
    for secret in secrets:
        assert "stringData" in secret.secret_paths, secret.name
    sensitive = [f"generated-ingestion-{n}" for n in ("postgres-admin-password", "postgres-cdc-password",
                                                       "schema-registry-admin-password",
                                                       "schema-registry-client-password",
                                                       "kafka-kafka-connect-password", "kafka-datapipe-admin-password",
                                                       "kafka-connect-rest-password")]
    sensitive += list(DEFAULT_SECRETS.values())
    for resource in program.resources:
        if resource.kind == "Secret" or resource.type.startswith("random:"):
            continue
        text = json.dumps(resource.inputs)
        for value in sensitive:
            assert value not in text, f"{value} leaked into {resource.name}"
    for resource, _, pod in pod_specs(program):
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN|USER_INFO", env["name"]):
                    # From a Secret: as a reference, the path of a mounted Secret's file (*_FILE), or a
                    # Kafka config provider's reference to such a file (${dir:<dir>:<file>}).
                    assert "valueFrom" in env or (env["name"].endswith("_FILE") and env["value"].startswith(
                        "/run/secrets/")) or re.fullmatch(r"\$\{dir:/[^:}]+:[^:}]+\}", env["value"]), \
                        (resource.name, env["name"])


def test_connector_configs_reference_secrets_through_the_config_provider(program):
    configmap = program.one("ConfigMap", "kafka-connect-connectors")
    source = json.loads(configmap.inputs["data"]["postgres-cdc-source.json"])
    assert source["database.password"] == "${dir:/opt/connect-secrets:postgres-password}"
    secret = program.one("Secret", "kafka-connect-secrets")
    assert set(secret.inputs["stringData"]) == {"postgres-password", "schema-registry-user-info",
                                                "s3-access-key-id", "s3-secret-access-key", "kafka-connect",
                                                "rest-users.properties", "rest-curl.conf"}
    assert secret.inputs["stringData"]["schema-registry-user-info"] == \
        "connect:generated-ingestion-schema-registry-client-password"


def test_components_are_wired_through_outputs(program):
    endpoints = program.outputs["ingestionEndpoints"]
    connect_env = {e["name"]: e.get("value") for e in
                   program.one("Deployment", "kafka-connect").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    registry_env = {e["name"]: e.get("value") for e in
                    program.one("Deployment", "schema-registry").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert connect_env["CONNECT_BOOTSTRAP_SERVERS"] == endpoints["kafkaBootstrapInCluster"]
    assert registry_env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == f"SASL_SSL://{endpoints['kafkaBootstrapInCluster']}"
    files = program.one("ConfigMap", "kafka-connect-connectors").inputs["data"]
    source, sink = json.loads(files["postgres-cdc-source.json"]), json.loads(files["s3-archive-sink.json"])
    assert f"{source['database.hostname']}:{source['database.port']}" == endpoints["postgresInCluster"]
    assert source["value.converter.schema.registry.url"] == endpoints["schemaRegistryInCluster"]
    assert sink["key.converter.schema.registry.url"] == endpoints["schemaRegistryInCluster"]
    # The bucket comes from the cloud layer, not from config.
    assert sink["s3.bucket.name"] == program.outputs["buckets"]["raw"]


def test_connector_change_changes_the_pod_template():
    a = ingestion_only(run_program())
    b = ingestion_only(run_program({"ingestion": {"s3Sink": {"flushSize": 500}}}))
    digest = lambda p: p.one("Deployment", "kafka-connect").inputs["spec"]["template"]["metadata"]["annotations"][  # noqa: E731
        "datapipe.io/connectors-sha256"]
    assert digest(a) != digest(b)
    assert json.loads(b.one("ConfigMap", "kafka-connect-connectors").inputs["data"]["s3-archive-sink.json"])[
        "flush.size"] == "500"


def test_outputs_expose_host_endpoints_and_secret_credentials(program):
    endpoints = program.outputs["ingestionEndpoints"]
    assert endpoints["postgres"] == "localhost:5432"
    assert endpoints["kafkaBootstrap"] == "localhost:9092"
    assert endpoints["schemaRegistry"] == "https://localhost:8081"
    assert endpoints["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "kafkaConnect" not in endpoints  # the REST API is not exposed unless kafkaConnect.exposeRest
    assert endpoints["kafkaConnectInCluster"] == "http://kafka-connect.data-ingestion.svc.cluster.local:8083"
    assert endpoints["connectors"] == ["postgres-cdc-source", "s3-archive-sink"]
    assert "ingestionCredentials" in program.secret_outputs
    credentials = program.outputs["ingestionCredentials"]
    assert credentials["schemaRegistryUser"] == "admin"
    assert credentials["postgresCdcPassword"] == "generated-ingestion-postgres-cdc-password"
    assert credentials["kafkaReaderUser"] == "datapipe-reader"
    assert credentials["kafkaReaderPassword"] == "generated-ingestion-kafka-datapipe-reader-password"
    assert credentials["kafkaConnectRestUser"] == "connect-admin"


def ingestion_provider(program: Program):
    (provider,) = [p for p in program.by_type("pulumi:providers:kubernetes") if p.name == "ingestion-cluster"]
    return provider


def test_provider_follows_the_cluster_target(full):
    rendered = run_program({"clusters": {"ingestion": {"renderDirectory": "out/ingestion"}}})
    provider = ingestion_provider(rendered)
    assert provider.inputs["renderYamlToDirectory"] == "out/ingestion" and "context" not in provider.inputs
    assert ingestion_provider(full).inputs["context"] == "kind-data-ingestion"


def test_kafka_external_access_matches_the_node_ports(program):
    brokers = program.one("ConfigMap", "kafka-brokers").inputs["data"]
    for ordinal, port in enumerate((30093, 30094, 30095)):
        assert f"EXTERNAL://localhost:{port}" in brokers[f"broker-{ordinal}.properties"]
        service = program.one("Service", f"kafka-{ordinal}-external")
        assert service.inputs["spec"]["ports"][0]["nodePort"] == port
        assert service.inputs["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == f"kafka-{ordinal}"


def test_every_manifest_passes_the_kubernetes_schema(full):
    import kubernetes_validate

    validated = 0
    for resource in full.resources:  # every layer's manifests, not only ingestion's
        # Custom resources (SparkApplication) and the Helm chart component have no built-in schema.
        if not resource.kind or resource.kind in ("Chart", "SparkApplication"):
            continue
        group_version = resource.type.split(":")[1]
        api_version = group_version.removeprefix("core/")
        manifest = {"apiVersion": api_version, "kind": resource.kind, **resource.inputs}
        try:
            kubernetes_validate.validate(manifest, "1.33.0", strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{resource.name}: {error.message} at {list(error.path)}") from None
        validated += 1
    assert validated >= 70


def host_flows_to(program, app: str) -> list[dict]:
    """Ingress rules of the NetworkPolicy that admits host traffic to `app`, if there is one."""
    policies = [r for r in program.of_kind("NetworkPolicy")
                if r.inputs["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == app]
    return [rule for r in policies for rule in r.inputs["spec"].get("ingress", [])
            if any("ipBlock" in peer for peer in rule.get("from", []))]


def test_connect_rest_api_stays_in_the_cluster_unless_exposed(program):
    service = program.one("Service", "kafka-connect").inputs["spec"]
    assert service["type"] == "ClusterIP" and "nodePort" not in service["ports"][0]
    assert host_flows_to(program, "kafka-connect") == []
    assert host_flows_to(program, "schema-registry")  # the host still reaches the other services

    exposed = ingestion_only(run_program({"ingestion": {"kafkaConnect": {"exposeRest": True}}}))
    service = exposed.one("Service", "kafka-connect").inputs["spec"]
    assert service["type"] == "NodePort" and service["ports"][0]["nodePort"] == 30083
    assert [p["port"] for rule in host_flows_to(exposed, "kafka-connect") for p in rule["ports"]] == [8083]
    assert exposed.outputs["ingestionEndpoints"]["kafkaConnect"] == "http://localhost:8083"
