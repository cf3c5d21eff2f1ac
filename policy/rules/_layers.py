"""Layers (ingestion, batch) as the policies see them: config, namespaces, resource views.

A layer is identified by its Kubernetes namespace. Each policy receives its own config
(CrossGuard config is per policy), so every policy that needs layers declares the same
`layers` property with the same defaults, built here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._props import UNKNOWN, Unknown, as_int, get, get_str, plain
from ._quantity import QuantityError, parse_k8s_quantity

DEFAULT_NODE_COUNT = 3

DEFAULT_LAYERS: dict[str, dict[str, str]] = {
    "ingestion": {"namespace": "data-ingestion", "memoryBudget": "6Gi", "storageBudget": "15Gi"},
    "batch": {"namespace": "batch-analytics", "memoryBudget": "18Gi", "storageBudget": "17Gi"},
}

_QUANTITY_SCHEMA: dict[str, Any] = {
    "type": ["string", "number"],
    "description": "A Kubernetes quantity, e.g. 6Gi or 6144Mi.",
}

LAYERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Layer name -> {namespace, memoryBudget, storageBudget, nodeCount}. Replaces the "
        "default layers as a whole; a field left out falls back to the default layer of the "
        "same name."
    ),
    "default": DEFAULT_LAYERS,
    "additionalProperties": {
        "type": "object",
        "properties": {
            "namespace": {"type": "string"},
            "memoryBudget": _QUANTITY_SCHEMA,
            "storageBudget": _QUANTITY_SCHEMA,
            "nodeCount": {"type": "integer", "minimum": 0},
        },
        "additionalProperties": False,
    },
}

NODE_COUNT_SCHEMA: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "default": DEFAULT_NODE_COUNT,
    "description": "Nodes per cluster: a DaemonSet runs one pod on each.",
}


class ConfigError(ValueError):
    """Policy config that cannot be applied; reported as a violation rather than a crash."""


@dataclass(frozen=True)
class Layer:
    name: str
    namespace: str
    memory_budget: int | None
    storage_budget: int | None
    node_count: int


def layers_from_config(config: Mapping[str, Any] | None) -> list[Layer]:
    config = plain(config or {})
    raw_layers = config.get("layers")
    if raw_layers is None:
        raw_layers = DEFAULT_LAYERS
    if not isinstance(raw_layers, Mapping):
        raise ConfigError(f"layers must be an object, got {raw_layers!r}")
    default_nodes = _count(config.get("nodeCount"), DEFAULT_NODE_COUNT, "nodeCount")
    layers = []
    for name, raw in raw_layers.items():
        if not isinstance(raw, Mapping):
            raise ConfigError(f"layers.{name} must be an object, got {raw!r}")
        fallback = DEFAULT_LAYERS.get(name, {})
        namespace = raw.get("namespace", fallback.get("namespace", name))
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError(f"layers.{name}.namespace must be a non-empty string")
        layers.append(
            Layer(
                name=name,
                namespace=namespace,
                memory_budget=_budget(raw, fallback, "memoryBudget", name),
                storage_budget=_budget(raw, fallback, "storageBudget", name),
                node_count=_count(raw.get("nodeCount"), default_nodes, f"layers.{name}.nodeCount"),
            )
        )
    return layers


def _budget(raw: Mapping, fallback: Mapping, key: str, layer: str) -> int | None:
    value = raw.get(key, fallback.get(key))
    if value is None:
        return None
    try:
        return parse_k8s_quantity(value)
    except QuantityError as exc:
        raise ConfigError(f"layers.{layer}.{key}: {exc}") from exc


def _count(value: Any, default: int, where: str) -> int:
    if value is None:
        return default
    number = as_int(value)
    if not isinstance(number, int) or number < 0:
        raise ConfigError(f"{where} must be a non-negative integer, got {value!r}")
    return number


def float_setting(config: Mapping[str, Any] | None, key: str, default: float) -> float:
    value = (config or {}).get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{key} must be a number in (0, 1], got {value!r}")
    return float(value)


def int_setting(config: Mapping[str, Any] | None, key: str, default: int) -> int:
    return _count((config or {}).get(key), default, key)


def bool_setting(config: Mapping[str, Any] | None, key: str, default: bool) -> bool:
    value = (config or {}).get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def strings_setting(config: Mapping[str, Any] | None, key: str, default: list[str]) -> list[str]:
    value = plain((config or {}).get(key, default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of strings, got {value!r}")
    return value


# Schemas of the settings above, one per kind, so every rule describes a share, a flag or a
# list of names the same way its reader checks it.


def share_schema(default: float, description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "maximum": 1, "default": default, "description": description}


def flag_schema(description: str) -> dict[str, Any]:
    return {"type": "boolean", "default": False, "description": description}


def strings_schema(default: list[str], description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


@dataclass
class ResourceView:
    """One resource with plain props, keeping the original for its dependencies/provider."""

    resource_type: str
    name: str
    urn: str
    props: dict[str, Any]
    source: Any = field(repr=False, default=None)

    @property
    def display_name(self) -> str:
        name = get_str(self.props, "metadata", "name")
        return name if isinstance(name, str) and name else self.name


def view(resource: Any) -> ResourceView:
    """Accepts anything shaped like pulumi_policy.PolicyResource / ResourceValidationArgs."""
    props = plain(getattr(resource, "props", None) or {})
    return ResourceView(
        resource_type=str(getattr(resource, "resource_type", "") or ""),
        name=str(getattr(resource, "name", "") or ""),
        urn=str(getattr(resource, "urn", "") or ""),
        props=props if isinstance(props, dict) else {},
        source=resource,
    )


NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"


def namespace_of(res: ResourceView) -> str | Unknown:
    """The namespace a Kubernetes object lands in, or UNKNOWN if preview can't tell yet."""
    namespace = get(res.props, "metadata", "namespace")
    if isinstance(namespace, str) and namespace:
        return namespace
    if namespace is UNKNOWN:
        # `namespace=ns.metadata.name` is unknown in preview only while the Namespace's own
        # name is; the Namespace object usually knows its name already, so follow the edge.
        names = {n for n in _dependency_namespace_names(res.source) if n}
        return names.pop() if len(names) == 1 else UNKNOWN
    provider = getattr(res.source, "provider", None)
    if provider is not None:
        provider_ns = get(plain(getattr(provider, "props", None) or {}), "namespace")
        if isinstance(provider_ns, str) and provider_ns:
            return provider_ns
    return "default"


def _dependency_namespace_names(source: Any) -> Iterable[str]:
    if source is None:
        return []
    candidates: list[Any] = []
    property_deps = getattr(source, "property_dependencies", None) or {}
    if isinstance(property_deps, Mapping):
        candidates.extend(property_deps.get("metadata") or [])
    candidates.extend(getattr(source, "dependencies", None) or [])
    names = []
    for dep in candidates:
        if getattr(dep, "resource_type", None) == NAMESPACE_TYPE:
            name = get(plain(getattr(dep, "props", None) or {}), "metadata", "name")
            if isinstance(name, str):
                names.append(name)
    return names


def layer_by_namespace(layers: Iterable[Layer]) -> dict[str, Layer]:
    return {layer.namespace: layer for layer in layers}
