"""memory-budget / memory-budget-headroom: what a layer will run must fit its memory budget.

Each layer lives on a small cluster (6Gi ingestion, 18Gi batch by default). A change that
adds a broker, a sidecar or a Spark executor can pass every per-resource check and still
leave pods Pending or OOM-killed, so the sum is checked over the whole stack: every pod
that will run at once, counted at its memory limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import EnforcementLevel

from ._layers import (
    LAYERS_SCHEMA,
    NODE_COUNT_SCHEMA,
    Layer,
    ResourceView,
    float_setting,
    int_setting,
    layer_by_namespace,
    layers_from_config,
    namespace_of,
    share_schema,
    view,
)
from ._props import UNKNOWN
from ._quantity import format_bytes, format_bytes_as_mib
from ._rule import Config, rule
from ._spark import spark_pods
from ._table import render_table
from ._workloads import pod_memory, pod_template, spark_kind, spark_spec, workload_kind

DEFAULT_TOP_CONSUMERS = 8
DEFAULT_HEADROOM_SHARE = 0.9


@dataclass(frozen=True)
class Consumer:
    """One row of the budget table: `replicas` pods of `memory_each` bytes each."""

    name: str
    kind: str
    replicas: int
    memory_each: int
    urn: str = ""
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.replicas * self.memory_each


@dataclass
class LayerMemoryReport:
    layer: Layer
    consumers: list[Consumer] = field(default_factory=list)
    # Workloads whose namespace preview cannot tell yet: not counted anywhere, but named.
    unplaced: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.consumers)

    @property
    def budget(self) -> int | None:
        return self.layer.memory_budget

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.total > self.budget

    def share(self) -> float | None:
        return self.total / self.budget if self.budget else None


def workload_consumers(res: ResourceView, node_count: int) -> list[Consumer]:
    """The memory rows a single resource contributes (none for non-workloads)."""
    kind = workload_kind(res.resource_type)
    if kind:
        template = pod_template(kind, res.props, node_count)
        if template is None:
            return []
        memory = pod_memory(template.spec)
        notes = []
        if template.spec_unknown:
            notes.append("pod spec unknown in preview")
        if template.copies_unknown:
            notes.append(f"{template.copies_from} unknown in preview, counted as {template.copies}")
        if memory.unknown:
            notes.append("memory unknown in preview: " + ", ".join(memory.unknown))
        if memory.unbounded:
            notes.append("no memory limit: " + ", ".join(memory.unbounded))
        return [Consumer(res.display_name, kind, template.copies, memory.bytes, res.urn, tuple(notes))]
    kind = spark_kind(res.resource_type)
    if kind:
        spec = spark_spec(kind, res.props)
        return [
            Consumer(f"{res.display_name} {pod.role}", kind, pod.count, pod.memory_each, res.urn, pod.notes)
            for pod in spark_pods(spec)
        ]
    return []


def layer_memory_report(
    resources: Iterable[Any], config: Mapping[str, Any] | None = None
) -> dict[str, LayerMemoryReport]:
    """Per-layer memory totals and consumer rows (largest first).

    `resources` are objects with `.resource_type`, `.props`, `.name`, `.urn` — e.g.
    pulumi_policy.PolicyResource, or resources captured under Pulumi mocks. `config` is
    this policy's config (`layers`, `nodeCount`); missing keys take the defaults.
    """
    layers = layers_from_config(config)
    reports = {layer.name: LayerMemoryReport(layer) for layer in layers}
    by_namespace = layer_by_namespace(layers)
    unplaced: list[str] = []
    for resource in resources:
        res = view(resource)
        if not (workload_kind(res.resource_type) or spark_kind(res.resource_type)):
            continue
        namespace = namespace_of(res)
        if namespace is UNKNOWN:
            unplaced.append(res.display_name)
            continue
        layer = by_namespace.get(namespace)
        if layer is None:
            continue
        reports[layer.name].consumers.extend(workload_consumers(res, layer.node_count))
    for report in reports.values():
        report.consumers.sort(key=lambda c: (-c.total, c.name))
        report.unplaced = list(unplaced)
    return reports


def render_report(report: LayerMemoryReport, top: int = DEFAULT_TOP_CONSUMERS) -> str:
    layer = report.layer
    budget = report.budget or 0
    if report.over_budget:
        verdict = f"over budget by {format_bytes_as_mib(report.total - budget)}"
    else:
        # Rounded down: 6142Mi of 6144Mi must not read as a full 100%.
        verdict = f"{math.floor(report.total / budget * 1000) / 10:.1f}% of budget" if budget else "no budget"
    lines = [
        f"Layer '{layer.name}' (namespace {layer.namespace}): memory limits total "
        f"{format_bytes_as_mib(report.total)} against a budget of {format_bytes(budget)} — {verdict}."
    ]
    shown = report.consumers[:top] if top > 0 else report.consumers
    rows = [
        [c.name, c.kind, str(c.replicas), format_bytes_as_mib(c.memory_each), format_bytes_as_mib(c.total)]
        for c in shown
    ]
    rest = report.consumers[len(shown) :]
    if rest:
        rows.append([f"({len(rest)} more)", "", "", "", format_bytes_as_mib(sum(c.total for c in rest))])
    rows.append(["layer total", "", "", "", format_bytes_as_mib(report.total)])
    rows.append(["budget", "", "", "", format_bytes_as_mib(budget)])
    lines.append(
        render_table(
            ["NAME", "KIND", "REPLICAS", "MEMORY EACH", "TOTAL"],
            rows,
            [False, False, True, True, True],
        )
    )
    notes = [f"{c.name}: {note}" for c in report.consumers for note in c.notes]
    if report.unplaced:
        notes.append("namespace unknown in preview, not counted: " + ", ".join(report.unplaced))
    lines.extend(f"  note: {note}" for note in notes)
    return "\n".join(lines)


SHARED_SCHEMA: dict[str, dict[str, Any]] = {
    "layers": LAYERS_SCHEMA,
    "nodeCount": NODE_COUNT_SCHEMA,
    "topConsumers": {
        "type": "integer",
        "minimum": 0,
        "default": DEFAULT_TOP_CONSUMERS,
        "description": "Rows shown in the consumer table (0 = all).",
    },
}


def check_memory_budget(resources: Iterable[Any], config: Config) -> list[str]:
    top = int_setting(config, "topConsumers", DEFAULT_TOP_CONSUMERS)
    reports = layer_memory_report(resources, config).values()
    return [render_report(report, top) for report in reports if report.over_budget]


def check_headroom(resources: Iterable[Any], config: Config) -> list[str]:
    top = int_setting(config, "topConsumers", DEFAULT_TOP_CONSUMERS)
    share = float_setting(config, "headroomShare", DEFAULT_HEADROOM_SHARE)
    return [
        f"Less than {1 - share:.0%} headroom left.\n" + render_report(report, top)
        for report in layer_memory_report(resources, config).values()
        # Over budget is memory-budget's (mandatory) finding; this one only warns early.
        if report.budget and share * report.budget < report.total <= report.budget
    ]


memory_budget = rule(
    "memory-budget",
    "The memory limits of everything a layer runs (replicas, DaemonSet pods per node, Job "
    "parallelism, init containers and sidecars, Spark drivers and executors with overhead) "
    "fit the layer's memory budget.",
    check_memory_budget,
    stack=True,
    config=SHARED_SCHEMA,
)

memory_budget_headroom = rule(
    "memory-budget-headroom",
    "Warns when a layer's memory limits use more than headroomShare of its budget.",
    check_headroom,
    stack=True,
    level=EnforcementLevel.ADVISORY,
    config={
        **SHARED_SCHEMA,
        "headroomShare": share_schema(DEFAULT_HEADROOM_SHARE, "Share of the budget above which to warn."),
    },
)
