"""storage-budget: the volumes a layer claims fit its storage allocation.

Kind's local-path provisioner (and most small clusters) carve PVCs out of one node disk;
claims beyond the allocation leave StatefulSets Pending. Counts standalone
PersistentVolumeClaims and every StatefulSet replica's volumeClaimTemplates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._layers import LAYERS_SCHEMA, Layer, layer_by_namespace, layers_from_config, namespace_of, view
from ._props import UNKNOWN, as_int, get, get_list
from ._quantity import format_bytes
from ._rule import Config, rule
from ._table import render_table
from ._workloads import quantity, workload_kind

PVC_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"


@dataclass(frozen=True)
class Claim:
    name: str
    kind: str
    copies: int
    size_each: int
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.copies * self.size_each


@dataclass
class LayerStorageReport:
    layer: Layer
    claims: list[Claim] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.claims)

    @property
    def over_budget(self) -> bool:
        budget = self.layer.storage_budget
        return budget is not None and self.total > budget


def _size(pvc_spec: Any) -> tuple[int, tuple[str, ...]]:
    raw = get(pvc_spec, "resources", "requests", "storage")
    value = quantity(raw)
    if value is UNKNOWN:
        return 0, ("storage request unknown in preview",)
    if value is None:
        return 0, ("no storage request" if raw is None else f"unparseable storage request {raw!r}",)
    return value, ()


def claims_of(resource_type: str, props: dict[str, Any], display_name: str) -> list[Claim]:
    if resource_type == PVC_TYPE:
        size, notes = _size(get(props, "spec"))
        return [Claim(display_name, "PersistentVolumeClaim", 1, size, notes)]
    if workload_kind(resource_type) == "StatefulSet":
        replicas = as_int(get(props, "spec", "replicas"))
        copies = replicas if isinstance(replicas, int) and replicas >= 0 else 1
        claims = []
        for template in get_list(props, "spec", "volumeClaimTemplates"):
            template_name = get(template, "metadata", "name")
            size, notes = _size(get(template, "spec"))
            claims.append(
                Claim(
                    f"{display_name}/{template_name if isinstance(template_name, str) else '?'}",
                    "StatefulSet",
                    copies,
                    size,
                    notes + (("replicas unknown, counted as 1",) if replicas is UNKNOWN else ()),
                )
            )
        return claims
    return []


def layer_storage_report(
    resources: Iterable[Any], config: Mapping[str, Any] | None = None
) -> dict[str, LayerStorageReport]:
    layers = layers_from_config(config)
    reports = {layer.name: LayerStorageReport(layer) for layer in layers}
    by_namespace = layer_by_namespace(layers)
    for resource in resources:
        res = view(resource)
        claims = claims_of(res.resource_type, res.props, res.display_name)
        if not claims:
            continue
        namespace = namespace_of(res)
        layer = by_namespace.get(namespace) if isinstance(namespace, str) else None
        if layer is not None:
            reports[layer.name].claims.extend(claims)
    for report in reports.values():
        report.claims.sort(key=lambda c: (-c.total, c.name))
    return reports


def render_storage(report: LayerStorageReport) -> str:
    layer = report.layer
    budget = layer.storage_budget or 0
    rows = [[c.name, c.kind, str(c.copies), format_bytes(c.size_each), format_bytes(c.total)] for c in report.claims]
    rows.append(["layer total", "", "", "", format_bytes(report.total)])
    rows.append(["allocation", "", "", "", format_bytes(budget)])
    lines = [
        f"Layer '{layer.name}' (namespace {layer.namespace}): volume claims total "
        f"{format_bytes(report.total)}, over the {format_bytes(budget)} storage allocation by "
        f"{format_bytes(report.total - budget)}.",
        render_table(["CLAIM", "KIND", "COPIES", "SIZE EACH", "TOTAL"], rows, [False, False, True, True, True]),
    ]
    lines.extend(f"  note: {c.name}: {note}" for c in report.claims for note in c.notes)
    return "\n".join(lines)


def check(resources: Iterable[Any], config: Config) -> list[str]:
    reports = layer_storage_report(resources, config).values()
    return [render_storage(report) for report in reports if report.over_budget]


storage_budget = rule(
    "storage-budget",
    "PersistentVolumeClaims and StatefulSet volumeClaimTemplates x replicas of a layer "
    "fit its storage allocation.",
    check,
    stack=True,
    config={"layers": LAYERS_SCHEMA},
)
