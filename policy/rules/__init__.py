"""The DataPipe guardrail policies, one module per rule; `_`-prefixed modules are shared helpers."""

from __future__ import annotations

from pulumi_policy import Policy

from .jvm_heap_fits import jvm_heap_fits
from .kafka_tls_everywhere import kafka_tls_everywhere
from .memory_bounded import memory_bounded
from .memory_budget import memory_budget, memory_budget_headroom
from .no_plaintext_secrets import no_plaintext_secrets
from .open_to_the_internet import open_to_the_internet
from .pinned_images import pinned_images
from .quota_matches_budget import quota_matches_budget
from .s3_hardened import s3_hardened
from .storage_budget import storage_budget


def all_policies() -> list[Policy]:
    return [
        memory_budget,
        memory_budget_headroom,
        memory_bounded,
        jvm_heap_fits,
        quota_matches_budget,
        storage_budget,
        no_plaintext_secrets,
        kafka_tls_everywhere,
        pinned_images,
        s3_hardened,
        open_to_the_internet,
    ]
