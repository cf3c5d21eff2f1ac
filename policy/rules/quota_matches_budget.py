"""quota-matches-budget: each layer's namespace carries a ResourceQuota within its budget.

The memory-budget policy only sees what Pulumi deploys. A ResourceQuota makes the cluster
enforce the same ceiling on everything else (pods the Spark operator creates, `kubectl run`),
so it must exist and must not be looser than the budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._layers import LAYERS_SCHEMA, layers_from_config, namespace_of, view
from ._props import UNKNOWN, get, get_dict, is_unknown
from ._quantity import format_bytes_as_mib
from ._rule import rule
from ._workloads import quantity, spark_kind, workload_kind

QUOTA_TYPE = "kubernetes:core/v1:ResourceQuota"
# "memory" is the legacy spelling of requests.memory.
MEMORY_KEYS = ("limits.memory", "requests.memory", "memory")


@dataclass(frozen=True)
class QuotaFinding:
    layer: str
    message: str
    urn: str | None = None


def quota_findings(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[QuotaFinding]:
    layers = layers_from_config(config)
    namespaces = {layer.namespace for layer in layers}
    has_workloads: set[str] = set()
    unknown_namespace_quota = False
    quotas: dict[str, list[tuple[str, str, dict[str, Any]]]] = {ns: [] for ns in namespaces}
    for resource in resources:
        res = view(resource)
        is_quota = res.resource_type == QUOTA_TYPE
        if not (is_quota or workload_kind(res.resource_type) or spark_kind(res.resource_type)):
            continue
        namespace = namespace_of(res)
        if namespace is UNKNOWN:
            unknown_namespace_quota |= is_quota
            continue
        if namespace not in namespaces:
            continue
        if is_quota:
            quotas[namespace].append((res.display_name, res.urn, res.props))
        else:
            has_workloads.add(namespace)

    findings = []
    for layer in layers:
        found = quotas[layer.namespace]
        if not found:
            if layer.namespace in has_workloads and not unknown_namespace_quota:
                findings.append(
                    QuotaFinding(
                        layer.name,
                        f"Layer '{layer.name}': namespace {layer.namespace} runs workloads but has no "
                        f"ResourceQuota capping memory; add one with limits.memory <= "
                        f"{format_bytes_as_mib(layer.memory_budget or 0)}.",
                    )
                )
            continue
        if layer.memory_budget is None:
            continue
        findings.extend(_check_layer_quotas(layer.name, layer.namespace, layer.memory_budget, found))
    return findings


def _check_layer_quotas(
    layer: str, namespace: str, budget: int, quotas: list[tuple[str, str, dict[str, Any]]]
) -> list[QuotaFinding]:
    findings = []
    capped = False
    for name, urn, props in quotas:
        spec = get(props, "spec")
        if is_unknown(spec) or is_unknown(get(props, "spec", "hard")):
            capped = True  # cannot judge in preview; don't call it missing
            continue
        # A scoped quota only covers some pods (e.g. BestEffort), so it caps nothing overall.
        if get(props, "spec", "scopes") or get(props, "spec", "scopeSelector"):
            continue
        hard = get_dict(props, "spec", "hard")
        for key in MEMORY_KEYS:
            raw = hard.get(key)
            if raw is None:
                continue
            value = quantity(raw)
            if is_unknown(value):
                capped = True
                continue
            if value is None:
                findings.append(QuotaFinding(layer, f"ResourceQuota {name}: {key} {raw!r} is not a quantity", urn))
                continue
            capped = True
            if value > budget:
                findings.append(
                    QuotaFinding(
                        layer,
                        f"ResourceQuota {name} in {namespace} allows {key}={format_bytes_as_mib(value)}, more "
                        f"than layer '{layer}' budget of {format_bytes_as_mib(budget)}.",
                        urn,
                    )
                )
    if not capped:
        findings.append(
            QuotaFinding(
                layer,
                f"Layer '{layer}': no unscoped ResourceQuota in {namespace} sets limits.memory or "
                f"requests.memory; add limits.memory <= {format_bytes_as_mib(budget)}.",
            )
        )
    return findings


quota_matches_budget = rule(
    "quota-matches-budget",
    "Each layer namespace with workloads has a ResourceQuota whose limits.memory "
    "(or requests.memory) is no larger than the layer's memory budget.",
    quota_findings,
    stack=True,
    config={"layers": LAYERS_SCHEMA},
)
