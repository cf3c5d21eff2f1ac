"""Snowflake: the warehouse side of the Lambda architecture.

    database DATAPIPE: RAW (loaded from S3) -> STAGING -> MARTS (dbt)
    warehouse DATAPIPE_WH (auto-suspending)
    roles: loader (RAW), transformer (reads RAW, builds STAGING/MARTS), reporter (reads MARTS)
    storage integration + external stage on the raw bucket's CDC prefix

The integration and the IAM role trust each other both ways: the integration names the role's
ARN, and the role's trust policy names the IAM user and external id Snowflake reports for the
integration. The role's ARN is computed from the account id and its fixed name, which breaks
the cycle without a second `pulumi up`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_snowflake as snowflake

from components.batch.dbt import DbtTarget
from components.cloud.config import SnowflakeConfig

SCHEMAS = ("RAW", "STAGING", "MARTS")
# Listed explicitly on the provider, because with an explicit Provider the stack's
# `snowflake:previewFeaturesEnabled` is ignored. Provider 2.22 promoted both to stable (listing a
# promoted feature is accepted); older 2.x providers need them to manage these resources.
PREVIEW_FEATURES = ("snowflake_storage_integration_aws_resource", "snowflake_stage_external_s3_resource")


def snowflake_provider(config: SnowflakeConfig, private_key: pulumi.Input[str]) -> snowflake.Provider:
    connection = config.connection
    return snowflake.Provider(
        "cloud-snowflake",
        organization_name=connection.organization_name,
        account_name=connection.account_name,
        user=connection.user,
        authenticator="SNOWFLAKE_JWT",
        private_key=pulumi.Output.secret(private_key),
        role=connection.role,
        warehouse=connection.warehouse,
        preview_features_enabled=list(PREVIEW_FEATURES),
    )


@dataclass(frozen=True)
class Grant:
    """`privileges` for `role` on a target: ("warehouse",), ("database",), ("schema", S),
    ("all", PLURAL, S) / ("future", PLURAL, S) for objects in schema S, or ("stage",)."""

    role: str  # "loader" | "transformer" | "reporter"
    privileges: tuple[str, ...]
    target: tuple[str, ...]

    @property
    def key(self) -> str:
        return "-".join((self.role, *self.target)).lower()


def role_grants(with_stage: bool) -> list[Grant]:
    """Least privilege per role. Objects a role creates, it owns; the rest it is granted here."""
    grants = []
    for role in ("loader", "transformer", "reporter"):
        grants += [Grant(role, ("USAGE",), ("warehouse",)), Grant(role, ("USAGE",), ("database",))]
    grants += [
        # The loader lands files from the stage into RAW tables it creates.
        Grant("loader", ("USAGE", "CREATE TABLE"), ("schema", "RAW")),
        # The transformer reads RAW (tables the loader owns, now and later) ...
        Grant("transformer", ("USAGE",), ("schema", "RAW")),
        Grant("transformer", ("SELECT",), ("all", "TABLES", "RAW")),
        Grant("transformer", ("SELECT",), ("future", "TABLES", "RAW")),
        # ... and builds STAGING and MARTS.
        Grant("transformer", ("USAGE", "CREATE TABLE", "CREATE VIEW"), ("schema", "STAGING")),
        Grant("transformer", ("USAGE", "CREATE TABLE", "CREATE VIEW"), ("schema", "MARTS")),
        # Reporting reads the marts only.
        Grant("reporter", ("USAGE",), ("schema", "MARTS")),
        Grant("reporter", ("SELECT",), ("future", "TABLES", "MARTS")),
        Grant("reporter", ("SELECT",), ("future", "VIEWS", "MARTS")),
    ]
    if with_stage:
        grants.append(Grant("loader", ("USAGE",), ("stage",)))
    return grants


def stage_url(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}/"


def trust_policy(iam_user_arn: str, external_id: str) -> dict[str, Any]:
    """Only Snowflake's IAM user for this integration, presenting its external id, may assume the role."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "SnowflakeStorageIntegration",
        "Effect": "Allow",
        "Principal": {"AWS": iam_user_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
    }]}


def stage_read_policy(raw_bucket_arn: str, prefix: str) -> dict[str, Any]:
    """Snowflake reads (and lists) the sink's prefix of the raw bucket; nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadArchivePrefix", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": [f"{raw_bucket_arn}/{prefix}/*"]},
        {"Sid": "ListArchivePrefix", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": [raw_bucket_arn], "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}},
    ]}


@dataclass
class RawBucketLink:
    """The raw bucket on AWS, for the storage integration (absent when cloud.aws is off)."""

    bucket: pulumi.Input[str]
    arn: pulumi.Input[str]
    prefix: str
    aws_provider: aws.Provider


@dataclass
class SnowflakeWarehouseArgs:
    config: SnowflakeConfig
    stack: str
    raw: Optional[RawBucketLink]


class SnowflakeWarehouse(pulumi.ComponentResource):
    database: pulumi.Output[str]
    schemas: pulumi.Output[dict]
    warehouse: pulumi.Output[str]
    stage: pulumi.Output[Optional[str]]
    dbt_target: pulumi.Output[DbtTarget]

    def __init__(self, name: str, args: SnowflakeWarehouseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:cloud:SnowflakeWarehouse", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        database = snowflake.Database(f"{name}-database", name=cfg.database,
                                      comment="DataPipe: CDC archive (RAW) -> STAGING -> MARTS", opts=child)
        schemas = {schema: snowflake.Schema(f"{name}-schema-{schema.lower()}", database=database.name, name=schema,
                                            opts=child)
                   for schema in SCHEMAS}
        warehouse = snowflake.Warehouse(
            f"{name}-warehouse", name=cfg.warehouse.name, warehouse_size=cfg.warehouse.size,
            auto_suspend=cfg.warehouse.auto_suspend_seconds, auto_resume="true", initially_suspended=True,
            opts=child)
        names = {"loader": cfg.roles.loader, "transformer": cfg.roles.transformer, "reporter": cfg.roles.reporter}
        roles = {key: snowflake.AccountRole(f"{name}-role-{key}", name=role, opts=child)
                 for key, role in names.items()}
        for key, role in roles.items():
            # Custom roles roll up to SYSADMIN, so administrators keep control of what they create.
            snowflake.GrantAccountRole(f"{name}-role-{key}-to-sysadmin", role_name=role.name,
                                       parent_role_name="SYSADMIN", opts=child)

        stage = self._stage(name, args, args.raw, database, schemas["RAW"]) if args.raw is not None else None
        for grant in role_grants(with_stage=stage is not None):
            snowflake.GrantPrivilegesToAccountRole(
                f"{name}-grant-{grant.key}", account_role_name=roles[grant.role].name,
                privileges=list(grant.privileges),
                **self._grant_target(grant, database, schemas, warehouse, stage), opts=child)

        dbt_user = snowflake.ServiceUser(
            f"{name}-dbt-user", name=cfg.dbt_user.name, comment="dbt runner of the batch layer",
            rsa_public_key=cfg.dbt_user.rsa_public_key, default_role=roles["transformer"].name,
            default_warehouse=warehouse.name, default_secondary_roles_option="NONE", opts=child)
        snowflake.GrantAccountRole(f"{name}-dbt-user-transformer", role_name=roles["transformer"].name,
                                   user_name=dbt_user.name, opts=child)

        account = cfg.account_identifier
        self.database = database.name
        self.schemas = pulumi.Output.all(*(s.name for s in schemas.values())).apply(
            lambda n: {"raw": n[0], "staging": n[1], "marts": n[2]})
        self.warehouse = warehouse.name
        self.stage = stage.fully_qualified_name if stage is not None else pulumi.Output.from_input(None)
        self.dbt_target = pulumi.Output.all(dbt_user.name, roles["transformer"].name, database.name,
                                            warehouse.name, schemas["STAGING"].name).apply(
            lambda v: DbtTarget(account=account, user=v[0], role=v[1], database=v[2], warehouse=v[3], schema=v[4]))
        self.register_outputs({"database": self.database, "schemas": self.schemas, "warehouse": self.warehouse,
                               "stage": self.stage})

    def _stage(self, name: str, args: SnowflakeWarehouseArgs, raw: RawBucketLink, database: snowflake.Database,
               raw_schema: snowflake.Schema) -> snowflake.StageExternalS3:
        on_aws = pulumi.ResourceOptions(parent=self, provider=raw.aws_provider)
        invoke = pulumi.InvokeOutputOptions(provider=raw.aws_provider, parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        role_name = f"datapipe-{args.stack}-snowflake-stage"[:64]
        role_arn = pulumi.Output.concat("arn:", partition, ":iam::", account_id, ":role/", role_name)
        location = pulumi.Output.from_input(raw.bucket).apply(lambda b: stage_url(b, raw.prefix))
        integration = snowflake.StorageIntegrationAws(
            f"{name}-storage-integration", name=f"{args.config.database}_RAW_S3", enabled=True,
            storage_provider="S3", storage_aws_role_arn=role_arn, storage_allowed_locations=[location],
            comment="DataPipe raw archive (CDC Parquet)", opts=pulumi.ResourceOptions(parent=self))
        described = integration.describe_outputs[0]
        trust = pulumi.Output.all(described.iam_user_arn, described.external_id).apply(
            lambda v: json.dumps(trust_policy(v[0], v[1])))
        role = aws.iam.Role(f"{name}-stage-role", name=role_name, path="/", assume_role_policy=trust,
                            description="Snowflake storage integration: reads the raw CDC archive", opts=on_aws)
        access = aws.iam.RolePolicy(
            f"{name}-stage-role-policy", role=role.name,
            policy=pulumi.Output.from_input(raw.arn).apply(lambda arn: json.dumps(stage_read_policy(arn, raw.prefix))),
            opts=on_aws)
        return snowflake.StageExternalS3(
            f"{name}-stage", name=args.config.stage, database=database.name, schema=raw_schema.name, url=location,
            storage_integration=integration.name, file_format={"parquet": {"compression": "AUTO"}},
            comment="CDC Parquet files written by the S3 sink",
            # Snowflake assumes the role on first use: the trust and the read policy must exist.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, access]))

    @staticmethod
    def _grant_target(grant: Grant, database, schemas, warehouse, stage) -> dict[str, Any]:
        kind = grant.target[0]
        if kind == "warehouse":
            return {"on_account_object": {"object_type": "WAREHOUSE", "object_name": warehouse.fully_qualified_name}}
        if kind == "database":
            return {"on_account_object": {"object_type": "DATABASE", "object_name": database.fully_qualified_name}}
        if kind == "schema":
            return {"on_schema": {"schema_name": schemas[grant.target[1]].fully_qualified_name}}
        if kind in ("all", "future"):
            _, plural, schema = grant.target
            return {"on_schema_object": {kind: {"object_type_plural": plural,
                                                "in_schema": schemas[schema].fully_qualified_name}}}
        if kind == "stage":
            return {"on_schema_object": {"object_type": "STAGE", "object_name": stage.fully_qualified_name}}
        raise ValueError(f"unknown grant target {grant.target}")
