"""A layer's namespace and its guard rails: quota of the layer's budget, container defaults,
service accounts, a read-only operator role, and default-deny NetworkPolicies that open only
the flows the layer declares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import pulumi

from components import kube
from components.config_types import PRIVATE_NETWORKS
from components.layer_component import Layer
from components.quantities import format_mib

DNS_PORT = 53


@dataclass(frozen=True)
class Flow:
    """`source` pods may open connections to `target` pods on `ports`.

    source None means the host side (NodePort clients from the layer's host CIDRs), unless
    `from_namespace` names another namespace whose pods may connect (a Prometheus outside the layer)."""

    source: Optional[str]
    target: str
    ports: tuple[int, ...]
    from_namespace: Optional[str] = None


@dataclass(frozen=True)
class ExternalEgress:
    """`source` pods may reach addresses outside the cluster (S3, plugin downloads) on `ports`."""

    source: str
    ports: tuple[int, ...]
    cidr: str = "0.0.0.0/0"
    excluded: tuple[str, ...] = ()  # ranges inside `cidr` that stay closed


@dataclass(frozen=True)
class RolePolicy:
    """A service account that needs the Kubernetes API, with the rules it needs."""

    service_account: str
    rules: tuple[dict[str, Any], ...]


@dataclass
class LayerNamespaceArgs:
    namespace: str
    layer: str
    memory_budget_mib: int
    storage_budget_mib: int
    service_accounts: Sequence[str]
    flows: Sequence[Flow]
    external_egress: Sequence[ExternalEgress] = ()
    # Where the host reaches the layer's NodePorts (handed to its components with the Layer).
    external_host: str = "localhost"
    host_cidrs: Sequence[str] = PRIVATE_NETWORKS
    api_roles: Sequence[RolePolicy] = ()
    # Default limit for a container that declares none: small, so a forgotten limit shows up fast.
    default_container_memory_mib: int = 256
    extra_labels: dict[str, str] = field(default_factory=dict)


def _meta(name: str, args: LayerNamespaceArgs, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": args.namespace, "labels": {"datapipe.io/layer": args.layer}, **extra}


def namespace_manifest(args: LayerNamespaceArgs) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": args.namespace,
            "labels": {
                "datapipe.io/layer": args.layer,
                "app.kubernetes.io/part-of": kube.PART_OF,
                # Pod Security admission: the layer's pods all run unprivileged.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                **args.extra_labels,
            },
        },
    }


def quota_manifests(args: LayerNamespaceArgs) -> list[dict[str, Any]]:
    budget = format_mib(args.memory_budget_mib)
    default = format_mib(args.default_container_memory_mib)
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(f"{args.layer}-budget", args),
            "spec": {
                "hard": {
                    "limits.memory": budget,
                    "requests.memory": budget,
                    "requests.storage": format_mib(args.storage_budget_mib),
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(f"{args.layer}-container-defaults", args),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"memory": default},
                        "defaultRequest": {"memory": default},
                        "max": {"memory": budget},
                    }
                ]
            },
        },
    ]


def rbac_manifests(args: LayerNamespaceArgs) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    api_users = {role.service_account for role in args.api_roles}
    for account in args.service_accounts:
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(account, args),
                # Only accounts that talk to the API get a token mounted.
                "automountServiceAccountToken": account in api_users,
            }
        )
    for role in args.api_roles:
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": _meta(role.service_account, args),
                "rules": [dict(rule) for rule in role.rules],
            }
        )
        manifests.append(_binding(role.service_account, role.service_account, args,
                                  {"kind": "ServiceAccount", "name": role.service_account, "namespace": args.namespace}))
    # People operating the layer can inspect it but not read Secrets or change anything.
    viewer = f"{args.layer}-viewer"
    manifests.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(viewer, args),
            "rules": [
                {
                    "apiGroups": ["", "apps", "batch", "policy"],
                    "resources": ["pods", "pods/log", "services", "endpoints", "configmaps", "events",
                                  "persistentvolumeclaims", "statefulsets", "deployments", "jobs",
                                  "cronjobs", "poddisruptionbudgets"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        }
    )
    manifests.append(_binding(viewer, viewer, args, {"kind": "Group", "name": f"datapipe:{viewer}s",
                                                     "apiGroup": "rbac.authorization.k8s.io"}))
    return manifests


def _binding(name: str, role: str, args: LayerNamespaceArgs, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(name, args),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [subject],
    }


def _ports(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policy_manifests(args: LayerNamespaceArgs) -> list[dict[str, Any]]:
    """Deny everything, then allow DNS, the declared pod-to-pod flows (both ends), host access to
    NodePort targets, and declared external egress."""
    policies: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("default-deny-all", args),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("allow-dns", args),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"namespaceSelector": {}}],
                        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
                    }
                ],
            },
        },
    ]
    host_peers = [{"ipBlock": {"cidr": cidr}} for cidr in args.host_cidrs]
    for target in sorted({flow.target for flow in args.flows}):
        rules = []
        for flow in (f for f in args.flows if f.target == target):
            if flow.from_namespace is not None:
                peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": flow.from_namespace}}}]
            elif flow.source is None:
                peers = host_peers
            else:
                peers = [{"podSelector": {"matchLabels": kube.selector(flow.source)}}]
            rules.append({"from": peers, "ports": _ports(flow.ports)})
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta(f"allow-ingress-to-{target}", args),
                "spec": {"podSelector": {"matchLabels": kube.selector(target)}, "policyTypes": ["Ingress"],
                         "ingress": rules},
            }
        )
    sources = {flow.source for flow in args.flows if flow.source} | {e.source for e in args.external_egress}
    for source in sorted(sources):
        rules = [
            {"to": [{"podSelector": {"matchLabels": kube.selector(flow.target)}}], "ports": _ports(flow.ports)}
            for flow in args.flows
            if flow.source == source
        ]
        rules += [
            {"to": [{"ipBlock": {"cidr": egress.cidr, **({"except": list(egress.excluded)} if egress.excluded else {})}}],
             "ports": _ports(egress.ports)}
            for egress in args.external_egress
            if egress.source == source
        ]
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta(f"allow-egress-from-{source}", args),
                "spec": {"podSelector": {"matchLabels": kube.selector(source)}, "policyTypes": ["Egress"],
                         "egress": rules},
            }
        )
    return policies


class LayerNamespace(pulumi.ComponentResource):
    """The namespace every other component of a layer lives in; hand `layer` to them."""

    name: pulumi.Output[str]
    layer: Layer

    def __init__(self, name: str, args: LayerNamespaceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:platform:LayerNamespace", name, None, opts)
        namespace = kube.create(name, namespace_manifest(args), pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        guard_rails = [
            kube.create(name, manifest, child)
            for manifest in quota_manifests(args) + rbac_manifests(args) + network_policy_manifests(args)
        ]
        self.layer = Layer(name=args.layer, namespace=args.namespace, external_host=args.external_host,
                           guard_rails=(namespace, *guard_rails))
        self.name = namespace.metadata["name"]
        self.register_outputs({"name": self.name})
