"""memory-bounded: every container and init container has a memory request and limit."""

from policy_builders import (
    INGESTION,
    UNKNOWN_STR,
    container,
    deployment,
    ingestion_layer,
    resource,
    run_resource,
    spark_app,
    statefulset,
)
from rules.memory_bounded import memory_bounded


def test_realistic_layer_is_bounded():
    for res in ingestion_layer():
        assert run_resource(memory_bounded, res) == [], res.name


def test_container_without_limits_fails():
    found = run_resource(memory_bounded, deployment("x", INGESTION, [container("app", "1Gi"), container("proxy", None)]))
    assert found.messages == [
        "container 'proxy' (spec.template.spec.containers[1]): no memory request; no memory limit"
    ]


def test_init_container_without_limit_fails():
    init = container("migrate", "64Mi")
    del init["resources"]["limits"]
    found = run_resource(memory_bounded, statefulset("pg", INGESTION, [container("pg", "1Gi")], init=[init]))
    assert found.messages == ["container 'migrate' (spec.template.spec.initContainers[0]): no memory limit"]


def test_request_above_limit_fails():
    found = run_resource(memory_bounded, deployment("x", INGESTION, [container("app", "1Gi", request="2Gi")]))
    assert found.messages == ["container 'app' (spec.template.spec.containers[0]): memory request 2048Mi exceeds limit 1024Mi"]


def test_unparseable_limit_fails():
    found = run_resource(memory_bounded, deployment("x", INGESTION, [container("app", "1 gig", request="1Gi")]))
    assert "is not a Kubernetes quantity" in found.text


def test_spark_sidecars_are_checked():
    app = spark_app("job", driver={"sidecars": [container("logs", None)]})
    assert "container 'logs' (spec.driver.sidecars[0])" in run_resource(memory_bounded, app).text
    assert run_resource(memory_bounded, spark_app("job")) == []


def test_missing_and_unknown_values_do_not_crash():
    assert run_resource(memory_bounded, resource("kubernetes:apps/v1:Deployment", "empty", {})) == []
    assert run_resource(memory_bounded, resource("kubernetes:apps/v1:Deployment", "opaque", {"spec": UNKNOWN_STR})) == []
    unknown = container("app", UNKNOWN_STR)
    unknown["resources"]["requests"]["memory"] = UNKNOWN_STR
    assert run_resource(memory_bounded, deployment("x", INGESTION, [unknown])) == []
    weird = {"spec": {"template": {"spec": {"containers": [None, "x", {"resources": UNKNOWN_STR}]}}}}
    found = run_resource(memory_bounded, resource("kubernetes:apps/v1:Deployment", "weird", weird))
    assert found == []  # an unknown resources block can't be judged


def test_non_workloads_are_ignored():
    assert run_resource(memory_bounded, resource("kubernetes:core/v1:Service", "svc", {"spec": {}})) == []


def test_config_can_require_request_equal_to_limit():
    burstable = deployment("x", INGESTION, [container("app", "1Gi", request="512Mi")])
    assert run_resource(memory_bounded, burstable) == []
    found = run_resource(memory_bounded, burstable, {"requestEqualsLimit": True})
    assert found.messages == ["container 'app' (spec.template.spec.containers[0]): memory request 512Mi differs from limit 1024Mi"]
    for res in ingestion_layer():
        assert run_resource(memory_bounded, res, {"requestEqualsLimit": True}) == [], res.name
    assert "invalid configuration" in run_resource(memory_bounded, burstable, {"requestEqualsLimit": "yes"}).text
