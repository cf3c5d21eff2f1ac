"""Configuration of the cloud side: S3 on AWS, the in-cluster S3-compatible store that replaces it
on a laptop, and Snowflake. Each part switches on or off per stack; a part that is off registers
no resource and no provider of its package (the local stack's engine has no aws/snowflake plugin).

Defaults: AWS on (its credentials come from the environment), the in-cluster store on exactly
when AWS is off, Snowflake off until a stack names its account."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, field_validator, model_validator

from components.config_types import INT32_MAX, HostName, Image, Mebibytes, NodePort, Strict

BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# Prefixes and suffixes S3 reserves for its own kinds of buckets and access points.
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Unquoted upper-case Snowflake identifiers: the provider quotes names, so the portable form avoids
# objects that can only be addressed with quotes.
IDENTIFIER = r"^[A-Z_][A-Z0-9_$]*$"
AWS_REGION = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"


def _bucket_name(value: str) -> str:
    """S3's bucket naming rules (general purpose buckets), which the in-cluster store follows too."""
    if not re.fullmatch(BUCKET_NAME, value):
        raise ValueError(f"{value!r} is not a bucket name: 3-63 lower-case letters, digits, '.' and '-', starting "
                         "and ending with a letter or digit")
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError(f"{value!r} is not a bucket name: each dot-separated label must start and end with a "
                         "letter or digit (no '..', '.-' or '-.')")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is formatted as an IP address, which S3 does not allow as a bucket name")
    if value.startswith(BUCKET_RESERVED_PREFIXES) or value.endswith(BUCKET_RESERVED_SUFFIXES):
        raise ValueError(f"{value!r} uses a prefix or suffix S3 reserves ({', '.join(BUCKET_RESERVED_PREFIXES)}; "
                         f"{', '.join(BUCKET_RESERVED_SUFFIXES)})")
    return value


def _tag_text(value: str, what: str, low: int, high: int) -> str:
    # AWS tags: letters (any script), digits, spaces and _ . : / = + - @.
    if not low <= len(value) <= high or not re.fullmatch(r"[\w .:/=+@-]*", value):
        raise ValueError(f"{value!r} is not an AWS tag {what}: {low}-{high} letters, digits, spaces and "
                         "'_.:/=+-@'")
    return value


def _tag_key(value: str) -> str:
    _tag_text(value, "key", 1, 128)
    if value.lower().startswith("aws:"):
        raise ValueError(f"{value!r} starts with aws:, which AWS reserves for its own tags")
    return value


def _tag_value(value: str) -> str:
    return _tag_text(value, "value", 0, 256)


BucketName = Annotated[str, AfterValidator(_bucket_name)]
TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]
# A Snowflake object this program creates: an unquoted upper-case identifier, at most 255 characters.
SnowflakeName = Annotated[str, Field(pattern=IDENTIFIER, max_length=255)]
# An existing Snowflake object Pulumi's session names (any case: unquoted, Snowflake folds it).
SnowflakeSessionName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$", max_length=255)]


class LifecycleConfig(Strict):
    """A bucket's lifecycle rules. Days count from object creation; None leaves a step out.

    S3's own constraints are checked here rather than at `pulumi up`: STANDARD_IA needs objects
    at least 30 days old, an object must stay 30 days in IA before it may move on, and expiry must
    come after the last transition."""

    infrequent_access_after_days: Optional[int] = Field(
        None, ge=30, le=INT32_MAX,
        description="Days after creation objects move to STANDARD_IA (at least 30). Unset: they stay "
                    "in STANDARD")
    archive_after_days: Optional[int] = Field(
        None, ge=1, le=INT32_MAX,
        description="Days after creation objects move to archiveStorageClass (at least "
                    "infrequentAccessAfterDays + 30). Unset: no archive step")
    archive_storage_class: Literal["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] = Field(
        "GLACIER", description="Storage class of the archive step")
    expire_after_days: Optional[int] = Field(
        None, ge=1, le=INT32_MAX,
        description="Days after creation objects are deleted (after the last transition). Unset: kept "
                    "until deleted")
    # Versioned buckets keep overwritten/deleted objects as noncurrent versions until this expiry.
    noncurrent_version_expire_after_days: Optional[int] = Field(
        None, ge=1, le=INT32_MAX,
        description="Days an overwritten or deleted object's old version is kept (versioned buckets). "
                    "Unset: kept until deleted")
    # Parts of an upload that never completed are billed until aborted (a crashed sink leaves them).
    abort_incomplete_multipart_upload_after_days: int = Field(
        7, ge=1, le=INT32_MAX,
        description="Days after which the parts of an upload that never completed are deleted (they "
                    "are billed until then)")

    @model_validator(mode="after")
    def _ordered(self):
        ia, archive, expire = self.infrequent_access_after_days, self.archive_after_days, self.expire_after_days
        if ia is not None and archive is not None and archive < ia + 30:
            raise ValueError(f"archiveAfterDays ({archive}) must be at least infrequentAccessAfterDays + 30 "
                             f"({ia + 30}): S3 keeps objects 30 days in STANDARD_IA before a further transition")
        last = max((d for d in (ia, archive) if d is not None), default=None)
        if expire is not None and last is not None and expire <= last:
            raise ValueError(f"expireAfterDays ({expire}) must come after the last transition (day {last})")
        return self


class BucketConfig(Strict):
    # Unset: Pulumi names the bucket `datapipe-<stack>-<role>-<random>` (bucket names are global).
    name: Optional[BucketName] = Field(None, description="Bucket name (globally unique; S3's naming rules). Unset: "
                                                         "Pulumi names it `datapipe-<stack>-<role>-<random>`")
    versioning: bool = Field(False, description="Keep overwritten and deleted objects as noncurrent versions")
    lifecycle: LifecycleConfig = Field(LifecycleConfig(), description="Lifecycle rules of the bucket")


def _raw_bucket() -> BucketConfig:
    # The archive is the system of record (the lake can be rebuilt from it): versioned, cooled down
    # to IA after a month and to Glacier after a quarter, kept until someone sets an expiry.
    return BucketConfig(versioning=True, lifecycle=LifecycleConfig(
        infrequent_access_after_days=30, archive_after_days=90, noncurrent_version_expire_after_days=90))


def _lake_bucket() -> BucketConfig:
    # Iceberg rewrites and expires its own files; versioning would only keep what Iceberg deleted.
    # Table files are read at random, so no IA/Glacier transitions by default either.
    return BucketConfig(versioning=False, lifecycle=LifecycleConfig(noncurrent_version_expire_after_days=7))


class AwsConfig(Strict):
    enabled: bool = Field(True, description="Create the buckets on AWS S3 (credentials from the environment); "
                                            "exactly one of this and objectStore.enabled")
    region: str = Field("us-east-1", pattern=AWS_REGION, description="AWS region of the buckets")
    raw_bucket: BucketConfig = Field(default_factory=_raw_bucket,
                                     description="The raw bucket: the CDC archive the S3 sink writes, the "
                                                 "system of record")
    lake_bucket: BucketConfig = Field(default_factory=_lake_bucket,
                                      description="The lake bucket: the Iceberg warehouse Spark writes")
    # Added to the default tags (project, stack, managed-by) of every taggable AWS resource.
    tags: dict[TagKey, TagValue] = Field({}, description="Tags added to the default tags (project, stack, "
                                                         "managed-by) of every taggable AWS resource (AWS's tag "
                                                         "rules: keys 1-128, values 0-256 characters)")


class ObjectStoreConfig(Strict):
    """An S3-compatible store (SeaweedFS) in the batch cluster, for stacks without an AWS account.

    SeaweedFS rather than MinIO: MinIO stopped publishing community images in 2025, while
    SeaweedFS publishes a tagged image per release and tests its S3 API against Spark."""

    # None: on exactly when cloud.aws is off (one of them must hold the buckets).
    enabled: Optional[bool] = Field(None, description="Run the in-cluster store in the batch cluster. Unset: on "
                                                      "exactly when cloud.aws.enabled is false")
    image: Image = Field("chrislusf/seaweedfs:4.47", description="SeaweedFS image, pinned to a tag or digest")
    memory_mib: Mebibytes = Field(512, alias="memory", description="Container memory request and limit, a size "
                                                                   "(counts against batch.memoryBudget)")
    storage_mib: Mebibytes = Field(10240, alias="storage", description="Size of the data volume claim (counts "
                                                                       "against batch.storageBudget)")
    node_port: NodePort = Field(30045, description="NodePort on the batch cluster the ingestion cluster's S3 "
                                                   "sink reaches the store through")
    raw_bucket: BucketName = Field("datapipe-raw", description="Name of the raw bucket (the CDC archive; S3's "
                                                               "naming rules)")
    lake_bucket: BucketName = Field("datapipe-lake", description="Name of the lake bucket (the Iceberg warehouse; "
                                                                 "S3's naming rules); not the raw bucket")
    # The S3 region clients sign requests for; SeaweedFS accepts any.
    region: str = Field("us-east-1", pattern=AWS_REGION, description="S3 region clients sign requests for; "
                                                                     "SeaweedFS accepts any")
    # How the ingestion cluster reaches the store: <ingestionHost>:<nodePort> on the batch cluster.
    # Kind runs both clusters' nodes as containers on the `kind` Docker network, where a node's
    # container name resolves to its address; `batch-analytics-control-plane` is the batch
    # cluster's control-plane node (kind/batch-cluster.yaml). Elsewhere, set any batch node's
    # address reachable from the ingestion cluster's pods, e.g. the output of
    #   docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' batch-analytics-control-plane
    ingestion_host: HostName = Field("batch-analytics-control-plane",
                                     description="Address (a host name or IPv4 address) of a batch cluster node "
                                                 "reachable from the ingestion cluster's pods; the sink connects "
                                                 "to `<ingestionHost>:<nodePort>`. The default is "
                                            "the Kind batch cluster's control-plane container on the kind Docker "
                                            "network")

    @property
    def ingestion_endpoint(self) -> str:
        return f"http://{self.ingestion_host}:{self.node_port}"


class SnowflakeConnection(Strict):
    """How Pulumi itself logs in (key-pair JWT); the private key is the secret datapipe:snowflakePrivateKey."""

    organization_name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_]+$", max_length=255,
                                             description="Snowflake organization name. Unset: required when "
                                                         "Snowflake is enabled")
    account_name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_]+$", max_length=255,
                                        description="Snowflake account name. Unset: required when Snowflake is "
                                                    "enabled")
    user: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_$][A-Za-z0-9_.@$-]*$", max_length=255,
                                description="User (login name) Pulumi logs in as (key-pair): letters, digits and "
                                            "'_.@$-'. Unset: required when Snowflake is enabled")
    # Creating a storage integration needs ACCOUNTADMIN (or a role granted CREATE INTEGRATION).
    role: SnowflakeSessionName = Field("ACCOUNTADMIN", description="Role Pulumi uses (an unquoted identifier); "
                                                                   "creating the storage integration needs "
                                                                   "ACCOUNTADMIN or a role granted CREATE "
                                                                   "INTEGRATION")
    # The session's warehouse; DDL needs none, so any existing warehouse will do.
    warehouse: Optional[SnowflakeSessionName] = Field(None, description="Warehouse of Pulumi's session (an "
                                                                        "unquoted identifier); DDL needs none. "
                                                                        "Unset: the user's default")


class SnowflakeWarehouseConfig(Strict):
    name: SnowflakeName = Field("DATAPIPE_WH", description="Warehouse name (unquoted upper-case identifier)")
    size: Literal["XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE"] = Field("XSMALL", description="Warehouse size")
    # Credits are billed while running; 60 s is Snowflake's smallest useful auto-suspend.
    auto_suspend_seconds: int = Field(60, ge=60, le=INT32_MAX,
                                      description="Idle seconds before the warehouse suspends (credits "
                                                  "are billed while it runs); at least 60")


class SnowflakeRoles(Strict):
    loader: SnowflakeName = Field("DATAPIPE_LOADER",
                        description="Role that loads the stage's files into RAW tables")
    transformer: SnowflakeName = Field("DATAPIPE_TRANSFORMER",
                             description="Role that reads RAW and builds STAGING and MARTS (dbt's role)")
    reporter: SnowflakeName = Field("DATAPIPE_REPORTER", description="Role that reads MARTS")


class DbtUserConfig(Strict):
    """The service user dbt logs in as (role: transformer). Its private key is the secret
    datapipe:snowflakeDbtPrivateKey; Snowflake only stores the public half given here."""

    name: SnowflakeName = Field("DATAPIPE_DBT", description="Name of dbt's service user")
    rsa_public_key: Optional[str] = Field(None, description="Public half of dbt's key pair (PEM or its base64 "
                                                            "body). Unset: required when Snowflake is enabled")

    @field_validator("rsa_public_key")
    @classmethod
    def _key_body(cls, value: Optional[str]) -> Optional[str]:
        # Snowflake wants the base64 body only; accept a PEM file's content as people paste it.
        if value is None:
            return None
        body = "".join(line.strip() for line in value.splitlines() if line.strip() and "-----" not in line)
        if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", body) or len(body) < 200:
            raise ValueError("is not an RSA public key (PEM or its base64 body, e.g. from "
                             "`openssl rsa -in dbt.p8 -pubout`)")
        return body


class SnowflakeConfig(Strict):
    # Off unless a stack names its account: unlike AWS (credentials from the environment, a region
    # default), Snowflake has no sensible default for who to log in as.
    enabled: bool = Field(False, description="Create the Snowflake objects; needs the connection's account, "
                                             "dbtUser.rsaPublicKey and the secret keys")
    connection: SnowflakeConnection = Field(SnowflakeConnection(), description="How Pulumi logs in to Snowflake")
    database: SnowflakeName = Field("DATAPIPE", description="Database holding the RAW, STAGING and MARTS schemas")
    warehouse: SnowflakeWarehouseConfig = Field(SnowflakeWarehouseConfig(), description="The warehouse")
    roles: SnowflakeRoles = Field(SnowflakeRoles(), description="Names of the least-privilege roles")
    dbt_user: DbtUserConfig = Field(DbtUserConfig(), description="dbt's service user")
    # The external stage over the raw bucket's CDC prefix (needs cloud.aws).
    stage: SnowflakeName = Field("RAW_CDC_STAGE", description="External stage over the raw bucket's CDC prefix "
                                                              "(only with cloud.aws)")

    def missing_settings(self) -> list[str]:
        """Keys an enabled Snowflake needs and has no default for (checked with the whole stack,
        so that the defaults here stay constructible)."""
        if not self.enabled:
            return []
        missing = [f"connection.{key}" for key, value in (
            ("organizationName", self.connection.organization_name),
            ("accountName", self.connection.account_name),
            ("user", self.connection.user)) if not value]
        if self.dbt_user.rsa_public_key is None:
            missing.append("dbtUser.rsaPublicKey")
        return missing

    @property
    def account_identifier(self) -> str:
        """`<org>-<account>`, the form clients such as dbt take."""
        return f"{self.connection.organization_name}-{self.connection.account_name}"


class CloudConfig(Strict):
    aws: AwsConfig = Field(AwsConfig(), description="S3 buckets on AWS")
    object_store: ObjectStoreConfig = Field(ObjectStoreConfig(), description="The in-cluster S3-compatible store "
                                                                             "that replaces S3 without AWS")
    snowflake: SnowflakeConfig = Field(SnowflakeConfig(), description="Snowflake objects")

    @property
    def object_store_enabled(self) -> bool:
        store = self.object_store.enabled
        return (not self.aws.enabled) if store is None else store

    @model_validator(mode="after")
    def _one_bucket_home(self):
        if self.aws.enabled and self.object_store_enabled:
            raise ValueError("aws.enabled and objectStore.enabled are both true; the buckets live in one "
                             "place: switch one off")
        if not self.aws.enabled and not self.object_store_enabled:
            raise ValueError("aws.enabled and objectStore.enabled are both false; the S3 sink and Spark need "
                             "buckets: enable one of them")
        return self
