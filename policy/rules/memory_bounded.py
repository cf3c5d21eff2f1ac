"""memory-bounded: every container states a memory request and limit, request <= limit.

The layer budgets are only as good as the limits they add up: a container without a limit
can grow until the node runs out, and one without a request is scheduled as if it were free.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._layers import bool_setting, report_config_errors, view
from ._props import get
from ._quantity import format_mib
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
            found.append(f"memory request {format_mib(request)} exceeds limit {format_mib(limit)}")
        elif request_equals_limit and isinstance(limit, int) and isinstance(request, int) and request != limit:
            # Guaranteed QoS: a pod that can't burst past its request is never the first evicted.
            found.append(f"memory request {format_mib(request)} differs from limit {format_mib(limit)}")
        if found:
            problems.append(f"container '{ref.name}' ({ref.path}): " + "; ".join(found))
    return problems


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()

    def run() -> None:
        equal = bool_setting(config, "requestEqualsLimit", False)
        res = view(args)
        for problem in unbounded_containers(res.resource_type, res.props, equal):
            report_violation(problem, None)

    report_config_errors("memory-bounded", run, report_violation)


memory_bounded = ResourceValidationPolicy(
    name="memory-bounded",
    description="Every container and init container has a memory request and limit, request <= limit.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(
        properties={
            "requestEqualsLimit": {
                "type": "boolean",
                "default": False,
                "description": "Also require request == limit (Guaranteed QoS for memory).",
            }
        }
    ),
)
