"""quota-matches-budget: each layer namespace has a ResourceQuota no looser than its budget."""

from policy_builders import (
    BATCH,
    INGESTION,
    UNKNOWN_STR,
    batch_layer,
    container,
    deployment,
    ingestion_layer,
    namespace,
    quota,
    run_stack,
)
from rules.quota_matches_budget import quota_matches_budget


def without_quota(resources):
    return [r for r in resources if r.resource_type != "kubernetes:core/v1:ResourceQuota"]


def test_realistic_layers_pass():
    assert run_stack(quota_matches_budget, ingestion_layer() + batch_layer()) == []


def test_missing_quota_fails_only_for_layers_with_workloads():
    found = run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [namespace(BATCH)])
    assert found.messages == [
        "Layer 'ingestion': namespace data-ingestion runs workloads but has no ResourceQuota capping "
        "memory; add one with limits.memory <= 6144Mi."
    ]


def test_quota_above_budget_fails():
    resources = without_quota(ingestion_layer()) + [quota("memory", INGESTION, {"limits.memory": "8Gi"})]
    found = run_stack(quota_matches_budget, resources)
    assert len(found) == 1
    assert "limits.memory=8192Mi" in found[0][0] and "6144Mi" in found[0][0]
    assert found[0][1].endswith("ResourceQuota::memory")


def test_requests_memory_alone_is_enough():
    resources = without_quota(ingestion_layer()) + [quota("memory", INGESTION, {"requests.memory": "6Gi"})]
    assert run_stack(quota_matches_budget, resources) == []


def test_quota_without_memory_or_scoped_fails():
    cpu_only = without_quota(ingestion_layer()) + [quota("cpu", INGESTION, {"limits.cpu": "4"})]
    assert "no unscoped ResourceQuota" in run_stack(quota_matches_budget, cpu_only).text
    scoped = quota("best-effort", INGESTION, {"limits.memory": "1Gi"})
    scoped.props["spec"]["__target"]["scopes"] = ["BestEffort"]
    assert "no unscoped ResourceQuota" in run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [scoped]).text


def test_config_override():
    resources = without_quota(ingestion_layer()) + [quota("memory", INGESTION, {"limits.memory": "8Gi"})]
    config = {"layers": {"ingestion": {"memoryBudget": "8Gi"}, "batch": {}}}
    assert run_stack(quota_matches_budget, resources, config) == []


def test_missing_and_unknown_values_do_not_crash():
    unknown_hard = quota("memory", INGESTION, UNKNOWN_STR)
    assert run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [unknown_hard]) == []
    unknown_value = quota("memory", INGESTION, {"limits.memory": UNKNOWN_STR})
    assert run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [unknown_value]) == []
    # a quota whose namespace preview can't tell: don't accuse the layer of having none
    unknown_ns = quota("memory", UNKNOWN_STR, {"limits.memory": "6Gi"})
    assert run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [unknown_ns]) == []
    no_spec = quota("memory", INGESTION, {})
    del no_spec.props["__target"]["spec"]
    assert "no unscoped ResourceQuota" in run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [no_spec]).text
    bad = quota("memory", INGESTION, {"limits.memory": "lots"})
    assert "is not a quantity" in run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [bad]).text


def test_unknown_quota_namespace_resolves_through_its_namespace_dependency():
    ns = namespace(INGESTION)
    big = quota("memory", UNKNOWN_STR, {"limits.memory": "64Gi"}, property_dependencies={"metadata": [ns]})
    found = run_stack(quota_matches_budget, without_quota(ingestion_layer()) + [big])
    assert "65536Mi" in found.text


def test_batch_quota_checked_against_batch_budget():
    resources = without_quota(batch_layer()) + [quota("memory", BATCH, {"limits.memory": "20Gi"})]
    assert "20480Mi" in run_stack(quota_matches_budget, resources).text
    assert run_stack(quota_matches_budget, [deployment("x", "default", [container("x", "1Gi")])]) == []
