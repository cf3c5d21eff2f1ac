"""What runs: pod templates, containers and copies for each Kubernetes workload kind.

Everything here works on plain data (see `_props.plain`) so the same functions serve
resource policies (inputs), stack policies (outputs) and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._props import UNKNOWN, Unknown, as_int, get, get_dict, get_list, get_str, is_unknown
from ._quantity import QuantityError, parse_k8s_quantity

_BUILTIN_GROUPS = {"core", "apps", "batch", "extensions"}
WORKLOAD_KINDS = {
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
}
SPARK_GROUP = "sparkoperator.k8s.io"
SPARK_KINDS = {"SparkApplication", "ScheduledSparkApplication"}


def parse_type(token: str) -> tuple[str, str, str] | None:
    """("apps", "v1", "Deployment") for "kubernetes:apps/v1:Deployment"."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    group, _, version = parts[1].rpartition("/")
    return group or "core", version, parts[2]


def workload_kind(token: str) -> str | None:
    parsed = parse_type(token)
    if parsed and parsed[0] in _BUILTIN_GROUPS and parsed[2] in WORKLOAD_KINDS:
        return parsed[2]
    return None


def spark_kind(token: str) -> str | None:
    parsed = parse_type(token)
    if parsed and parsed[0] == SPARK_GROUP and parsed[2] in SPARK_KINDS:
        return parsed[2]
    return None


def spark_spec(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """The SparkApplicationSpec (a ScheduledSparkApplication nests it under `template`)."""
    if kind == "ScheduledSparkApplication":
        return get_dict(props, "spec", "template")
    return get_dict(props, "spec")


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec and how many pods of it run at the same time."""

    spec: dict[str, Any]
    copies: int
    copies_from: str  # which field (or config) the count came from, for messages
    spec_unknown: bool = False
    copies_unknown: bool = False


def _count(value: Any, default: int) -> tuple[int, bool]:
    number = as_int(value)
    if number is UNKNOWN:
        return default, True
    return (number if isinstance(number, int) and number >= 0 else default), False


def pod_template(kind: str, props: dict[str, Any], node_count: int) -> PodTemplate | None:
    if kind == "Pod":
        spec = get(props, "spec")
        return PodTemplate(spec if isinstance(spec, dict) else {}, 1, "pod", is_unknown(spec))
    if kind == "CronJob":
        job = get(props, "spec", "jobTemplate", "spec")
        if is_unknown(job):
            return PodTemplate({}, 1, "parallelism", spec_unknown=True)
        return _job_template(job if isinstance(job, dict) else {})
    if kind == "Job":
        job = get(props, "spec")
        if is_unknown(job):
            return PodTemplate({}, 1, "parallelism", spec_unknown=True)
        return _job_template(job if isinstance(job, dict) else {})
    spec = get(props, "spec", "template", "spec")
    template = spec if isinstance(spec, dict) else {}
    if kind == "DaemonSet":
        return PodTemplate(template, node_count, "nodeCount", is_unknown(spec))
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        # Kubernetes defaults replicas to 1 when unset.
        replicas, unknown = _count(get(props, "spec", "replicas"), 1)
        return PodTemplate(template, replicas, "replicas", is_unknown(spec), unknown)
    return None


def _job_template(job: dict[str, Any]) -> PodTemplate:
    spec = get(job, "template", "spec")
    parallelism, unknown = _count(get(job, "parallelism"), 1)
    completions = as_int(get(job, "completions"))
    # The Job controller never runs more pods than completions remain.
    if isinstance(completions, int) and completions >= 0:
        parallelism = min(parallelism, completions)
    return PodTemplate(
        spec if isinstance(spec, dict) else {}, parallelism, "parallelism", is_unknown(spec), unknown
    )


@dataclass(frozen=True)
class ContainerRef:
    path: str  # JSON-ish path for messages, e.g. spec.template.spec.initContainers[0]
    name: str
    container: dict[str, Any]
    init: bool
    sidecar: bool  # an init container with restartPolicy: Always runs for the pod's lifetime


def pod_spec_path(kind: str) -> str:
    return {
        "Pod": "spec",
        "Job": "spec.template.spec",
        "CronJob": "spec.jobTemplate.spec.template.spec",
    }.get(kind, "spec.template.spec")


def containers_in_pod_spec(spec: dict[str, Any], path: str) -> list[ContainerRef]:
    refs = []
    for field, init in (("initContainers", True), ("containers", False)):
        for index, container in enumerate(get_list(spec, field)):
            if not isinstance(container, dict):
                continue
            name = get_str(container, "name")
            restart = get(container, "restartPolicy")
            refs.append(
                ContainerRef(
                    path=f"{path}.{field}[{index}]",
                    name=name if isinstance(name, str) else f"#{index}",
                    container=container,
                    init=init,
                    sidecar=init and restart == "Always",
                )
            )
    return refs


def containers_of(resource_type: str, props: dict[str, Any]) -> list[ContainerRef]:
    """Every Kubernetes container spec in a workload, including Spark pod sidecars/inits."""
    kind = workload_kind(resource_type)
    if kind:
        template = pod_template(kind, props, 1)
        return containers_in_pod_spec(template.spec, pod_spec_path(kind)) if template else []
    kind = spark_kind(resource_type)
    if kind:
        spec = spark_spec(kind, props)
        base = "spec.template" if kind == "ScheduledSparkApplication" else "spec"
        refs = []
        for role in ("driver", "executor"):
            role_spec = get_dict(spec, role)
            for field, init in (("initContainers", True), ("sidecars", False)):
                for index, container in enumerate(get_list(role_spec, field)):
                    if isinstance(container, dict):
                        name = get_str(container, "name")
                        refs.append(
                            ContainerRef(
                                path=f"{base}.{role}.{field}[{index}]",
                                name=name if isinstance(name, str) else f"{role}-{field}-{index}",
                                container=container,
                                init=init,
                                sidecar=False,
                            )
                        )
        return refs
    return []


def quantity(value: Any) -> int | Unknown | None:
    """Bytes, UNKNOWN, or None when absent or unparseable (rules report the latter)."""
    if is_unknown(value):
        return UNKNOWN
    if value is None:
        return None
    try:
        return parse_k8s_quantity(value)
    except QuantityError:
        return None


def memory_limit(container: dict[str, Any]) -> int | Unknown | None:
    return quantity(get(container, "resources", "limits", "memory"))


def memory_request(container: dict[str, Any]) -> int | Unknown | None:
    return quantity(get(container, "resources", "requests", "memory"))


def effective_pod_memory(app: list[int], init: list[tuple[int, bool]], overhead: int = 0) -> int:
    """Memory the scheduler reserves for a pod, as Kubernetes computes it (KEP-753).

    Init containers run one at a time, each alongside the sidecars (restartable init
    containers) started before it; afterwards the app containers run with all sidecars.
    The pod needs the larger of the two phases, plus the RuntimeClass overhead.
    `init` is in declaration order: (bytes, is_sidecar).
    """
    sidecars = 0
    init_peak = 0
    for memory, is_sidecar in init:
        if is_sidecar:
            sidecars += memory
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + memory)
    return max(init_peak, sum(app) + sidecars) + overhead


@dataclass(frozen=True)
class PodMemory:
    bytes: int
    unbounded: tuple[str, ...] = ()  # containers without a memory limit (or request)
    unknown: tuple[str, ...] = ()  # containers whose limit is not known during preview


def pod_memory(spec: dict[str, Any], extra_app: int = 0) -> PodMemory:
    """Effective memory limit of a pod spec; a container without a limit counts its request
    (the least it will take), and one with neither counts 0 and is listed as unbounded."""
    app: list[int] = [extra_app] if extra_app else []
    init: list[tuple[int, bool]] = []
    unbounded: list[str] = []
    unknown: list[str] = []
    for ref in containers_in_pod_spec(spec, ""):
        memory = memory_limit(ref.container)
        if memory is None:
            memory = memory_request(ref.container)
            if memory is None:
                unbounded.append(ref.name)
        if memory is UNKNOWN:
            unknown.append(ref.name)
        value = memory if isinstance(memory, int) else 0
        if ref.init:
            init.append((value, ref.sidecar))
        else:
            app.append(value)
    overhead = quantity(get(spec, "overhead", "memory"))
    total = effective_pod_memory(app, init, overhead if isinstance(overhead, int) else 0)
    return PodMemory(total, tuple(unbounded), tuple(unknown))
