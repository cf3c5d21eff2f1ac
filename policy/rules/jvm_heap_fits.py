"""jvm-heap-fits: a JVM's maximum heap leaves room below its container's memory limit.

The heap is only part of a JVM's footprint (metaspace, thread stacks, direct buffers, GC),
so a heap close to the limit gets the container OOM-killed under load. Strimzi sizes heaps
at 50-75% of the limit; the default ceiling here is 80%.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._layers import ResourceView, float_setting, share_schema
from ._props import get, get_list, reveal
from ._quantity import QuantityError, format_bytes_as_mib, parse_jvm_size
from ._rule import Config, rule
from ._workloads import containers_of, memory_limit, workload_kind

DEFAULT_MAX_HEAP_SHARE = 0.8

_XMX = re.compile(r"-Xmx(\d+[kKmMgGtT]?)(?![\w.])")
_MAX_HEAP_SIZE = re.compile(r"-XX:MaxHeapSize=(\d+[kKmMgGtT]?)(?![\w.])")
_MAX_RAM_PERCENTAGE = re.compile(r"-XX:MaxRAMPercentage=(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class HeapSetting:
    source: str  # e.g. "env KAFKA_HEAP_OPTS" or "args[2]"
    flag: str  # the flag as written
    bytes: int


def heap_settings(text: str, source: str, limit: int | None) -> list[HeapSetting]:
    """Heap ceilings stated in one string (an env value or a command/args element)."""
    found = []
    for pattern in (_XMX, _MAX_HEAP_SIZE):
        for match in pattern.finditer(text):
            try:
                # The JVM reads a bare number as bytes.
                found.append(HeapSetting(source, match.group(0), parse_jvm_size(match.group(1), "b")))
            except QuantityError:
                continue
    if limit is not None:
        for match in _MAX_RAM_PERCENTAGE.finditer(text):
            found.append(HeapSetting(source, match.group(0), int(limit * float(match.group(1)) / 100)))
    return found


def container_heaps(container: dict[str, Any], limit: int | None) -> list[HeapSetting]:
    """Heap flags in env values (KAFKA_HEAP_OPTS, JAVA_OPTS, JAVA_TOOL_OPTIONS, any *_OPTS ...),
    command and args. Every literal env value is scanned, so unusual names are caught too;
    values from Secrets/ConfigMaps (valueFrom) and unknowns cannot be read and are skipped."""
    found: list[HeapSetting] = []
    for entry in get_list(container, "env"):
        name = get(entry, "name")
        value = reveal(get(entry, "value"))
        if isinstance(name, str) and isinstance(value, str):
            found.extend(heap_settings(value, f"env {name}", limit))
    for field in ("command", "args"):
        for index, item in enumerate(get_list(container, field)):
            item = reveal(item)
            if isinstance(item, str):
                found.extend(heap_settings(item, f"{field}[{index}]", limit))
    return found


def oversized_heaps(resource_type: str, props: dict[str, Any], max_share: float) -> list[str]:
    # SparkApplication drivers/executors are sized from their heap (memory + overhead), so a
    # Spark heap always fits by construction; only ordinary workloads are checked.
    if not workload_kind(resource_type):
        return []
    problems = []
    for ref in containers_of(resource_type, props):
        limit = memory_limit(ref.container)
        if not isinstance(limit, int):
            continue  # memory-bounded reports missing limits; unknown ones can't be judged
        ceiling = max_share * limit
        heaps = container_heaps(ref.container, limit)
        if not heaps:
            continue
        # Several sources may set it; the largest is the one that can hurt.
        heap = max(heaps, key=lambda h: h.bytes)
        if heap.bytes > ceiling:
            problems.append(
                f"container '{ref.name}': heap {heap.flag} ({format_bytes_as_mib(heap.bytes)}, from "
                f"{heap.source}) is {heap.bytes / limit:.0%} of its {format_bytes_as_mib(limit)} memory "
                f"limit; keep it at or below {max_share:.0%} ({format_bytes_as_mib(int(ceiling))})"
            )
    return problems


def check(res: ResourceView, config: Config) -> list[str]:
    share = float_setting(config, "maxHeapShare", DEFAULT_MAX_HEAP_SHARE)
    return oversized_heaps(res.resource_type, res.props, share)


jvm_heap_fits = rule(
    "jvm-heap-fits",
    "A JVM heap set through -Xmx (env *_OPTS, JAVA_TOOL_OPTIONS, command, args) stays "
    "below maxHeapShare of the container's memory limit.",
    check,
    config={
        "maxHeapShare": share_schema(
            DEFAULT_MAX_HEAP_SHARE, "Largest allowed heap as a share of the container memory limit."
        )
    },
)
