from components.layer_namespace import (ExternalEgress, Flow, LayerNamespaceArgs, RolePolicy, network_policy_manifests,
                                        quota_manifests, rbac_manifests)

ARGS = LayerNamespaceArgs(
    namespace="data-ingestion", layer="ingestion", memory_budget_mib=6144, storage_budget_mib=15360,
    service_accounts=["kafka", "kafka-connect", "spark"],
    flows=[Flow("kafka-connect", "kafka", (9092,)), Flow(None, "kafka", (9094,))],
    external_egress=[ExternalEgress("kafka-connect", (443,))],
    api_roles=[RolePolicy("spark", ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},))],
    host_cidrs=("172.18.0.0/16",),
)


def by_name(manifests):
    return {m["metadata"]["name"]: m for m in manifests}


def test_quota_is_the_budget():
    quota, limits = quota_manifests(ARGS)
    assert quota["spec"]["hard"] == {"limits.memory": "6Gi", "requests.memory": "6Gi", "requests.storage": "15Gi"}
    assert limits["spec"]["limits"][0]["default"]["memory"] == "256Mi"


def test_default_deny_then_declared_flows_only():
    policies = by_name(network_policy_manifests(ARGS))
    assert policies["default-deny-all"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = policies["allow-ingress-to-kafka"]["spec"]["ingress"]
    assert ingress[0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "kafka-connect"}}}]
    assert ingress[1]["from"] == [{"ipBlock": {"cidr": "172.18.0.0/16"}}]
    assert ingress[1]["ports"] == [{"protocol": "TCP", "port": 9094}]
    egress = policies["allow-egress-from-kafka-connect"]["spec"]["egress"]
    assert egress[0]["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "kafka"}}}]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}] and egress[1]["ports"][0]["port"] == 443
    assert "allow-ingress-to-kafka-connect" not in policies  # nothing declared, nothing opened
    assert "allow-dns" in policies


def test_only_api_users_get_tokens_and_roles():
    manifests = rbac_manifests(ARGS)
    accounts = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ServiceAccount"}
    assert accounts["spark"]["automountServiceAccountToken"] is True
    assert accounts["kafka"]["automountServiceAccountToken"] is False
    roles = {m["metadata"]["name"] for m in manifests if m["kind"] == "Role"}
    assert roles == {"spark", "ingestion-viewer"}
    viewer = next(m for m in manifests if m["metadata"]["name"] == "ingestion-viewer" and m["kind"] == "Role")
    assert "secrets" not in viewer["rules"][0]["resources"]
