"""memory-budget and memory-budget-headroom over realistic and over-budget layer variants."""

from types import SimpleNamespace

import pytest
from pulumi_policy import PolicyProviderResource

from policy_builders import (
    BATCH,
    INGESTION,
    UNKNOWN_NUM,
    UNKNOWN_STR,
    batch_layer,
    container,
    cronjob,
    daemonset,
    deployment,
    ingestion_layer,
    job,
    kafka,
    namespace,
    pod,
    resource,
    run_stack,
    spark_app,
)
from rules._quantity import MI
from rules.memory_budget import layer_memory_report, memory_budget, memory_budget_headroom


def ingestion_total(resources, config=None):
    return layer_memory_report(resources, config)["ingestion"].total // MI


def replace(resources, name, new):
    return [new if r.name == name else r for r in resources]


# --- ingestion ----------------------------------------------------------------------------


def test_realistic_ingestion_layer_fits_exactly():
    resources = ingestion_layer()
    report = layer_memory_report(resources)["ingestion"]
    assert report.total == 6142 * MI
    assert report.budget == 6144 * MI
    assert [(c.name, c.replicas, c.memory_each // MI) for c in report.consumers] == [
        ("kafka-connect", 1, 2048),
        ("kafka", 3, 682),
        ("postgres", 1, 1024),
        ("schema-registry", 1, 1024),
    ]
    assert run_stack(memory_budget, resources) == []


def test_fourth_broker_breaks_the_budget_with_numbers():
    found = run_stack(memory_budget, ingestion_layer(kafka_replicas=4))
    assert len(found) == 1
    message, urn = found[0]
    assert urn is None
    assert "Layer 'ingestion' (namespace data-ingestion)" in message
    assert "6824Mi" in message and "6Gi" in message and "over budget by 680Mi" in message
    row = next(line for line in message.splitlines() if line.strip().startswith("kafka "))
    assert row.split() == ["kafka", "StatefulSet", "4", "682Mi", "2728Mi"]
    assert message.splitlines()[-2].split() == ["layer", "total", "6824Mi"]
    assert message.splitlines()[-1].split() == ["budget", "6144Mi"]


def test_a_sidecar_breaks_the_budget():
    registry = deployment(
        "schema-registry",
        INGESTION,
        [container("schema-registry", "1Gi"), container("metrics-exporter", "64Mi")],
    )
    resources = replace(ingestion_layer(), "schema-registry", registry)
    assert ingestion_total(resources) == 6206
    found = run_stack(memory_budget, resources)
    assert len(found) == 1 and "schema-registry" in found[0][0] and "1088Mi" in found[0][0]


def test_a_native_sidecar_counts_and_a_small_init_container_does_not():
    init_ok = deployment(
        "schema-registry", INGESTION, [container("schema-registry", "1Gi")], init=[container("wait-for-kafka", "32Mi")]
    )
    assert ingestion_total(replace(ingestion_layer(), "schema-registry", init_ok)) == 6142
    native_sidecar = deployment(
        "schema-registry",
        INGESTION,
        [container("schema-registry", "1Gi")],
        init=[container("proxy", "32Mi", restart_policy="Always")],
    )
    resources = replace(ingestion_layer(), "schema-registry", native_sidecar)
    assert ingestion_total(resources) == 6174
    assert len(run_stack(memory_budget, resources)) == 1


def test_a_large_init_container_sets_the_pod_peak():
    big_init = deployment(
        "schema-registry", INGESTION, [container("schema-registry", "1Gi")], init=[container("migrate", "1200Mi")]
    )
    resources = replace(ingestion_layer(), "schema-registry", big_init)
    assert ingestion_total(resources) == 6142 - 1024 + 1200
    assert len(run_stack(memory_budget, resources)) == 1


def test_pods_jobs_cronjobs_and_daemonsets_count():
    extra = [
        pod("debug", INGESTION, [container("sh", "16Mi")]),
        job("backfill", INGESTION, [container("run", "10Mi")], parallelism=3),
        cronjob("compact", INGESTION, [container("run", "20Mi")], parallelism=2),
        daemonset("node-exporter", INGESTION, [container("exporter", "8Mi")]),
    ]
    report = layer_memory_report(extra)["ingestion"]
    assert report.total == (16 + 30 + 40 + 24) * MI
    assert {(c.kind, c.replicas) for c in report.consumers} == {("Pod", 1), ("Job", 3), ("CronJob", 2), ("DaemonSet", 3)}


def test_node_count_is_configurable_globally_and_per_layer():
    ds = [daemonset("node-exporter", INGESTION, [container("exporter", "100Mi")])]
    assert ingestion_total(ds, {"nodeCount": 1}) == 100
    layers = {"ingestion": {"nodeCount": 5}, "batch": {}}
    assert ingestion_total(ds, {"nodeCount": 1, "layers": layers}) == 500


def test_helm_chart_children_count_like_any_deployment():
    report = layer_memory_report(batch_layer())["batch"]
    names = {c.name for c in report.consumers}
    assert {"spark-operator-controller", "spark-operator-webhook"} <= names


def test_other_namespaces_and_non_workloads_are_ignored():
    resources = ingestion_layer() + [
        deployment("elsewhere", "default", [container("x", "4Gi")]),
        deployment("no-namespace", None, [container("x", "4Gi")]),
        resource("kubernetes:core/v1:Service", "kafka", {"metadata": {"namespace": INGESTION}}),
        resource("datapipe:ingestion:KafkaCluster", "kafka", {"replicas": 9}),
    ]
    assert ingestion_total(resources) == 6142


def test_provider_default_namespace_applies_when_metadata_has_none():
    provider = PolicyProviderResource("pulumi:providers:kubernetes", {"namespace": INGESTION}, "urn:provider", "ingestion")
    stray = deployment("no-namespace", None, [container("x", "100Mi")], provider=provider)
    assert ingestion_total(ingestion_layer() + [stray]) == 6242


# --- batch / Spark ------------------------------------------------------------------------


def test_realistic_batch_layer_fits():
    resources = batch_layer()
    report = layer_memory_report(resources)["batch"]
    rows = {c.name: (c.replicas, c.memory_each // MI) for c in report.consumers}
    # driver 3g + max(384Mi, 10%) ; executors 4g + 409Mi (10% of 4096Mi, truncated like Spark)
    assert rows["nightly-compaction driver"] == (1, 3072 + 384)
    assert rows["nightly-compaction executor"] == (2, 4096 + 409)
    assert report.total == (3456 + 2 * 4505 + 1024 + 1024 + 512 + 256) * MI
    assert run_stack(memory_budget, resources) == []


def test_more_spark_executors_break_the_batch_budget():
    found = run_stack(memory_budget, batch_layer(executors=3))
    assert len(found) == 1
    message = found[0][0]
    assert "Layer 'batch' (namespace batch-analytics)" in message
    assert "19787Mi" in message and "18Gi" in message and "over budget by 1355Mi" in message
    row = next(line for line in message.splitlines() if "executor" in line)
    assert row.split() == ["nightly-compaction", "executor", "SparkApplication", "3", "4505Mi", "13515Mi"]


@pytest.mark.parametrize(
    ("kwargs", "driver_mib", "executor_mib"),
    [
        # Python apps default to a 0.40 overhead factor
        ({"app_type": "Python"}, 3072 + 1228, 4096 + 1638),
        ({"app_type": "R"}, 3072 + 1228, 4096 + 1638),
        ({"app_type": "Java"}, 3072 + 384, 4096 + 409),
        # explicit overheads win; a bare number is MiB
        ({"driver": {"memoryOverhead": "1g"}, "executor": {"memoryOverhead": "512"}}, 3072 + 1024, 4096 + 512),
        # role factor, then spark.kubernetes.memoryOverheadFactor
        ({"spark_conf": {"spark.executor.memoryOverheadFactor": "0.2"}}, 3072 + 384, 4096 + 819),
        ({"app_type": "Python", "spark_conf": {"spark.kubernetes.memoryOverheadFactor": "0.1"}}, 3072 + 384, 4096 + 409),
        ({"spark_conf": {"spark.driver.memoryOverheadFactor": "0.5"}}, 3072 + 1536, 4096 + 409),
        # memory from sparkConf, then the 1g default
        ({"driver_memory": None, "spark_conf": {"spark.driver.memory": "2048m"}}, 2048 + 384, 4096 + 409),
        ({"driver_memory": None, "executor_memory": None}, 1024 + 384, 1024 + 384),
        ({"driver_memory": "512k"}, 0 + 384, 4096 + 409),
    ],
)
def test_spark_overhead_rules(kwargs, driver_mib, executor_mib):
    report = layer_memory_report([spark_app("job", **kwargs)])["batch"]
    rows = {c.name: c.memory_each for c in report.consumers}
    assert rows["job driver"] == driver_mib * MI + (512 * 1024 if kwargs.get("driver_memory") == "512k" else 0)
    assert rows["job executor"] == executor_mib * MI


def test_spark_executor_count_defaults_and_dynamic_allocation():
    default = layer_memory_report([spark_app("job", instances=None)])["batch"]
    assert next(c for c in default.consumers if c.name == "job executor").replicas == 2
    dynamic = spark_app("job", instances=1)
    dynamic.props["spec"]["__target"]["dynamicAllocation"] = {"enabled": True, "maxExecutors": 5}
    report = layer_memory_report([dynamic])["batch"]
    assert next(c for c in report.consumers if c.name == "job executor").replicas == 5


def test_spark_sidecars_add_to_their_pod():
    app = spark_app("job", driver={"sidecars": [container("log-shipper", "128Mi")]})
    rows = {c.name: c.memory_each // MI for c in layer_memory_report([app])["batch"].consumers}
    assert rows["job driver"] == 3456 + 128


# --- missing and unknown values -----------------------------------------------------------


def test_containers_without_limits_count_zero_and_are_named():
    resources = ingestion_layer() + [deployment("bare", INGESTION, [container("bare", None)])]
    report = layer_memory_report(resources)["ingestion"]
    assert report.total == 6142 * MI
    bare = next(c for c in report.consumers if c.name == "bare")
    assert bare.notes == ("no memory limit: bare",)


def test_missing_spec_does_not_crash():
    broken = [
        resource("kubernetes:apps/v1:Deployment", "empty", {"metadata": {"namespace": INGESTION}}),
        resource("kubernetes:apps/v1:StatefulSet", "no-metadata", {}),
        resource("kubernetes:batch/v1:CronJob", "no-job", {"metadata": {"namespace": INGESTION}, "spec": {}}),
        resource("kubernetes:sparkoperator.k8s.io/v1beta2:SparkApplication", "no-spec", {"metadata": {"namespace": BATCH}}),
    ]
    reports = layer_memory_report(broken)
    assert reports["ingestion"].total == 0
    # an empty SparkApplication still runs a default driver and two executors
    assert reports["batch"].total == (1408 + 2 * 1408) * MI
    assert run_stack(memory_budget, broken) == []


def test_unknown_values_during_preview_do_not_crash():
    resources = ingestion_layer()[:-3] + [
        deployment("schema-registry", INGESTION, [container("schema-registry", UNKNOWN_STR)]),
        deployment("kafka-connect", INGESTION, [container("connect", "2Gi")], replicas=UNKNOWN_NUM),
        resource("kubernetes:apps/v1:Deployment", "opaque", {"metadata": {"namespace": INGESTION}, "spec": UNKNOWN_STR}),
        spark_app("job", instances=UNKNOWN_NUM, driver_memory=UNKNOWN_STR),
    ]
    report = layer_memory_report(resources)["ingestion"]
    notes = {c.name: c.notes for c in report.consumers}
    assert notes["schema-registry"] == ("memory unknown in preview: schema-registry",)
    assert notes["kafka-connect"] == ("replicas unknown in preview, counted as 1",)
    assert notes["opaque"][0] == "pod spec unknown in preview"
    assert report.total == (1024 + 2046 + 2048) * MI
    batch = layer_memory_report(resources)["batch"]
    assert {c.name: c.replicas for c in batch.consumers}["job executor"] == 2
    assert run_stack(memory_budget, resources) == []


def test_unknown_namespace_follows_the_namespace_dependency():
    ns = namespace(INGESTION)
    broker = kafka(replicas=4)
    moved = resource(
        broker.resource_type,
        "kafka",
        {**broker.props["__target"], "metadata": {"name": "kafka", "namespace": UNKNOWN_STR}},
        property_dependencies={"metadata": [ns]},
    )
    resources = replace(ingestion_layer(), "kafka", moved)
    assert ingestion_total(resources) == 6824
    assert len(run_stack(memory_budget, resources)) == 1


def test_unresolvable_namespace_is_reported_not_counted():
    broker = kafka(replicas=4)
    unplaced = resource(
        broker.resource_type, "kafka", {**broker.props["__target"], "metadata": {"name": "kafka", "namespace": UNKNOWN_STR}}
    )
    resources = replace(ingestion_layer(kafka_replicas=4), "schema-registry", deployment("schema-registry", INGESTION, [container("sr", "1Gi")])) + [unplaced]
    report = layer_memory_report(resources)["ingestion"]
    assert report.unplaced == ["kafka"]
    found = run_stack(memory_budget, resources)
    assert "namespace unknown in preview, not counted: kafka" in found[0][0]


# --- config -------------------------------------------------------------------------------


def test_config_override_raises_the_budget():
    resources = ingestion_layer(kafka_replicas=4)
    config = {"layers": {"ingestion": {"memoryBudget": "7Gi"}, "batch": {}}}
    assert run_stack(memory_budget, resources, config) == []
    assert layer_memory_report(resources, config)["batch"].budget == 18 * 1024 * MI


def test_config_override_can_rename_namespaces_and_layers():
    config = {"layers": {"cdc": {"namespace": INGESTION, "memoryBudget": "6000Mi"}}}
    found = run_stack(memory_budget, ingestion_layer(), config)
    assert len(found) == 1 and "Layer 'cdc'" in found[0][0]


def test_top_consumers_limits_rows():
    found = run_stack(memory_budget, batch_layer(executors=3), {"topConsumers": 2})
    message = found[0][0]
    assert "(4 more)" in message and "2816Mi" in message


def test_invalid_config_is_a_violation_not_a_crash():
    found = run_stack(memory_budget, ingestion_layer(), {"layers": {"ingestion": {"memoryBudget": "six gigs"}}})
    assert len(found) == 1 and "invalid configuration" in found[0][0] and "memoryBudget" in found[0][0]


def test_works_on_any_object_with_the_policy_resource_attributes():
    plain_resources = [
        SimpleNamespace(resource_type=r.resource_type, props=dict(r.props["__target"]), name=r.name, urn=r.urn)
        for r in ingestion_layer(kafka_replicas=4)
    ]
    assert layer_memory_report(plain_resources)["ingestion"].total == 6824 * MI


# --- headroom (advisory) ------------------------------------------------------------------


def test_headroom_warns_above_the_share_only_within_budget():
    assert memory_budget_headroom.enforcement_level.value == "advisory"
    found = run_stack(memory_budget_headroom, ingestion_layer())
    assert len(found) == 1
    assert "10% headroom" in found[0][0] and "6142Mi" in found[0][0] and "99.9% of budget" in found[0][0]
    # batch is at 82.9%: quiet; an over-budget layer is memory-budget's finding, not this one's
    assert run_stack(memory_budget_headroom, batch_layer()) == []
    assert run_stack(memory_budget_headroom, ingestion_layer(kafka_replicas=4)) == []


def test_headroom_share_is_configurable():
    assert run_stack(memory_budget_headroom, batch_layer(), {"headroomShare": 0.8})
    assert run_stack(memory_budget_headroom, ingestion_layer(), {"headroomShare": 1.0}) == []
    found = run_stack(memory_budget_headroom, ingestion_layer(), {"headroomShare": 1.5})
    assert "invalid configuration" in found[0][0]
