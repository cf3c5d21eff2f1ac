"""Small pure helpers shared by every Kubernetes builder (plain dicts in, plain dicts out)."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any, Mapping, Optional

import pulumi

from components.quantities import format_mib
from components.quoting import properties_line

PART_OF = "datapipe"
NAME_LABEL = "app.kubernetes.io/name"


def labels(app: str, layer: str) -> dict[str, str]:
    return {NAME_LABEL: app, "app.kubernetes.io/part-of": PART_OF, "datapipe.io/layer": layer}


def selector(app: str) -> dict[str, str]:
    """The label set Services, NetworkPolicies and PDBs select an app's pods by."""
    return {NAME_LABEL: app}


def metadata(name: str, namespace: Any, app: str, layer: str) -> dict[str, Any]:
    """Object metadata of one of an app's objects. `namespace` is the plain name in builders, or
    the Namespace's Output where a component creates the object itself."""
    return {"name": name, "namespace": namespace, "labels": labels(app, layer)}


def service_account(name: str) -> dict[str, Any]:
    """The pod spec keys of a workload that never calls the Kubernetes API: its ServiceAccount, and
    no API token mounted (the account says so too; the pod says it even if bound elsewhere)."""
    return {"serviceAccountName": name, "automountServiceAccountToken": False}


def opaque_secret(meta: dict[str, Any], string_data: Mapping[str, Any],
                  binary_b64: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """`binary_b64`: keys whose values are already base64 (e.g. a PKCS12 key store)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": string_data}
    return {**secret, "data": binary_b64} if binary_b64 else secret


def node_port_service(meta: dict[str, Any], pod_selector: dict[str, str], port_name: str, port: int,
                      node_port: int) -> dict[str, Any]:
    """A Service on `port` that every node also opens as `node_port`, for clients outside the
    cluster (the kind/*.yaml files map the node ports to host ports)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "NodePort", "selector": pod_selector,
                 "ports": [{"name": port_name, "port": port, "targetPort": port, "nodePort": node_port}]},
    }


def cluster_ip_service(meta: dict[str, Any], pod_selector: dict[str, str], port_name: str,
                       port: int) -> dict[str, Any]:
    """A Service reachable inside the cluster only."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": pod_selector,
                 "ports": [{"name": port_name, "port": port, "targetPort": port}]},
    }


def recreate_deployment(meta: dict[str, Any], app: str, layer: str, replicas: int, pod: dict[str, Any],
                        pod_annotations: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """A Deployment of `app` that stops its old pods before starting new ones (strategy Recreate);
    the caller says why a surge pod must not run beside them."""
    template_meta: dict[str, Any] = {"labels": labels(app, layer)}
    if pod_annotations is not None:
        template_meta["annotations"] = pod_annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(app)},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }


def claim_spec(storage_mib: int) -> dict[str, Any]:
    """Spec of a PersistentVolumeClaim (or a StatefulSet's claim template) for one pod's volume."""
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{storage_mib}Mi"}}}


def memory_resources(memory_mib: int, cpu_request: str = "100m") -> dict[str, Any]:
    """Requests equal to limits for memory: a JVM or Postgres that gets OOM-killed under node
    pressure is worse than one that never schedules, and the layer quota is sized on limits."""
    memory = format_mib(memory_mib)
    return {"requests": {"memory": memory, "cpu": cpu_request}, "limits": {"memory": memory}}


def jvm_heap_opts(heap_mib: int) -> str:
    # Xms = Xmx: the heap is reserved up front, so an over-committed node fails at start, not later.
    return f"-Xms{heap_mib}m -Xmx{heap_mib}m"


G1_OPTS = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"


def confluent_env(prefix: str, properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Map properties to the env vars Confluent images read: PREFIX_ + upper case, with
    '.'->'_', '_'->'__', '-'->'___' (the images' documented convention)."""
    env = []
    for key, value in properties.items():
        name = key.replace("-", "\x00").replace("_", "__").replace(".", "_").replace("\x00", "___").upper()
        env.append({"name": f"{prefix}_{name}", "value": str(value)})
    return env


def properties_text(properties: Mapping[str, Any]) -> str:
    """A Java .properties file, keys in the given order, each entry escaped for
    java.util.Properties (components/quoting.py): a value cannot start another line."""
    return "".join(properties_line(key, value) + "\n" for key, value in properties.items())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def restricted_security_context(run_as_user: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@functools.cache
def _resource_classes() -> dict[tuple[str, str], type]:
    # Imported here, not at module level: the config models use this module's pure helpers, and
    # validating config must not load the Kubernetes SDK.
    import pulumi_kubernetes as k8s

    return {
        ("v1", "Namespace"): k8s.core.v1.Namespace,
        ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
        ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
        ("v1", "Secret"): k8s.core.v1.Secret,
        ("v1", "Service"): k8s.core.v1.Service,
        ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
        ("v1", "LimitRange"): k8s.core.v1.LimitRange,
        ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
        ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
        ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
        ("batch/v1", "Job"): k8s.batch.v1.Job,
        ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
        ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
        ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
        ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
        ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    }


def resource_name(prefix: str, manifest: Mapping[str, Any]) -> str:
    """Pulumi name of a manifest: component prefix + kind + object name (unique per component)."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", manifest["kind"]).lower()
    return f"{prefix}-{kind}-{manifest['metadata']['name']}"


def create(prefix: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Turn a plain manifest from a builder into the typed Pulumi resource for its kind; a kind
    the SDK has no class for (a custom resource) becomes an `apiextensions.CustomResource`."""
    name = resource_name(prefix, manifest)
    cls = _resource_classes().get((manifest["apiVersion"], manifest["kind"]))
    if cls is None:
        import pulumi_kubernetes as k8s

        return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                                metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
    # Top-level fields are keyword arguments (snake_case); nested dicts keep the API's camelCase.
    fields = {_snake(key): value for key, value in manifest.items() if key not in ("apiVersion", "kind")}
    return cls(name, opts=opts, **fields)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
