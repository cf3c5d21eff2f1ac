"""s3-hardened: every S3 bucket has a public access block, default encryption and lifecycle.

In pulumi-aws v7 these are separate resources pointing at the bucket through their
`bucket` property, so only a stack policy can tell that one is missing. During preview
`bucket` is often `bucket.id`, which is unknown for a new bucket; the companion is then
matched through the engine's dependency edges (property dependency on `bucket`, plain
dependencies, parent). A companion that cannot be matched at all suspends the "missing"
verdict for its kind rather than accuse every bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._layers import ResourceView, strings_schema, strings_setting, view
from ._props import get, get_list, is_unknown
from ._rule import Config, rule

BUCKET_TYPES = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
PUBLIC_ACCESS_BLOCK = "public access block"
ENCRYPTION = "server-side encryption configuration"
LIFECYCLE = "lifecycle configuration"
COMPANION_TYPES: dict[str, str] = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": PUBLIC_ACCESS_BLOCK,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ENCRYPTION,
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": ENCRYPTION,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": LIFECYCLE,
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": LIFECYCLE,
}
DEFAULT_SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"]
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@dataclass
class BucketState:
    res: ResourceView
    companions: dict[str, list[ResourceView]] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {v for v in (get(self.res.props, "bucket"), get(self.res.props, "id")) if isinstance(v, str)}


class _Elsewhere:
    """A companion whose known `bucket` names no bucket of this stack."""


ELSEWHERE = _Elsewhere()


def _target(companion: ResourceView, buckets: dict[str, BucketState]) -> BucketState | _Elsewhere | None:
    """The bucket a companion configures; None when preview can't tell."""
    name = get(companion.props, "bucket")
    if isinstance(name, str):
        for state in buckets.values():
            if name in state.names:
                return state
        return ELSEWHERE
    source = companion.source
    property_deps = getattr(source, "property_dependencies", None) or {}
    edges = [
        list(property_deps.get("bucket") or []) if isinstance(property_deps, Mapping) else [],
        list(getattr(source, "dependencies", None) or []),
        [getattr(source, "parent", None)],
    ]
    for candidates in edges:
        urns = {getattr(c, "urn", None) for c in candidates if getattr(c, "resource_type", None) in BUCKET_TYPES}
        matched = [buckets[u] for u in urns if u in buckets]
        if len(matched) == 1:
            return matched[0]
    return None


def _companion_problem(kind: str, res: ResourceView, sse_algorithms: list[str]) -> str | None:
    props = res.props
    if kind == PUBLIC_ACCESS_BLOCK:
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not (get(props, flag) is True or is_unknown(get(props, flag)))]
        return f"public access block {res.name} leaves {', '.join(off)} off" if off else None
    rules = get(props, "rules")
    if is_unknown(rules):
        return None
    rules = get_list(props, "rules")
    if kind == ENCRYPTION:
        algorithms = [get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in rules]
        if any(is_unknown(a) for a in algorithms):
            return None
        named = [a for a in algorithms if isinstance(a, str)]
        if not named:
            return f"encryption configuration {res.name} sets no sseAlgorithm"
        if not any(a in sse_algorithms for a in named):
            return f"encryption configuration {res.name} uses {', '.join(named)}, not one of {', '.join(sse_algorithms)}"
    if kind == LIFECYCLE:
        statuses = [get(rule, "status") for rule in rules]
        if not any(s == "Enabled" or is_unknown(s) for s in statuses):
            return f"lifecycle configuration {res.name} has no enabled rule"
    return None


@dataclass(frozen=True)
class BucketFinding:
    message: str
    urn: str


def bucket_findings(resources: Iterable[Any], sse_algorithms: list[str] | None = None) -> list[BucketFinding]:
    allowed = DEFAULT_SSE_ALGORITHMS if sse_algorithms is None else sse_algorithms
    views = [view(r) for r in resources]
    buckets = {v.urn: BucketState(v) for v in views if v.resource_type in BUCKET_TYPES}
    unmatched: set[str] = set()
    for res in views:
        kind = COMPANION_TYPES.get(res.resource_type)
        if kind is None:
            continue
        state = _target(res, buckets)
        if state is None:
            unmatched.add(kind)
        elif isinstance(state, BucketState):
            state.companions.setdefault(kind, []).append(res)

    findings = []
    for state in buckets.values():
        label = next(iter(sorted(state.names)), state.res.name)
        for kind in (PUBLIC_ACCESS_BLOCK, ENCRYPTION, LIFECYCLE):
            companions = state.companions.get(kind, [])
            if not companions:
                if kind not in unmatched:
                    findings.append(BucketFinding(f"S3 bucket {label} has no {kind}.", state.res.urn))
                continue
            problems = [p for p in (_companion_problem(kind, c, allowed) for c in companions) if p]
            # Several companions of a kind fight over one setting; all must be sound.
            findings.extend(BucketFinding(f"S3 bucket {label}: {p}.", state.res.urn) for p in problems)
    return findings


def check(resources: Iterable[Any], config: Config) -> list[BucketFinding]:
    return bucket_findings(resources, strings_setting(config, "sseAlgorithms", DEFAULT_SSE_ALGORITHMS))


s3_hardened = rule(
    "s3-hardened",
    "Every S3 bucket has a BucketPublicAccessBlock with all four flags on, a "
    "BucketServerSideEncryptionConfiguration and a BucketLifecycleConfiguration.",
    check,
    stack=True,
    config={"sseAlgorithms": strings_schema(DEFAULT_SSE_ALGORITHMS, "Accepted default encryption algorithms.")},
)
