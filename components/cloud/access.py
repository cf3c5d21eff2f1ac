"""The contract between the buckets and their users: where a client finds S3 and with which key.

AWS S3 (components/cloud/s3.py) and the in-cluster store (components/cloud/object_store.py) both
produce a `LakeStorage`; the ingestion layer's S3 sink and the batch layer's Spark consume it, so
neither layer knows which one is behind it. Keys stay secret Outputs end to end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

import pulumi


@dataclass(frozen=True)
class S3Endpoint:
    region: str
    # None means AWS S3 itself; otherwise an S3-compatible endpoint, addressed path-style.
    url: Optional[str] = None

    @property
    def port(self) -> int:
        """The TCP port a NetworkPolicy must open to reach this endpoint."""
        if self.url is None:
            return 443
        parsed = urlparse(self.url)
        return parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass(frozen=True)
class S3Client:
    """One workload's access: its endpoint (as seen from its cluster) and its own key pair."""

    endpoint: S3Endpoint
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]


@dataclass(frozen=True)
class LakeStorage:
    """The raw archive the S3 sink writes and the lakehouse Spark/Iceberg use."""

    raw_bucket: pulumi.Input[str]
    lake_bucket: pulumi.Input[str]
    # May only write the sink's prefix of the raw bucket.
    sink: S3Client
    # Reads the raw bucket, reads and writes the lake bucket.
    spark: S3Client
