"""The batch layer under Pulumi mocks: what it registers, its wiring and its memory total."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from components.quantities import parse_mib
from tests.program import DEFAULT_SECRETS, Program, run_program

LAYER_TYPE = "datapipe:batch:BatchLayer"
NAMESPACE = "batch-analytics"
DEV = {"batch": {"spark": {"smokeJob": {"enabled": True}}}}
# What the local (Kind, no cloud account) stack sets.
LOCAL = {"cloud": {"aws": {"enabled": False}, "snowflake": {"enabled": False}},
         "batch": {"sparkOperator": {"enabled": False}}}
KIND = Path(__file__).resolve().parents[2] / "kind"


@pytest.fixture(scope="module")
def full():
    return run_program(DEV)


@pytest.fixture(scope="module")
def batch(full):
    return Program(full.under(LAYER_TYPE), full.outputs, full.secret_outputs)


@pytest.fixture(scope="module")
def local():
    return run_program(LOCAL, secrets={})


def spark_application(program):
    (app,) = program.of_kind("SparkApplication")
    return app


def test_registers_the_batch_components(batch):
    components = Counter(r.type for r in batch.resources if r.type.startswith("datapipe:"))
    assert components == Counter({
        "datapipe:batch:BatchLayer": 1, "datapipe:platform:LayerNamespace": 1, "datapipe:batch:SparkOperator": 1,
        "datapipe:batch:SparkHistoryServer": 1, "datapipe:batch:DbtRunner": 1, "datapipe:batch:SparkProfile": 1,
        "datapipe:batch:SparkSmokeJob": 1, "datapipe:observability:LayerMonitoring": 1})
    kinds = Counter(r.kind for r in batch.resources if r.kind in ("Deployment", "CronJob", "SparkApplication",
                                                                  "Chart", "PersistentVolumeClaim"))
    assert kinds == Counter({"Deployment": 2, "CronJob": 1, "SparkApplication": 1, "Chart": 1,
                             "PersistentVolumeClaim": 1})
    for resource in batch.resources:
        assert resource.name.startswith("batch"), resource.name
        if resource.kind and resource.kind not in ("Namespace", "Chart"):
            assert resource.inputs["metadata"]["namespace"] == NAMESPACE, resource.name


def test_namespace_guard_rails(batch):
    hard = batch.one("ResourceQuota", "batch-budget").inputs["spec"]["hard"]
    assert hard == {"limits.memory": "18Gi", "requests.memory": "18Gi", "requests.storage": "17Gi"}
    assert batch.one("LimitRange", "batch-container-defaults")
    accounts = {r.k8s_name: r.inputs for r in batch.of_kind("ServiceAccount")}
    assert set(accounts) == {"spark-driver", "spark-executor", "spark-history-server", "dbt", "prometheus"}
    assert accounts["spark-driver"]["automountServiceAccountToken"] is True
    assert accounts["spark-executor"]["automountServiceAccountToken"] is False
    (rule,) = batch.one("Role", "spark-driver").inputs["rules"]
    assert set(rule["resources"]) == {"pods", "services", "configmaps", "persistentvolumeclaims"}
    assert {"create", "watch", "delete"} <= set(rule["verbs"])
    policies = {r.k8s_name: r.inputs["spec"] for r in batch.of_kind("NetworkPolicy")}
    assert policies["default-deny-all"]["policyTypes"] == ["Ingress", "Egress"]
    driver_ingress = policies["allow-ingress-to-spark-driver"]["ingress"]
    assert {"protocol": "TCP", "port": 7078} in driver_ingress[0]["ports"]
    assert driver_ingress[0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "spark-executor"}}}]
    assert policies["allow-ingress-to-spark-operator"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9443}]


def test_operator_chart_is_pinned_scoped_and_orders_the_custom_resources(batch):
    (chart,) = batch.of_kind("Chart")
    assert (chart.inputs["chart"], chart.inputs["version"]) == ("spark-operator", "2.5.1")
    assert chart.inputs["repositoryOpts"] == {"repo": "https://kubeflow.github.io/spark-operator"}
    assert chart.inputs["namespace"] == NAMESPACE
    values = chart.inputs["values"]
    assert values["spark"]["jobNamespaces"] == [NAMESPACE]
    assert values["spark"]["serviceAccount"]["name"] == "spark-driver"
    assert values["controller"]["resources"]["limits"]["memory"] == "512Mi"
    assert chart.urn in spark_application(batch).dependencies


def test_local_chart_for_air_gapped_installs():
    program = run_program({"batch": {"sparkOperator": {"chartPath": "vendor/spark-operator-2.5.1.tgz"}}})
    (chart,) = program.of_kind("Chart")
    assert chart.inputs["chart"] == "vendor/spark-operator-2.5.1.tgz"
    assert "repositoryOpts" not in chart.inputs and "version" not in chart.inputs


def pod_memory(pod) -> int:
    app = sum(parse_mib(c["resources"]["limits"]["memory"]) for c in pod["containers"])
    init = max((parse_mib(c["resources"]["limits"]["memory"]) for c in pod.get("initContainers", [])), default=0)
    return max(app, init)


def jvm_size_mib(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([mg])", size).groups()
    return int(number) * (1024 if unit == "g" else 1)


def spark_role_mib(role: dict) -> int:
    """Spark's rule, restated: memory + (memoryOverhead, else max(384MiB, int(0.10 x memory)))."""
    memory = jvm_size_mib(role["memory"])
    overhead = jvm_size_mib(role["memoryOverhead"]) if "memoryOverhead" in role else max(384, int(0.10 * memory))
    return memory + overhead


def batch_memory(program) -> dict[str, int]:
    """What the batch namespace will run, counted from the registered resources."""
    totals: dict[str, int] = {}
    for resource in program.resources:
        inputs = resource.inputs
        if resource.kind == "Deployment" and inputs["metadata"]["namespace"] == NAMESPACE:
            totals[resource.k8s_name] = inputs["spec"]["replicas"] * pod_memory(inputs["spec"]["template"]["spec"])
        elif resource.kind == "CronJob":
            totals[resource.k8s_name] = pod_memory(inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif resource.kind == "SparkApplication":
            spec = inputs["spec"]
            totals["spark-driver"] = spark_role_mib(spec["driver"])
            totals["spark-executors"] = spec["executor"]["instances"] * spark_role_mib(spec["executor"])
        elif resource.kind == "Chart":
            # Under mocks the chart has no children: its pods come from the values it was given.
            for role in ("controller", "webhook"):
                section = inputs["values"][role]
                totals[f"spark-operator-{role}"] = section["replicas"] * parse_mib(
                    section["resources"]["limits"]["memory"])
    return totals


def test_batch_memory_total_counts_spark_overhead_and_operator_pods_and_fits_18gi(full):
    totals = batch_memory(full)
    assert totals == {
        "spark-operator-controller": 512,
        "spark-operator-webhook": 256,
        "spark-history-server": 1024,
        "dbt-run": 1024,
        "spark-driver": 3072 + 384,
        "spark-executors": 2 * (4096 + 409),
        "prometheus": 512,
    }
    assert sum(totals.values()) == 15794 == full.outputs["batchMemory"]["limitsMib"]
    assert full.outputs["batchMemory"]["budgetMib"] == 18 * 1024 >= 15794


def test_batch_memory_tracks_config():
    program = run_program({"batch": {"memoryBudget": "21Gi", "spark": {
        "smokeJob": {"enabled": True}, "executor": {"instances": 3, "memory": "4Gi", "memoryOverhead": "512Mi"}}}})
    totals = batch_memory(program)
    assert totals["spark-executors"] == 3 * (4096 + 512)
    assert sum(totals.values()) == program.outputs["batchMemory"]["limitsMib"] == 15794 - 9010 + 13824


def test_every_batch_container_is_bounded_and_pinned(batch):
    checked = 0
    for resource in batch.resources:
        if resource.kind == "Deployment":
            pod = resource.inputs["spec"]["template"]["spec"]
        elif resource.kind == "CronJob":
            pod = resource.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        else:
            continue
        for container in pod.get("initContainers", []) + pod["containers"]:
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert limits["memory"] == requests["memory"], (resource.name, container["name"])
            assert ":" in container["image"] and not container["image"].endswith(":latest")
            checked += 1
    assert checked == 4  # History Server, its JMX agent's download, Prometheus, dbt
    assert ":" in spark_application(batch).inputs["spec"]["image"]


def test_spark_job_gets_its_key_from_the_secret_and_the_lake_from_the_cloud_layer(full, batch):
    secret = batch.one("Secret", "spark-s3-credentials")
    assert "stringData" in secret.secret_paths
    spark_key = next(r for r in full.resources if r.type == "aws:iam/accessKey:AccessKey" and "spark" in r.name)
    assert secret.inputs["stringData"]["access-key-id"] == f"AKIA{spark_key.name.upper().replace('-', '')[:16]}"
    assert secret.inputs["stringData"]["secret-access-key"] == f"aws-secret-of-{spark_key.name}"
    conf = spark_application(batch).inputs["spec"]["sparkConf"]
    assert conf["spark.sql.catalog.lake.warehouse"] == f"s3a://{full.outputs['buckets']['lake']}/warehouse"
    assert conf["spark.eventLog.dir"] == full.outputs["batchEndpoints"]["sparkEventLogDir"] == "file:///spark-events"
    defaults = batch.one("ConfigMap", "spark-defaults").inputs["data"]["spark-defaults.conf"]
    assert f"spark.sql.catalog.lake.warehouse s3a://{full.outputs['buckets']['lake']}/warehouse" in defaults


def test_dbt_profile_from_snowflake_and_key_only_in_a_secret(batch):
    profile = yaml.safe_load(batch.one("ConfigMap", "dbt-profile").inputs["data"]["profiles.yml"])
    output = profile["datapipe"]["outputs"]["prod"]
    assert (output["account"], output["user"], output["role"]) == ("TESTORG-TESTACCOUNT", "DATAPIPE_DBT",
                                                                    "DATAPIPE_TRANSFORMER")
    assert (output["database"], output["warehouse"], output["schema"]) == ("DATAPIPE", "DATAPIPE_WH", "STAGING")
    secret = batch.one("Secret", "dbt-snowflake-credentials")
    assert secret.inputs["stringData"]["rsa_key.p8"] == DEFAULT_SECRETS["snowflakeDbtPrivateKey"]
    assert "stringData" in secret.secret_paths


def test_no_secret_value_outside_secrets(full):
    sensitive = list(DEFAULT_SECRETS.values())
    sensitive += [f"aws-secret-of-{r.name}" for r in full.resources if r.type == "aws:iam/accessKey:AccessKey"]
    sensitive += [f"generated-{r.name}" for r in full.resources if r.type.startswith("random:")]
    for resource in full.resources:
        # Secrets hold them; the generators' own state is where they come from.
        if resource.kind == "Secret" or resource.type.startswith(("random:", "pulumi:providers:")) \
                or resource.type == "aws:iam/accessKey:AccessKey":
            continue
        text = json.dumps(resource.inputs)
        for value in sensitive:
            assert value not in text, f"a secret leaked into {resource.name}"


def test_endpoints_match_the_kind_port_mappings(full):
    endpoints = full.outputs["batchEndpoints"]
    assert endpoints["sparkHistory"] == "http://localhost:18080"
    assert endpoints["sparkUi"] == "http://localhost:4040"
    kind = yaml.safe_load((KIND / "batch-cluster.yaml").read_text())
    control_plane = next(n for n in kind["nodes"] if n["role"] == "control-plane")
    ports = {m["containerPort"]: m["hostPort"] for m in control_plane["extraPortMappings"]}
    history = full.one("Service", "spark-history-server").inputs["spec"]["ports"][0]["nodePort"]
    ui = full.one("Service", "spark-ui").inputs["spec"]["ports"][0]["nodePort"]
    assert (ports[history], ports[ui]) == (18080, 4040)


def test_local_stack_runs_the_store_in_the_batch_budget_and_needs_no_cloud(local):
    assert not [r for r in local.resources if r.type.startswith(("aws:", "snowflake:", "pulumi:providers:aws",
                                                                 "pulumi:providers:snowflake"))]
    assert not local.of_kind("Chart") and not local.of_kind("SparkApplication") and not local.of_kind("CronJob")
    store = local.one("Deployment", "object-store")
    assert store.inputs["metadata"]["namespace"] == NAMESPACE
    memory = local.outputs["batchMemory"]
    assert memory["byServiceMib"]["object-store"] == 512
    # No SparkApplication is registered, but the budget still reserves one default-profile job.
    running = batch_memory(local)
    assert running == {"spark-history-server": 1024, "object-store": 512, "prometheus": 512}
    assert memory["limitsMib"] == sum(running.values()) + (3072 + 384) + 2 * (4096 + 409) == 14514
    assert local.outputs["snowflake"] is None
    assert local.outputs["buckets"]["raw"] == "datapipe-raw"
    claims = {r.k8s_name: r.inputs["spec"]["resources"]["requests"]["storage"] for r in local.of_kind(
        "PersistentVolumeClaim") if r.inputs["metadata"]["namespace"] == NAMESPACE}
    assert claims == {"spark-history": "5120Mi", "object-store": "10240Mi"}


def test_smoke_job_is_off_unless_asked():
    assert not run_program().of_kind("SparkApplication")


@pytest.mark.parametrize("config", [
    LOCAL,
    {"cloud": {"aws": {"enabled": False}}, "batch": {
        "historyServer": {"eventLogDir": "s3a://datapipe-lake/spark-events"}, "spark": {"smokeJob": {"enabled": True}}}},
], ids=["local", "s3a-event-logs"])
def test_variant_manifests_pass_the_kubernetes_schema(config):
    import kubernetes_validate

    program = run_program(config)
    validated = 0
    for resource in program.under(LAYER_TYPE):
        if not resource.kind or resource.kind in ("Chart", "SparkApplication"):
            continue
        manifest = {"apiVersion": resource.type.split(":")[1].removeprefix("core/"), "kind": resource.kind,
                    **resource.inputs}
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)
        validated += 1
    assert validated >= 25


def test_spark_profile_and_smoke_job_keep_their_state_through_aliases(full):
    """The profile's objects and the smoke job were the layer's own children before they had
    components: each carries an alias to its old name and parent, so `up` moves it, not replaces it."""
    (layer,) = full.by_type(LAYER_TYPE)
    moved = {r.name: r for r in full.resources if r.type.startswith("kubernetes:")
             and full.by_urn(r.parent).type in ("datapipe:batch:SparkProfile", "datapipe:batch:SparkSmokeJob")}
    assert set(moved) == {"batch-spark-profile-secret-spark-s3-credentials",
                          "batch-spark-profile-config-map-spark-defaults", "batch-spark-profile-service-spark-ui",
                          "batch-spark-smoke-job-spark-application-spark-pi"}
    for name, resource in moved.items():
        old_name = name.replace("batch-spark-profile-", "batch-").replace("batch-spark-smoke-job-", "batch-")
        assert resource.aliases == [{"spec": {"name": old_name, "parentUrn": layer.urn}}], name


def test_every_workload_waits_for_the_guard_rails(full):
    """Components receive the layer, not a namespace Output: ordering comes from depends_on, so
    no pod can be admitted before the quota that charges it exists."""
    for layer_type in (LAYER_TYPE, "datapipe:ingestion:IngestionLayer"):
        program = Program(full.under(layer_type))
        (quota,) = program.of_kind("ResourceQuota")
        guarded = [r for r in program.resources if r.type.startswith("kubernetes:")
                   and full.by_urn(r.parent).type != "datapipe:platform:LayerNamespace"]
        assert len(guarded) > 10
        for resource in guarded:
            assert quota.urn in resource.dependencies, resource.name
