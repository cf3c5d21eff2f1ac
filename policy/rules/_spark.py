"""Pod memory of SparkApplication drivers and executors, following Spark on Kubernetes.

Spark sizes each pod as `memory + memoryOverhead` (BasicDriverFeatureStep /
BasicExecutorFeatureStep). Without an explicit overhead it is
`max(minMemoryOverhead=384MiB, int(factor * memoryMiB))`, where the factor is the role's
`spark.<role>.memoryOverheadFactor`, else `spark.kubernetes.memoryOverheadFactor` (the
operator's `spec.memoryOverheadFactor`), else 0.10 for JVM apps and 0.40 for Python/R,
whose worker processes live outside the JVM heap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._props import UNKNOWN, as_int, get, get_dict, get_str, is_unknown
from ._quantity import MI, QuantityError, parse_jvm_size
from ._workloads import containers_in_pod_spec, effective_pod_memory, memory_limit, memory_request

DEFAULT_MEMORY = "1g"  # spark.driver.memory / spark.executor.memory defaults
DEFAULT_EXECUTORS = 2  # Spark's DEFAULT_NUMBER_EXECUTORS for static allocation
MIN_OVERHEAD_MIB = 384
JVM_FACTOR = 0.10
NON_JVM_FACTOR = 0.40
NON_JVM_TYPES = {"python", "r"}


@dataclass(frozen=True)
class SparkPod:
    role: str  # "driver" or "executor"
    count: int
    memory_each: int
    notes: tuple[str, ...] = ()


def _conf(spec: dict[str, Any]) -> dict[str, Any]:
    return get_dict(spec, "sparkConf")


def _conf_value(spec: dict[str, Any], key: str) -> Any:
    return get(_conf(spec), key)


def overhead_factor(spec: dict[str, Any], role: str) -> float:
    for candidate in (
        _conf_value(spec, f"spark.{role}.memoryOverheadFactor"),
        _conf_value(spec, "spark.kubernetes.memoryOverheadFactor"),
        get(spec, "memoryOverheadFactor"),
    ):
        factor = _float(candidate)
        if factor is not None:
            return factor
    app_type = get_str(spec, "type")
    if isinstance(app_type, str) and app_type.lower() in NON_JVM_TYPES:
        return NON_JVM_FACTOR
    return JVM_FACTOR


def _float(value: Any) -> float | None:
    if value is None or is_unknown(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _size(value: Any, default_unit: str) -> int | None:
    if value is None or is_unknown(value):
        return None
    try:
        return parse_jvm_size(value, default_unit)
    except QuantityError:
        return None


def container_memory(spec: dict[str, Any], role: str) -> tuple[int, list[str]]:
    """Bytes of the Spark container (heap + overhead [+ PySpark + off-heap]) and notes."""
    notes: list[str] = []
    role_spec = get_dict(spec, role)
    raw_memory = get(role_spec, "memory")
    if raw_memory is None:
        raw_memory = _conf_value(spec, f"spark.{role}.memory")
    if is_unknown(raw_memory):
        notes.append(f"{role}.memory unknown in preview, counted as {DEFAULT_MEMORY}")
    memory = _size(raw_memory, "m")
    if memory is None:
        memory = parse_jvm_size(DEFAULT_MEMORY)
    memory_mib = memory // MI

    overhead = _size(get(role_spec, "memoryOverhead"), "m")
    if overhead is None:
        overhead = _size(_conf_value(spec, f"spark.{role}.memoryOverhead"), "m")
    if overhead is None:
        minimum = _size(_conf_value(spec, f"spark.{role}.minMemoryOverhead"), "m")
        minimum_mib = minimum // MI if minimum is not None else MIN_OVERHEAD_MIB
        factor = overhead_factor(spec, role)
        overhead = max(minimum_mib, int(factor * memory_mib)) * MI

    total = memory + overhead
    if role == "executor":
        app_type = get_str(spec, "type")
        if isinstance(app_type, str) and app_type.lower() == "python":
            total += _size(_conf_value(spec, "spark.executor.pyspark.memory"), "m") or 0
        if str(_conf_value(spec, "spark.memory.offHeap.enabled")).lower() == "true":
            total += _size(_conf_value(spec, "spark.memory.offHeap.size"), "b") or 0
    return total, notes


def executor_count(spec: dict[str, Any]) -> tuple[int, list[str]]:
    dynamic = get_dict(spec, "dynamicAllocation")
    if get(dynamic, "enabled") is True:
        maximum = as_int(get(dynamic, "maxExecutors"))
        if isinstance(maximum, int):
            return maximum, ["dynamic allocation, counted at maxExecutors"]
    for candidate in (
        get(spec, "executor", "instances"),
        _conf_value(spec, "spark.executor.instances"),
    ):
        count = as_int(candidate)
        if count is UNKNOWN:
            return DEFAULT_EXECUTORS, [f"executor.instances unknown, counted as {DEFAULT_EXECUTORS}"]
        if isinstance(count, int) and count >= 0:
            return count, []
    return DEFAULT_EXECUTORS, []


def _pod_with_extras(spec: dict[str, Any], role: str, spark_container: int) -> tuple[int, list[str]]:
    """Sidecars and init containers declared on the driver/executor join the Spark container."""
    role_spec = get_dict(spec, role)
    pod_spec = {
        "containers": get(role_spec, "sidecars", default=[]),
        "initContainers": get(role_spec, "initContainers", default=[]),
    }
    app = [spark_container]
    init: list[tuple[int, bool]] = []
    notes: list[str] = []
    for ref in containers_in_pod_spec(pod_spec, ""):
        memory = memory_limit(ref.container)
        if memory is None:
            memory = memory_request(ref.container)
        if not isinstance(memory, int):
            notes.append(f"{role} container {ref.name} has no known memory limit")
            memory = 0
        if ref.init:
            init.append((memory, False))
        else:
            app.append(memory)
    return effective_pod_memory(app, init), notes


def spark_pods(spec: dict[str, Any]) -> list[SparkPod]:
    pods = []
    for role in ("driver", "executor"):
        container, notes = container_memory(spec, role)
        each, extra_notes = _pod_with_extras(spec, role, container)
        count, count_notes = (1, []) if role == "driver" else executor_count(spec)
        pods.append(SparkPod(role, count, each, tuple(notes + extra_notes + count_notes)))
    return pods
