"""memory-bounded: every container states a memory request and limit, request <= limit.

The layer budgets are only as good as the limits they add up: a container without a limit
can grow until the node runs out, and one without a request is scheduled as if it were free.
"""

from __future__ import annotations

from typing import Any

from ._layers import ResourceView, bool_setting, flag_schema
from ._props import get
from ._quantity import format_bytes_as_mib
from ._rule import Config, rule
from ._workloads import containers_of, quantity


def _memory(container: dict[str, Any], kind: str) -> tuple[Any, str | None]:
    """(bytes | UNKNOWN | None, problem) for resources.<kind>.memory."""
    raw = get(container, "resources", kind, "memory")
    if raw is None:
        return None, f"no memory {kind[:-1]}"
    value = quantity(raw)
    if value is None:
        return None, f"memory {kind[:-1]} {raw!r} is not a Kubernetes quantity"
    return value, None


def unbounded_containers(resource_type: str, props: dict[str, Any], request_equals_limit: bool = False) -> list[str]:
    """One problem line per container that is not bounded (empty when all are)."""
    problems = []
    for ref in containers_of(resource_type, props):
        limit, limit_problem = _memory(ref.container, "limits")
        request, request_problem = _memory(ref.container, "requests")
        found = [p for p in (request_problem, limit_problem) if p]
        if isinstance(limit, int) and isinstance(request, int) and request > limit:
            found.append(
                f"memory request {format_bytes_as_mib(request)} exceeds limit {format_bytes_as_mib(limit)}"
            )
        elif request_equals_limit and isinstance(limit, int) and isinstance(request, int) and request != limit:
            # Guaranteed QoS: a pod that can't burst past its request is never the first evicted.
            found.append(
                f"memory request {format_bytes_as_mib(request)} differs from limit {format_bytes_as_mib(limit)}"
            )
        if found:
            problems.append(f"container '{ref.name}' ({ref.path}): " + "; ".join(found))
    return problems


def check(res: ResourceView, config: Config) -> list[str]:
    equal = bool_setting(config, "requestEqualsLimit", False)
    return unbounded_containers(res.resource_type, res.props, equal)


memory_bounded = rule(
    "memory-bounded",
    "Every container and init container has a memory request and limit, request <= limit.",
    check,
    config={"requestEqualsLimit": flag_schema("Also require request == limit (Guaranteed QoS for memory).")},
)
