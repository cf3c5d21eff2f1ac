"""The two S3 buckets on AWS and the least-privilege keys of their users.

raw archive  <- the S3 sink writes Parquet under its prefix (only there);
lakehouse    <- Spark/Iceberg read the archive and read/write the lake.

Every bucket is private (all four public-access flags), encrypted by default, versioned where
its data must survive, and has lifecycle rules. In pulumi-aws v7 each of these is its own
resource pointing at the bucket. Policies and rules are plain functions over plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from components.cloud.access import LakeStorage, S3Client, S3Endpoint
from components.cloud.config import AwsConfig, BucketConfig, LifecycleConfig

OBJECT_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def default_tags(stack: str, extra: dict[str, str]) -> dict[str, str]:
    return {"project": "datapipe", "stack": stack, "managed-by": "pulumi", **extra}


def aws_provider(config: AwsConfig, stack: str) -> aws.Provider:
    # Explicit, so nothing falls back to ambient `aws:` stack config, and default tags reach
    # resources this program does not tag itself.
    return aws.Provider("cloud-aws", region=config.region,
                        default_tags={"tags": default_tags(stack, config.tags)})


def encryption_rules() -> list[dict[str, Any]]:
    # SSE-S3: every object encrypted at rest with no key to manage or grant to Snowflake/Spark.
    return [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]


def public_access_block() -> dict[str, bool]:
    return {"block_public_acls": True, "block_public_policy": True, "ignore_public_acls": True,
            "restrict_public_buckets": True}


def lifecycle_rules(lifecycle: LifecycleConfig) -> list[dict[str, Any]]:
    """Rules for the whole bucket (empty filter). Always at least the multipart-upload cleanup."""
    rules: list[dict[str, Any]] = []
    transitions = []
    if lifecycle.infrequent_access_after_days is not None:
        transitions.append({"days": lifecycle.infrequent_access_after_days, "storage_class": "STANDARD_IA"})
    if lifecycle.archive_after_days is not None:
        transitions.append({"days": lifecycle.archive_after_days, "storage_class": lifecycle.archive_storage_class})
    if transitions or lifecycle.expire_after_days is not None:
        rule: dict[str, Any] = {"id": "age-out", "status": "Enabled", "filter": {}}
        if transitions:
            rule["transitions"] = transitions
        if lifecycle.expire_after_days is not None:
            rule["expiration"] = {"days": lifecycle.expire_after_days}
        rules.append(rule)
    if lifecycle.noncurrent_version_expire_after_days is not None:
        rules.append({"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {},
                      "noncurrent_version_expiration": {
                          "noncurrent_days": lifecycle.noncurrent_version_expire_after_days}})
    rules.append({"id": "abort-incomplete-multipart-uploads", "status": "Enabled", "filter": {},
                  "abort_incomplete_multipart_upload": {
                      "days_after_initiation": lifecycle.abort_incomplete_multipart_upload_after_days}})
    return rules


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def sink_policy(raw_bucket_arn: str, prefix: str) -> dict[str, Any]:
    """The S3 sink writes Parquet files under `prefix/` of the raw bucket and nothing else; it
    reads nothing back, lists only multipart uploads (to resume/abort its own)."""
    return {"Version": "2012-10-17", "Statement": [
        _statement("WriteArchivePrefix", OBJECT_WRITE + ["s3:GetObject"], [f"{raw_bucket_arn}/{prefix}/*"]),
        _statement("BucketForMultipartUploads", ["s3:ListBucketMultipartUploads", "s3:GetBucketLocation"],
                   [raw_bucket_arn]),
    ]}


def spark_policy(raw_bucket_arn: str, lake_bucket_arn: str) -> dict[str, Any]:
    """Spark reads the archive and owns the lakehouse (s3a needs list/delete for its commits)."""
    return {"Version": "2012-10-17", "Statement": [
        _statement("ReadArchive", ["s3:GetObject"], [f"{raw_bucket_arn}/*"]),
        _statement("ListArchive", ["s3:ListBucket", "s3:GetBucketLocation"], [raw_bucket_arn]),
        _statement("ReadWriteLake", ["s3:GetObject", "s3:DeleteObject"] + OBJECT_WRITE, [f"{lake_bucket_arn}/*"]),
        _statement("ListLake", ["s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"],
                   [lake_bucket_arn]),
    ]}


@dataclass
class HardenedBucketArgs:
    role: str  # "raw" or "lake": part of the generated name and a tag
    config: BucketConfig
    stack: str
    tags: dict[str, str]


class HardenedBucket(pulumi.ComponentResource):
    """A private, encrypted bucket with lifecycle rules (and versioning when configured)."""

    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: HardenedBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:cloud:HardenedBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming = ({"bucket": args.config.name} if args.config.name
                  else {"bucket_prefix": f"datapipe-{args.stack}-{args.role}-"[:37]})
        bucket = aws.s3.Bucket(f"{name}-bucket", tags={**args.tags, "datapipe-role": args.role}, **naming,
                               opts=child)
        aws.s3.BucketPublicAccessBlock(f"{name}-public-access-block", bucket=bucket.id, **public_access_block(),
                                       opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-encryption", bucket=bucket.id,
                                                       rules=encryption_rules(), opts=child)
        depends: list[pulumi.Resource] = []
        if args.config.versioning:
            depends.append(aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                                   versioning_configuration={"status": "Enabled"}, opts=child))
        # After versioning: AWS applies noncurrent-version rules only to a bucket that versions.
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=bucket.id,
                                            rules=lifecycle_rules(args.config.lifecycle),
                                            opts=pulumi.ResourceOptions(parent=self, depends_on=depends))
        self.bucket = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"bucket": self.bucket, "arn": self.arn})


@dataclass
class S3LakeArgs:
    config: AwsConfig
    stack: str
    sink_prefix: str


class S3Lake(pulumi.ComponentResource):
    """The raw and lake buckets and one IAM user (with its access key) per client."""

    storage: LakeStorage

    def __init__(self, name: str, args: S3LakeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:cloud:S3Lake", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        tags = default_tags(args.stack, cfg.tags)
        self.raw = HardenedBucket(f"{name}-raw", HardenedBucketArgs("raw", cfg.raw_bucket, args.stack, tags), child)
        self.lake = HardenedBucket(f"{name}-lake", HardenedBucketArgs("lake", cfg.lake_bucket, args.stack, tags),
                                   child)

        def client(role: str, policy: pulumi.Output[str]) -> S3Client:
            user = aws.iam.User(f"{name}-{role}-user", name=f"datapipe-{args.stack}-{role}", path="/datapipe/",
                                tags=tags, opts=child)
            aws.iam.UserPolicy(f"{name}-{role}-policy", user=user.name, policy=policy, opts=child)
            key = aws.iam.AccessKey(f"{name}-{role}-key", user=user.name, opts=child)
            return S3Client(S3Endpoint(cfg.region), pulumi.Output.secret(key.id), pulumi.Output.secret(key.secret))

        prefix = args.sink_prefix
        sink = client("s3-sink", self.raw.arn.apply(lambda arn: json.dumps(sink_policy(arn, prefix))))
        spark = client("spark", pulumi.Output.all(self.raw.arn, self.lake.arn).apply(
            lambda arns: json.dumps(spark_policy(arns[0], arns[1]))))
        self.storage = LakeStorage(raw_bucket=self.raw.bucket, lake_bucket=self.lake.bucket, sink=sink, spark=spark)
        self.register_outputs({"raw_bucket": self.raw.bucket, "lake_bucket": self.lake.bucket})
